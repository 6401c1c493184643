"""Everything the pipelines view shows for one folder, computed in one call.

Discovery, parsing, phase assignment (with the user's overrides), the side-by-side pick, the
comparison and whatever status is real (dvc.lock, JUnit reports, GitHub runs when asked). The CLI
prints an Overview; the TUI screen will render the same object from a worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from mltop.core.monitor.findings import MonitorFinding, read_findings
from mltop.core.pipelines.compare import Comparison, compare
from mltop.core.pipelines.detect import discover, parse_file
from mltop.core.pipelines.github_runs import (
    DEFAULT_API,
    CiRun,
    GitHubClient,
    GitHubError,
    github_run_status,
)
from mltop.core.pipelines.model import Pipeline, StageStatus, path_under
from mltop.core.pipelines.ops_metrics import OpsMetric, measure
from mltop.core.pipelines.phases import PhaseOverrides, assign_phases, load_overrides
from mltop.core.pipelines.repository import (
    MAX_INCLUDED,
    Repository,
    display,
    group_by_repository,
    join,
    local_definitions,
    member_stage_id,
    project_dir,
)
from mltop.core.pipelines.status import (
    JUnitError,
    attach_junit,
    dvc_status,
    find_junit_reports,
    parse_junit,
)


@dataclass(frozen=True)
class GitHubOptions:
    """Where to ask for GitHub Actions runs; the token defaults to ``GITHUB_TOKEN``."""

    repo: str
    token: str | None = None
    api_url: str = DEFAULT_API
    branch: str | None = None
    timeout: float = 10.0


@dataclass
class Overview:
    root: Path
    pipelines: list[Pipeline]
    comparison: Comparison
    statuses: dict[tuple[str, Path], dict[str, StageStatus]] = field(default_factory=dict)
    """Keyed by (kind, path): both sides of a repository may be joined at its root folder."""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ci_runs: dict[Path, CiRun] = field(default_factory=dict)
    repositories: list[Repository] = field(default_factory=list)
    repository: Repository | None = None
    pairing: str = ""
    """Why the two sides shown belong together (see Repository.pairing)."""
    metrics: list[OpsMetric] = field(default_factory=list)
    """The DevOps and MLOps performance band of the repository shown (ops_metrics.py)."""
    monitors: list[MonitorFinding] = field(default_factory=list)
    """What the monitors under the repository shown found (mltop.core.monitor.findings)."""

    def status_of(self, pipeline: Pipeline | None) -> dict[str, StageStatus]:
        if pipeline is None:
            return {}
        return self.statuses.get((pipeline.kind, Path(pipeline.path)), {})

    def ci_run_of(self, pipeline: Pipeline | None) -> CiRun | None:
        """The CI server's run the pipeline's statuses came from, when one was asked for (for
        a side joined from several workflows, the first of theirs that has one)."""
        return self.ci_runs.get(Path(pipeline.path)) if pipeline is not None else None


@dataclass
class PipelineStatus:
    """What is known about one pipeline's last run, and what got in the way of knowing it."""

    statuses: dict[str, StageStatus] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ci_run: CiRun | None = None


def load_pipeline(path: Path, root: Path, overrides: PhaseOverrides | None = None) -> Pipeline:
    overrides = overrides if overrides is not None else load_overrides(root)
    return assign_phases(parse_file(path), overrides, root)


def pipeline_status(
    pipeline: Pipeline, root: Path, github: GitHubOptions | None = None
) -> PipelineStatus:
    """Known statuses for one pipeline, the CI run they came from, notes and problems.

    A side joined from several files asks for each file's statuses on its own (a dvc.lock
    sits beside its dvc.yaml, a GitHub run belongs to one workflow) and keys them by the
    joined stage ids.
    """
    result = PipelineStatus()
    if pipeline.members:
        for member in pipeline.members:
            found = pipeline_status(member, root, github)
            origin = display(member.path, pipeline.path)
            for stage_id, status in found.statuses.items():
                result.statuses[member_stage_id(origin, stage_id)] = status
            result.notes.extend(found.notes)
            result.problems.extend(found.problems)
            if result.ci_run is None:
                result.ci_run = found.ci_run
        return result
    if pipeline.format == "dvc" and pipeline.stages:
        result.statuses.update(dvc_status(pipeline))
    if pipeline.kind == "devops" and pipeline.stages:
        reports = []
        for report_path in find_junit_reports(root):
            try:
                reports.append(parse_junit(report_path))
            except JUnitError as exc:
                result.problems.append(str(exc))
        result.statuses.update(attach_junit(pipeline, reports, root))
    if github is not None and pipeline.format == "github-actions" and pipeline.stages:
        try:
            client = _client(github)
            rel = path_under(pipeline.path, root)
            found, note, run = github_run_status(pipeline, client, rel, github.branch)
            result.statuses.update(found)
            result.notes.append(note)
            result.ci_run = run
        except GitHubError as exc:
            result.problems.append(str(exc))
    return result


def _client(github: GitHubOptions) -> GitHubClient:
    token = github.token if github.token is not None else os.environ.get("GITHUB_TOKEN")
    return GitHubClient(github.repo, token, github.api_url, github.timeout)


def stage_statuses(
    pipeline: Pipeline, root: Path, github: GitHubOptions | None = None
) -> tuple[dict[str, StageStatus], list[str], list[str]]:
    """Known statuses for one pipeline, plus notes and problems met while finding them."""
    found = pipeline_status(pipeline, root, github)
    return found.statuses, found.notes, found.problems


def build_overview(
    path: Path,
    github: GitHubOptions | None = None,
    *,
    repository: Path | None = None,
    compute_monitors: bool = True,
) -> Overview:
    """The comparison for a folder's repository (all its CI files on the DevOps side, all its
    ML pipelines on the MLOps side), or for one pipeline file shown on its side of the table.

    A folder holding several repositories is split (:mod:`mltop.core.pipelines.repository`);
    the one holding the folder asked about, or else the most complete, is shown unless
    ``repository`` names another root (the TUI's picker). A root that is no longer found
    falls back to that choice, with a note. ``compute_monitors=False`` (a screen's first
    answer) runs no monitor report: a monitor not computed for its files' present state is
    a pending finding (see :func:`mltop.core.monitor.findings.read_findings`).
    """
    path = Path(path)
    root = path if path.is_dir() else path.parent
    overrides = load_overrides(root)
    problems = list(overrides.problems)
    files = [path] if path.is_file() else [p for p, _fmt in discover(root)]
    pipelines = [assign_phases(parse_file(f), overrides, root) for f in files]
    homes: dict[Path, Path] = {}
    pipelines.extend(_included(pipelines, overrides, root, homes))
    for pipeline in pipelines:
        problems.extend(pipeline.problems)
    repositories = group_by_repository(pipelines, root, homes)
    notes: list[str] = []
    chosen = _chosen(repositories, repository, notes)
    devops = join(chosen.devops, "devops", chosen.root) if chosen else None
    mlops = join(chosen.mlops, "mlops", chosen.root) if chosen else None
    # only the CI of the ML pipeline's own repository can be evidence that CI runs it
    # what the monitors under the repository found: evidence for its monitor phase
    monitors = read_findings(chosen.root, compute=compute_monitors) if chosen else []
    comparison = compare(devops, mlops, list(chosen.devops) if chosen else [], root, monitors)
    overview = Overview(
        root,
        pipelines,
        comparison,
        problems=problems,
        notes=notes,
        repositories=repositories,
        repository=chosen,
        pairing=chosen.pairing(root) if chosen else "",
        monitors=monitors,
    )
    for side in (devops, mlops):
        if side is None:
            continue
        found = pipeline_status(side, root, github)
        overview.statuses[(side.kind, Path(side.path))] = found.statuses
        overview.notes.extend(found.notes)
        overview.problems.extend(found.problems)
        if found.ci_run is not None:
            overview.ci_runs[Path(side.path)] = found.ci_run
    if chosen is not None:
        client = None
        if github is not None:
            try:
                client = _client(github)
            except GitHubError as exc:
                overview.problems.append(str(exc))
        branch = github.branch if github is not None else None
        overview.metrics = measure(
            chosen.root, chosen.marker, devops, mlops, client, branch, monitors
        )
    return overview


def _included(
    pipelines: list[Pipeline], overrides: PhaseOverrides, root: Path, homes: dict[Path, Path]
) -> list[Pipeline]:
    """The local GitLab includes and Azure templates the definitions found pull in (and those
    they pull in), read as definitions of their own, each once: they are part of the
    repository's CI even though their names say nothing to discovery. ``homes`` gets, for
    each, the folder of the file that pulled it in, so it joins that file's repository."""
    seen = {Path(p.path).resolve() for p in pipelines}
    todo = list(pipelines)
    out: list[Pipeline] = []
    while todo and len(out) < MAX_INCLUDED:
        including = todo.pop(0)
        home = homes.get(Path(including.path), project_dir(including))
        for path, fmt, _ref in local_definitions(including):
            if path.resolve() in seen or len(out) >= MAX_INCLUDED:
                continue
            seen.add(path.resolve())
            included = assign_phases(parse_file(path, fmt), overrides, root)
            if fmt == "gitlab-ci":
                # an included fragment's jobs use the stages the including file declares
                kept = tuple(p for p in included.problems if "is not in 'stages'" not in p)
                included = replace(included, problems=kept)
            homes[Path(included.path)] = home
            out.append(included)
            todo.append(included)
    return out


def _chosen(
    repositories: list[Repository], wanted: Path | None, notes: list[str]
) -> Repository | None:
    auto = repositories[0] if repositories else None
    if wanted is None:
        return auto
    target = Path(wanted).resolve()
    for repo in repositories:
        if repo.root == target:
            return repo
    notes.append(f"{wanted} is no longer found; showing the automatic pick")
    return auto

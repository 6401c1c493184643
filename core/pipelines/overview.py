"""Everything the pipelines view shows for one folder, computed in one call.

Discovery, parsing, phase assignment (with the user's overrides), the side-by-side pick, the
comparison and whatever status is real (dvc.lock, JUnit reports, GitHub runs when asked). The CLI
prints an Overview; the TUI screen will render the same object from a worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.pipelines.compare import Comparison, compare, pick, same_project
from mltop.core.pipelines.detect import discover, parse_file
from mltop.core.pipelines.github_runs import (
    DEFAULT_API,
    CiRun,
    GitHubClient,
    GitHubError,
    github_run_status,
)
from mltop.core.pipelines.model import Pipeline, StageStatus
from mltop.core.pipelines.phases import PhaseOverrides, assign_phases, load_overrides
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
    statuses: dict[Path, dict[str, StageStatus]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ci_runs: dict[Path, CiRun] = field(default_factory=dict)

    def status_of(self, pipeline: Pipeline | None) -> dict[str, StageStatus]:
        return self.statuses.get(Path(pipeline.path), {}) if pipeline is not None else {}

    def ci_run_of(self, pipeline: Pipeline | None) -> CiRun | None:
        """The CI server's run the pipeline's statuses came from, when one was asked for."""
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
    """Known statuses for one pipeline, the CI run they came from, notes and problems."""
    result = PipelineStatus()
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
            client = GitHubClient(
                github.repo,
                github.token if github.token is not None else os.environ.get("GITHUB_TOKEN"),
                github.api_url,
                github.timeout,
            )
            rel = _relative(pipeline.path, root)
            found, note, run = github_run_status(pipeline, client, rel, github.branch)
            result.statuses.update(found)
            result.notes.append(note)
            result.ci_run = run
        except GitHubError as exc:
            result.problems.append(str(exc))
    return result


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
    devops: Path | None = None,
    mlops: Path | None = None,
) -> Overview:
    """The comparison for a folder (auto-picking one DevOps and one MLOps pipeline), or for
    one pipeline file shown on its side of the table.

    ``devops``/``mlops`` name the file to show on that side instead of the automatic pick
    (the TUI's picker); a file that is no longer found falls back to the pick, with a note.
    """
    path = Path(path)
    root = path if path.is_dir() else path.parent
    overrides = load_overrides(root)
    problems = list(overrides.problems)
    files = [path] if path.is_file() else [p for p, _fmt in discover(root)]
    pipelines = [assign_phases(parse_file(f), overrides, root) for f in files]
    for pipeline in pipelines:
        problems.extend(pipeline.problems)
    auto_devops, auto_mlops = pick(pipelines, root)
    notes: list[str] = []
    chosen_devops = _chosen(pipelines, devops, auto_devops, notes)
    chosen_mlops = _chosen(pipelines, mlops, auto_mlops, notes)
    # only CI of the ML pipeline's own project can be evidence that CI runs it
    ci = [
        p
        for p in pipelines
        if p.kind == "devops" and (chosen_mlops is None or same_project(p, chosen_mlops))
    ]
    comparison = compare(chosen_devops, chosen_mlops, ci, root)
    overview = Overview(root, pipelines, comparison, problems=problems, notes=notes)
    for chosen in (chosen_devops, chosen_mlops):
        if chosen is None:
            continue
        found = pipeline_status(chosen, root, github)
        overview.statuses[Path(chosen.path)] = found.statuses
        overview.notes.extend(found.notes)
        overview.problems.extend(found.problems)
        if found.ci_run is not None:
            overview.ci_runs[Path(chosen.path)] = found.ci_run
    return overview


def _chosen(
    pipelines: list[Pipeline], wanted: Path | None, auto: Pipeline | None, notes: list[str]
) -> Pipeline | None:
    if wanted is None:
        return auto
    target = Path(wanted).resolve()
    for pipeline in pipelines:
        if Path(pipeline.path).resolve() == target:
            return pipeline
    notes.append(f"{wanted} is no longer found; showing the automatic pick")
    return auto


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()

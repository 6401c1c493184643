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
from mltop.core.pipelines.github_runs import DEFAULT_API, GitHubClient, GitHubError, github_status
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

    def status_of(self, pipeline: Pipeline | None) -> dict[str, StageStatus]:
        return self.statuses.get(Path(pipeline.path), {}) if pipeline is not None else {}


def load_pipeline(path: Path, root: Path, overrides: PhaseOverrides | None = None) -> Pipeline:
    overrides = overrides if overrides is not None else load_overrides(root)
    return assign_phases(parse_file(path), overrides, root)


def stage_statuses(
    pipeline: Pipeline, root: Path, github: GitHubOptions | None = None
) -> tuple[dict[str, StageStatus], list[str], list[str]]:
    """Known statuses for one pipeline, plus notes and problems met while finding them."""
    statuses: dict[str, StageStatus] = {}
    notes: list[str] = []
    problems: list[str] = []
    if pipeline.format == "dvc" and pipeline.stages:
        statuses.update(dvc_status(pipeline))
    if pipeline.kind == "devops" and pipeline.stages:
        reports = []
        for report_path in find_junit_reports(root):
            try:
                reports.append(parse_junit(report_path))
            except JUnitError as exc:
                problems.append(str(exc))
        statuses.update(attach_junit(pipeline, reports, root))
    if github is not None and pipeline.format == "github-actions" and pipeline.stages:
        try:
            client = GitHubClient(
                github.repo,
                github.token if github.token is not None else os.environ.get("GITHUB_TOKEN"),
                github.api_url,
                github.timeout,
            )
            rel = _relative(pipeline.path, root)
            found, note = github_status(pipeline, client, rel, github.branch)
            statuses.update(found)
            notes.append(note)
        except GitHubError as exc:
            problems.append(str(exc))
    return statuses, notes, problems


def build_overview(path: Path, github: GitHubOptions | None = None) -> Overview:
    """The comparison for a folder (auto-picking one DevOps and one MLOps pipeline), or for
    one pipeline file shown on its side of the table."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    overrides = load_overrides(root)
    problems = list(overrides.problems)
    files = [path] if path.is_file() else [p for p, _fmt in discover(root)]
    pipelines = [assign_phases(parse_file(f), overrides, root) for f in files]
    for pipeline in pipelines:
        problems.extend(pipeline.problems)
    devops, mlops = pick(pipelines, root)
    # only CI of the ML pipeline's own project can be evidence that CI runs it
    ci = [p for p in pipelines if p.kind == "devops" and (mlops is None or same_project(p, mlops))]
    comparison = compare(devops, mlops, ci, root)
    overview = Overview(root, pipelines, comparison, problems=problems)
    for chosen in (devops, mlops):
        if chosen is None:
            continue
        statuses, notes, status_problems = stage_statuses(chosen, root, github)
        overview.statuses[Path(chosen.path)] = statuses
        overview.notes.extend(notes)
        overview.problems.extend(status_problems)
    return overview


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()

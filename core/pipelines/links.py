"""Pipelines ↔ experiment runs: which runs a CI run or an ML pipeline stage produced.

The common key is the git commit. mltop's run writer records ``git_commit``, MLflow records
``mlflow.source.git.commit`` and DVC experiments their baseline commit; all three land in the
store's ``runs.git_commit``. So:

* a CI run (GitHub Actions gives its ``head_sha``) links to the runs logged at that commit;
* an ML pipeline's training and evaluation stages link, in this order of preference, to the runs
  written into one of the stage's own outputs (a ``dvclive/`` or ``runs/`` folder it declares),
  to the runs logged at the workspace's current commit (HEAD, read from ``.git`` without
  running git), or, for a training stage, to the runs under the pipeline's own folder (the
  sample project's ``train.py`` writes ``runs/``).

Each link says which rule made it, so a reader can judge it, and carries a runs-screen filter
that lists exactly those runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.entities import Run
from mltop.core.importers.dvc_git import find_git_dir, head_sha
from mltop.core.pipelines.model import Phase, Pipeline, Stage, StatusState, one_line
from mltop.core.pipelines.overview import Overview
from mltop.core.pipelines.repository import display, member_stage_id, project_dir
from mltop.core.store import Store

LINK_LIMIT = 50
"""Runs kept per link (newest first); ``total`` still counts them all."""
LINKED_PHASES = (Phase.TEST, Phase.VERIFY)
_REGEX_SPECIAL = set("\\.+*?()|[]{}^$")


@dataclass(frozen=True)
class RunLink:
    """Runs tied to a stage or a CI run, and why (``how``)."""

    how: str
    runs: tuple[Run, ...]
    total: int
    filter: str

    def summary(self) -> str:
        noun = "run" if self.total == 1 else "runs"
        return f"→ {self.total} {noun} ({self.how})"


@dataclass
class PipelineLinks:
    """Run links for the pipelines shown side by side."""

    stages: dict[str, RunLink] = field(default_factory=dict)
    ci: RunLink | None = None
    ci_sha: str | None = None
    head: str | None = None
    notes: list[str] = field(default_factory=list)


def query_string(text: str) -> str:
    """``text`` as a double-quoted string of the runs filter language."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_literal(text: str) -> str:
    """``text`` as a regular expression (RE2) that matches it literally."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def commit_filter(sha: str) -> str:
    """Runs at a commit, whether the run recorded the full or the short hash."""
    return f"commit ~ {query_string('^' + regex_literal(sha.lower()[:7]))}"


def folder_filter(folders: Sequence[str]) -> str:
    """Runs located in any of ``folders``."""
    parts = [f"location ~ {query_string('^' + regex_literal(f) + '(/|$)')}" for f in folders]
    return " or ".join(parts)


def workspace_commit(root: Path) -> str | None:
    """The commit checked out in the repository holding ``root`` (None outside a repository)."""
    git_dir = find_git_dir(Path(root).resolve())
    return head_sha(git_dir) if git_dir is not None else None


def runs_for_commit(store: Store, sha: str) -> list[Run]:
    """Runs logged at commit ``sha`` (full or abbreviated), newest first."""
    return store.runs_at_commits([sha]).get(sha, [])


def _forms(path: Path) -> list[str]:
    """A folder as written and resolved: run locations are stored as discovery found them."""
    forms = [str(path)]
    try:
        resolved = str(path.resolve())
    except OSError:
        resolved = forms[0]
    if resolved not in forms:
        forms.append(resolved)
    return forms


def _link(how: str, runs: Sequence[Run], filter_text: str) -> RunLink:
    unique = list({r.id: r for r in runs}.values())
    unique.sort(key=lambda r: -(r.start_time or 0.0))
    return RunLink(how, tuple(unique[:LINK_LIMIT]), len(unique), filter_text)


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return one_line(str(path), 80)
    return one_line((rel if rel != "." else ".") + "/", 80)


def _under(runs: Sequence[Run], folder: Path) -> list[Run]:
    forms = _forms(folder)
    return [
        r
        for r in runs
        if any(r.location == f or r.location.startswith(f.rstrip("/") + "/") for f in forms)
    ]


def stage_links(
    store: Store, pipeline: Pipeline, root: Path, head: str | None = None
) -> dict[str, RunLink]:
    """Run links of an ML pipeline's training and evaluation stages (see the module doc)."""
    project = project_dir(pipeline)
    at_head: list[Run] = runs_for_commit(store, head) if head else []
    out: dict[str, RunLink] = {}
    for stage in pipeline.stages:
        if stage.phase not in LINKED_PHASES:
            continue
        link = _stage_link(store, stage, project, root, head, at_head)
        if link is not None:
            out[stage.id] = link
    return out


def _stage_link(
    store: Store,
    stage: Stage,
    project: Path,
    root: Path,
    head: str | None,
    at_head: list[Run],
) -> RunLink | None:
    workdir = project / stage.group if stage.group else project
    outputs = [o for o in (*stage.outputs, *stage.metrics) if o and not o.startswith("$")]
    folders: dict[str, Path] = {}
    for output in outputs:
        path = workdir / output
        for form in _forms(path):
            folders[form] = path
    if folders:
        found = store.runs_under(list(folders))
        runs = [r for runs in found.values() for r in runs]
        if runs:
            hit = sorted({_rel(folders[f], root) for f, rs in found.items() if rs})
            return _link("written to " + ", ".join(hit), runs, folder_filter(list(found)))
    if head and at_head:
        mine = _under(at_head, project)
        runs = mine or at_head
        return _link(f"logged at HEAD {head[:7]}", runs, commit_filter(head))
    if stage.phase is Phase.TEST:
        forms = _forms(project)
        found = store.runs_under(forms)
        runs = [r for rs in found.values() for r in rs]
        if runs:
            return _link(f"run folders under {_rel(project, root)}", runs, folder_filter(forms))
    return None


def link_runs(store: Store, overview: Overview) -> PipelineLinks:
    """Run links for the two pipelines an Overview shows side by side."""
    comparison = overview.comparison
    links = PipelineLinks()
    mlops = comparison.mlops
    if mlops is not None:
        links.head = workspace_commit(project_dir(mlops))
        for member in mlops.members:
            origin = display(member.path, mlops.path)
            found = stage_links(store, member, overview.root, links.head)
            links.stages.update({member_stage_id(origin, k): v for k, v in found.items()})
        if not mlops.members:
            links.stages = stage_links(store, mlops, overview.root, links.head)
        # runs cannot come from a stage that has not run: linking them would contradict it
        statuses = overview.status_of(mlops)
        links.stages = {
            stage_id: link
            for stage_id, link in links.stages.items()
            if stage_id not in statuses or statuses[stage_id].state is not StatusState.NOT_RUN
        }
    ci = overview.ci_run_of(comparison.devops)
    if ci is not None and ci.head_sha:
        links.ci_sha = ci.head_sha
        runs = runs_for_commit(store, ci.head_sha)
        links.ci = _link(f"at commit {ci.head_sha[:7]}", runs, commit_filter(ci.head_sha))
    return links


__all__ = [
    "LINK_LIMIT",
    "PipelineLinks",
    "RunLink",
    "commit_filter",
    "folder_filter",
    "link_runs",
    "query_string",
    "regex_literal",
    "runs_for_commit",
    "stage_links",
    "workspace_commit",
]

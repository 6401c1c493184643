"""An ``mlruns/`` tree's folders, and what changed in them since the last scan.

Apart from reading and writing runs because a re-scan of an untouched store is only this: list
the experiment and run folders (plain strings, one ``scandir`` per folder) and stat every file
against its recorded state, so that nothing is opened unless it changed. The layout is described
in :mod:`mltop.core.importers.mlflow_files`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.entities import FileState
from mltop.core.importers.base import Change, classify

META = "meta.yaml"
TRASH = ".trash"


# -- the tree ---------------------------------------------------------------------------------


@dataclass
class ExperimentDir:
    native: str
    path: str
    in_trash: bool

    @property
    def meta(self) -> str:
        return os.path.join(self.path, META)


@dataclass
class RunDir:
    """One run folder. Paths are plain strings: a re-scan handles tens of thousands of them."""

    native: str
    path: str
    experiment: ExperimentDir
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, str]] = field(default_factory=list)

    @property
    def meta(self) -> str:
        return os.path.join(self.path, META)

    def files(self) -> Iterator[str]:
        yield self.meta
        for group in (self.params, self.tags, self.metrics):
            for path, _ in group:
                yield path


def _list_keyed(folder: str, prefix: str = "") -> list[tuple[str, str]]:
    """Files under ``folder`` with their MLflow key (relative path, ``/``-separated)."""
    out: list[tuple[str, str]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return out
    for entry in entries:
        key = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            out.extend(_list_keyed(entry.path, key + "/"))
        elif entry.is_file():
            out.append((entry.path, key))
    return out


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []


def scan_tree(root: Path) -> tuple[list[ExperimentDir], list[RunDir]]:
    """Experiment and run folders of an mlruns tree (names only, no file contents)."""
    experiments: list[ExperimentDir] = []
    runs: list[RunDir] = []
    # Experiment ids are numbers; this also skips a registry's models/ folder at the root.
    tops = [(e, False) for e in _entries(str(root))]
    tops += [(e, True) for e in _entries(os.path.join(root, TRASH))]
    for entry, in_trash in tops:
        if not entry.name.isdigit() or not entry.is_dir(follow_symlinks=False):
            continue
        exp = ExperimentDir(entry.name, entry.path, in_trash)
        children = _entries(exp.path)
        is_experiment = any(c.name == META and c.is_file() for c in children)
        for child in children:
            if not child.is_dir(follow_symlinks=False):
                continue
            inside = {e.name: e for e in _entries(child.path)}
            meta = inside.get(META)
            if meta is None or not meta.is_file():
                continue  # models/, datasets/, tags/, artifacts-only folders
            is_experiment = True
            run = RunDir(child.name, child.path, exp)
            for group in ("params", "tags", "metrics"):
                sub = inside.get(group)
                if sub is not None and sub.is_dir(follow_symlinks=False):
                    setattr(run, group, _list_keyed(sub.path))
            runs.append(run)
        if is_experiment:
            experiments.append(exp)
    return experiments, runs


def looks_like_store(dirpath: Path, dirnames: Sequence[str]) -> bool:
    """An experiment folder (numeric name, ``meta.yaml`` inside) among the children."""
    return any(d.isdigit() and (dirpath / d / META).is_file() for d in dirnames)


# -- planning ---------------------------------------------------------------------------------


@dataclass
class MetricRead:
    path: Path
    key: str
    offset: int
    st: os.stat_result


@dataclass
class RunPlan:
    run: RunDir
    run_id: str
    stats: dict[str, os.stat_result] = field(default_factory=dict)
    reads: list[MetricRead] = field(default_factory=list)
    drop_keys: set[str] = field(default_factory=set)
    gone_paths: list[str] = field(default_factory=list)
    fresh: bool = True

    @property
    def new_bytes(self) -> int:
        return sum(max(0, r.st.st_size - r.offset) for r in self.reads)


def _key_of(path: str, native: str) -> str | None:
    """The metric key of a recorded path ``.../<run id>/metrics/<key...>``, else None."""
    parts = Path(path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == native and parts[i + 1] == "metrics":
            return "/".join(parts[i + 2 :]) or None
    return None


def _same(st: os.stat_result, old: FileState | None) -> bool:
    if old is None:
        return False
    return (st.st_size, st.st_mtime, st.st_ino) == (old.size, old.mtime, old.inode)


def rewritten(path: str, old: FileState | None) -> bool:
    """Whether a file that is rewritten in place, not appended to, differs from its record."""
    try:
        st = os.stat(path)
    except OSError:
        return old is not None
    return not _same(st, old)


def plan_run(
    run: RunDir,
    run_id: str,
    states: dict[str, FileState],
    recorded: list[str],
    force: bool = False,
) -> RunPlan | None:
    """What changed in one run folder since the last scan; None when nothing did.

    ``force`` re-reads the run's small files even if untouched (its experiment changed).
    """
    plan = RunPlan(run, run_id, fresh=not recorded)
    changed = force
    keys = dict(run.metrics)
    for path in run.files():
        old = states.get(path)
        key = keys.get(path)
        if key is None:
            # meta.yaml, params and tags are rewritten in place, not appended to: any new
            # size or time means new content, and the run's small files are all re-read.
            try:
                st = os.stat(path)
            except OSError:
                changed = True
                continue
            plan.stats[path] = st
            changed = changed or not _same(st, old)
            continue
        change, metric_st = classify(path, old)
        if metric_st is None:
            changed = True  # vanished between listing and stat
            continue
        st = metric_st
        plan.stats[path] = st
        if change is Change.UNCHANGED:
            continue
        changed = True
        appended = change is Change.APPENDED and old is not None
        offset = old.offset if appended and old is not None else 0
        plan.reads.append(MetricRead(Path(path), key, offset, st))
        if not appended:
            plan.drop_keys.add(key)
    present = set(plan.stats)
    for path in recorded:
        if path in present:
            continue
        changed = True
        plan.gone_paths.append(path)
        key = _key_of(path, run.native)
        if key is not None:
            plan.drop_keys.add(key)
    return plan if changed else None

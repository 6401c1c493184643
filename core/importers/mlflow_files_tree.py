"""An ``mlruns/`` tree's folders, and what changed in them since the last scan.

Apart from reading and writing runs because a re-scan of an untouched store is only this: list
the experiment and run folders (plain strings, one ``scandir`` per folder), stat every file, and
compare the stats with the recorded states in the store: the store folds each run's recorded
files into a count and a digest once per scan, and each chunk of :data:`COMPARE_FILES` listed
files is folded the same way and joined with them, so that no Python object is made per
unchanged file and nothing is opened unless it changed. Only the runs with a changed file are
planned (their recorded states fetched, each changed file classified). The layout is described
in :mod:`mltop.core.importers.mlflow_files`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from mltop.core.entities import FileState
from mltop.core.importers.base import Change, Seen, classify
from mltop.core.store import string_array

META = "meta.yaml"
TRASH = ".trash"
GROUPS = ("params", "tags", "metrics")
SMALL_FILES = "meta.yaml+params+tags"
"""The name (under the run folder; no file has it) the run's small files are recorded by, as one.

A run's meta.yaml, params and tags are rewritten in place and always re-read together, so the
store keeps one state for them all: size the sum of theirs, mtime the latest, and for inode a
64-bit digest of every file's path, size, mtime and inode (:func:`fold_small_files`). A file
changed, added or removed changes the digest. One row a run instead of about thirteen: a fifth
of a first import's time went to recording them one by one, and half of the store.
"""
#: Files listed (paths and three numbers each) before they are compared with the store in one
#: small join: MLflow writes about sixteen files a run, so some 1,200 runs at a time.
COMPARE_FILES = 20_000


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
    small: list[str] = field(default_factory=list)  # params and tags files, as listed

    @property
    def meta(self) -> str:
        return os.path.join(self.path, META)

    @property
    def small_state(self) -> str:
        return os.path.join(self.path, SMALL_FILES)


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []


def _is_run(entries: Sequence[os.DirEntry[str]]) -> bool:
    return any(e.name == META and e.is_file() for e in entries)


def experiment_dirs(root: Path) -> list[ExperimentDir]:
    """The experiment folders of an mlruns tree: numeric folders (at the top or in ``.trash``)
    holding a ``meta.yaml`` or a run folder; ``models/`` of a registry is skipped by its name."""
    experiments: list[ExperimentDir] = []
    tops = [(e, False) for e in _entries(str(root))]
    tops += [(e, True) for e in _entries(os.path.join(root, TRASH))]
    for entry, in_trash in tops:
        if not entry.name.isdigit() or not entry.is_dir(follow_symlinks=False):
            continue
        exp = ExperimentDir(entry.name, entry.path, in_trash)
        # An experiment folder without its meta.yaml still holds runs (rare: listed to know).
        if os.path.isfile(exp.meta) or any(
            c.is_dir(follow_symlinks=False) and _is_run(_entries(c.path))
            for c in _entries(exp.path)
        ):
            experiments.append(exp)
    return experiments


Stat = Seen
"""What a scan keeps of a file's stat: a whole ``os.stat_result`` is about a kilobyte of
Python objects, and a listing holds :data:`COMPARE_FILES` of them."""


@dataclass
class Listing:
    """Run folders and their files, stat'd, in the order listed (one chunk of a tree)."""

    runs: list[tuple[str, RunDir, int, int]] = field(default_factory=list)  # id, folder, files
    paths: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    mtimes: list[float] = field(default_factory=list)
    inodes: list[int] = field(default_factory=list)

    def add(self, path: str, st: os.stat_result | Stat) -> None:
        self.paths.append(path)
        self.sizes.append(st.st_size)
        self.mtimes.append(st.st_mtime)
        self.inodes.append(st.st_ino)

    def table(self) -> pa.Table:
        """The columns :meth:`~mltop.core.store.Store.changed_runs` compares.

        Built from buffers: ``pa.array`` would import pandas (36 MB resident for good) in the
        TUI's background re-scan, which otherwise never needs it.
        """
        counts = [end - start for _, _, start, end in self.runs]
        owner = np.repeat(np.arange(len(self.runs), dtype=np.int64), counts)
        return pa.table(
            {
                "run_id": string_array([rid for rid, _, _, _ in self.runs]).take(_numbers(owner)),
                "path": string_array(self.paths),
                "size": _numbers(np.array(self.sizes, np.int64)),
                "mtime": _numbers(np.array(self.mtimes, np.float64)),
                "inode": _numbers(np.array(self.inodes, np.int64)),
            }
        )

    def stats_of(self, start: int, end: int) -> dict[str, Stat]:
        return {
            self.paths[i]: Stat(self.sizes[i], self.mtimes[i], self.inodes[i])
            for i in range(start, end)
        }


def fold_small_files(listed: list[tuple[str, os.stat_result]]) -> Stat:
    """One state for a run's small files (see :data:`SMALL_FILES`), from their stats.

    Integers only in the digested text (a float's repr costs twice an int's): at a hundred
    thousand runs the fold is a tenth of a re-scan.
    """
    parts = []
    size, mtime = 0, 0.0
    for path, st in sorted(listed):
        parts.append(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}")
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
    text = "\n".join(parts).encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return Stat(size, mtime, int.from_bytes(digest, "little", signed=True))


def _numbers(values: np.ndarray) -> pa.Array:
    kind = pa.int64() if values.dtype == np.int64 else pa.float64()
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _stat_files(folder: str, out: list[tuple[str, os.stat_result]]) -> None:
    """Every regular file under ``folder`` (sub-folders are keys with ``/``), with its stat."""
    for entry in _entries(folder):
        if entry.is_dir(follow_symlinks=False):
            _stat_files(entry.path, out)
        elif entry.is_file():
            try:
                st = entry.stat()
            except OSError:
                continue  # gone since the listing: not there
            out.append((entry.path, st))


def list_runs(
    experiments: Sequence[ExperimentDir], run_id_of: Callable[[str], str], seen: set[str]
) -> Iterator[Listing]:
    """The run folders of these experiments with their files, a chunk at a time.

    A run folder is one with its own ``meta.yaml``; ``models/``, ``datasets/`` and ``tags/``
    beside the runs have none. A run id already in ``seen`` (the same run in two experiment
    folders) is skipped: the first is kept. ``seen`` ends holding every run id listed.
    """
    chunk, listed = Listing(), 0
    for exp in experiments:
        for child in sorted(_entries(exp.path), key=lambda e: e.name):
            if not child.is_dir(follow_symlinks=False):
                continue
            inside = _entries(child.path)
            if not _is_run(inside):
                continue
            rid = run_id_of(child.name)
            if rid in seen:
                continue
            seen.add(rid)
            run = RunDir(child.name, child.path, exp)
            meta: list[tuple[str, os.stat_result]] = []
            values: list[tuple[str, os.stat_result]] = []  # params and tags
            metrics: list[tuple[str, os.stat_result]] = []
            for entry in inside:
                name = entry.name
                if name == META:
                    try:
                        meta.append((entry.path, entry.stat()))
                    except OSError:
                        continue
                elif name in GROUPS and entry.is_dir(follow_symlinks=False):
                    _stat_files(entry.path, metrics if name == "metrics" else values)
            run.small = [path for path, _ in values]
            small = meta + values
            start = len(chunk.paths)
            chunk.add(run.small_state, fold_small_files(small))
            for path, st in metrics:
                chunk.add(path, st)
            chunk.runs.append((rid, run, start, len(chunk.paths)))
            listed += len(small) + len(metrics)
            if listed >= COMPARE_FILES:
                yield chunk
                chunk, listed = Listing(), 0
    if chunk.runs:
        yield chunk


def fill_keys(run: RunDir, paths: Sequence[str]) -> None:
    """Sort a run's listed files (its small ones and these) into its params, tags and metrics
    with their MLflow keys."""
    cut = len(run.path) + 1
    for path in (*run.small, *paths):
        group, sep, key = path[cut:].partition(os.sep)
        if sep and group in GROUPS:
            getattr(run, group).append((path, key.replace(os.sep, "/")))


def looks_like_store(dirpath: Path, dirnames: Sequence[str]) -> bool:
    """An experiment folder (numeric name, ``meta.yaml`` inside) among the children."""
    return any(d.isdigit() and (dirpath / d / META).is_file() for d in dirnames)


# -- planning ---------------------------------------------------------------------------------


@dataclass
class MetricRead:
    path: Path
    key: str
    offset: int
    st: Stat


@dataclass
class RunPlan:
    run: RunDir
    run_id: str
    stats: dict[str, Stat] = field(default_factory=dict)
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


def _same(st: Stat | os.stat_result, old: FileState | None) -> bool:
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
    listed: dict[str, Stat],
    states: dict[str, FileState],
    recorded: Sequence[str],
    force: bool = False,
) -> RunPlan | None:
    """What changed in one run folder since the last scan; None when nothing did.

    ``listed`` holds the run's files with the stat the listing read (see :func:`fill_keys` for
    their keys). ``force`` re-reads the run's small files even if untouched (its experiment
    changed).
    """
    plan = RunPlan(run, run_id, fresh=not recorded)
    changed = force
    keys = dict(run.metrics)
    for path, st in listed.items():
        old = states.get(path)
        key = keys.get(path)
        if key is None:
            # meta.yaml, params and tags are rewritten in place, not appended to: any new
            # size or time means new content, and the run's small files are all re-read.
            plan.stats[path] = st
            changed = changed or not _same(st, old)
            continue
        if _same(st, old):
            plan.stats[path] = st
            continue
        # Classified by the listing's stat: a file appended to since is read to its end
        # all the same, and the next scan sees the size it has then.
        change, _ = classify(path, old, st)
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

"""Find the sources under a folder and bring the store up to date with them.

The walk offers each folder to the importers in registry order; an importer claims the files it
reads (so the generic readers skip them) and may stop the walk from descending into a tracker's
own tree. Folders that never hold runs (.git, virtualenvs, node_modules, caches, the store
itself) are skipped by name.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec

from mltop.core.common.regular_files import Confinement, confined_to, walk_tree
from mltop.core.entities import ImportReport, Problem, SourceRef
from mltop.core.importers.base import Detection, Importer, Sources, listed_mask
from mltop.core.importers.registry import importers as default_importers
from mltop.core.store import STORE_DIR, Store

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        STORE_DIR,
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".ipynb_checkpoints",
        "site-packages",
        ".cache",
        ".dvc",
    }
)

P = ParamSpec("P")

# Suffixes of the files that hold runs (SQLite trackers, metric logs): one of these left unclaimed
# because it cannot even be opened is a problem line, not a file silently passed over.
SOURCE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".jsonl", ".csv", ".tsv")

Progress = Callable[[str, int, int], None]
"""progress(what, done, total): called as sources are imported."""


def _is_virtualenv(dirpath: str, filenames: list[str]) -> bool:
    return "pyvenv.cfg" in filenames


@dataclass(frozen=True)
class Found:
    refs: Sources
    importers: dict[str, Importer]
    #: Files that are not regular files (FIFOs, devices, sockets), with what each is: never read.
    not_regular: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Sources whose paths are not UTF-8: the store keeps paths as text, so they are left out and
    # reported rather than stopping the whole import.
    undecodable: list[Path] = field(default_factory=list)
    #: Folders that could not be listed: what the store has under them is kept, not forgotten.
    unlistable: list[Path] = field(default_factory=list)


def _problem(path: Path | str, message: str) -> Problem:
    return Problem(str(path), " ".join(message.split()))


def _unreadable(path: Path) -> str | None:
    """Why a regular file cannot be opened for reading, or None when it can (or is not regular).

    Opened with O_NONBLOCK and only after a stat says it is a regular file, so a FIFO or a
    device under the folder is never opened here. Symbolic links are left to the walk's own
    rule for links (a dangling one is not an unreadable source).
    """
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return None
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        return f"cannot read ({exc.strerror or type(exc).__name__})"
    return None


def _detect(
    imp: Importer, path: Path, dirnames: list[str], filenames: list[str], problems: list[Problem]
) -> Detection | None:
    """``imp.detect`` guarded: one odd file must not stop the walk, nor hide its neighbours.

    When detection raises, each file is offered alone to find the ones that make it raise; those
    are problem lines and the folder is detected again without them. Only when no single file
    is to blame is the whole folder the problem.
    """
    try:
        return imp.detect(path, dirnames, filenames)
    except Exception as exc:
        error: Exception = exc
    culprits = []
    for name in filenames:
        try:
            imp.detect(path, list(dirnames), [name])
        except Exception as exc:
            culprits.append(name)
            problems.append(_failed(path / name, imp, exc))
    if culprits:
        try:
            return imp.detect(path, dirnames, [f for f in filenames if f not in culprits])
        except Exception as exc:
            error = exc
    problems.append(_failed(path, imp, error))
    return None


def _failed(where: Path, imp: Importer, exc: Exception) -> Problem:
    return _problem(where, f"{imp.kind} detection failed: {type(exc).__name__}: {exc}")


def _decodable(name: str) -> bool:
    """False for a name Python read with undecodable bytes (as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_marker(chosen: list[Importer]) -> tuple[str, str] | None:
    """(marker file, kind) when the first importer names its sources by a marker file.

    Only the first: a folder holding its marker is then its source whatever the others would
    say, exactly as its ``detect`` claiming every file and pruning the walk decides it.
    """
    marker = getattr(chosen[0], "folder_marker", None) if chosen else None
    return (marker, chosen[0].kind) if isinstance(marker, str) else None


def discover(root: Path, importers: Iterable[Importer] | None = None) -> Found:
    """Walk ``root`` and list its sources, in walk order, without reading them.

    Detection may peek at a file's head; run inside :func:`confined_to` (as :func:`ingest`
    does) so that a symlink out of ``root`` is not followed by it either. A folder holding the
    first importer's ``folder_marker`` is recorded as text, with no ``Path``, ``Detection`` or
    ``SourceRef`` made for it: a re-scan of a hundred thousand run folders is mostly this.
    """
    chosen = list(importers) if importers is not None else default_importers()
    by_kind = {imp.kind: imp for imp in chosen}
    root = root.resolve()
    refs = Sources(root)
    marked = _first_marker(chosen)
    marker, marker_kind = marked if marked is not None else ("", "")
    folder_files: tuple[str, ...] = getattr(chosen[0], "folder_files", ()) if marked else ()
    # The marked folders recorded, made only if another importer names a source of that kind.
    folders: set[str] | None = None
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    not_regular: list[tuple[Path, str]] = []
    undecodable: list[Path] = []
    unlistable: list[Path] = []

    def unlisted(exc: OSError) -> None:
        # A folder that cannot be listed may hold runs: say so instead of walking past it.
        where = exc.filename or root
        unlistable.append(Path(where))
        problems.append(_problem(where, f"cannot list folder ({exc.strerror or exc})"))

    if root.is_file():
        for ref in _sources_of_file(root, chosen, problems):
            refs.append(ref)
        return Found(refs, by_kind, problems=problems)
    for dirpath, dirnames, filenames, others in walk_tree(root, onerror=unlisted):
        if _is_virtualenv(dirpath, filenames):
            dirnames[:] = []
            continue
        if others:
            not_regular.extend((Path(dirpath) / name, what) for name, what in sorted(others))
        if marked is not None and marker in filenames:
            dirnames[:] = []  # what the importer's detect says: every file claimed, no descent
            if seen and (marker_kind, dirpath) in seen:
                continue
            if dirpath.isascii() or _decodable(dirpath):
                refs.append_folder(marker_kind, dirpath, listed_mask(folder_files, filenames))
                if folders is not None:
                    folders.add(dirpath)
            else:
                undecodable.append(Path(dirpath))
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        filenames.sort()
        path = Path(dirpath)
        unclaimed = list(filenames)
        for imp in chosen:
            detection = _detect(imp, path, dirnames, unclaimed, problems)
            if detection is None:
                continue
            problems.extend(_problem(p, message) for p, message in detection.problems)
            for ref in detection.refs:
                if ref.kind not in by_kind:
                    continue  # handed over to a reader that was not asked for
                location = _inside(ref.location, root, path)
                key = (ref.kind, str(location))
                if ref.kind == marker_kind and folders is None:
                    folders = set(refs.of_kind(marker_kind).texts())
                if key in seen or (folders is not None and key[1] in folders):
                    continue
                seen.add(key)
                if _decodable(key[1]):
                    refs.append(SourceRef(ref.kind, location, root))
                else:
                    undecodable.append(location)
            claimed = detection.claimed | {p.name for p, _ in detection.problems}
            if claimed:
                unclaimed = [f for f in unclaimed if f not in claimed]
            if detection.prune:
                dirnames[:] = []
                unclaimed = []
                break
        for name in unclaimed:
            if name.lower().endswith(SOURCE_SUFFIXES):
                why = _unreadable(path / name)
                if why is not None:
                    problems.append(_problem(path / name, why))
    return Found(refs, by_kind, not_regular, problems, undecodable, unlistable)


def report_refused(report: ImportReport, confinement: Confinement) -> None:
    """One problem line per symlink not followed that no reader reported already."""
    reported = {problem.path for problem in report.problems}
    for path, reason in confinement.refused.items():
        if path not in reported:
            report.problem(path, reason)


def _confined(
    ingest: Callable[Concatenate[Path, P], ImportReport],
) -> Callable[Concatenate[Path, P], ImportReport]:
    """Run an ingest of ``root`` confined to it (see :func:`confined_to`), reporting refusals."""

    @functools.wraps(ingest)
    def confined(root: Path, *args: P.args, **kwargs: P.kwargs) -> ImportReport:
        resolved = root.resolve()
        with confined_to(resolved if resolved.is_dir() else resolved.parent) as confinement:
            report = ingest(root, *args, **kwargs)
        report_refused(report, confinement)
        return report

    return confined


def _inside(location: Path, root: Path, dirpath: Path) -> Path:
    """``location``, or ``dirpath`` when the source would reach outside the opened folder.

    A Hugging Face ``checkpoint-N/`` belongs to its output folder; opened directly, that folder
    is outside what the user asked for, so the checkpoint is a run of its own (named after
    itself), and nothing outside it is read.
    """
    # Compared as text: Path.parents builds a Path per level, for every source of the walk.
    inner, outer = str(location), str(root)
    if inner == outer or inner.startswith(outer if outer.endswith(os.sep) else outer + os.sep):
        return location
    return dirpath


def _sources_of_file(
    path: Path, chosen: list[Importer], problems: list[Problem]
) -> list[SourceRef]:
    """The sources that read ``path``, judged as the walk of its folder would judge them.

    Its folder is looked at whole (without descending), so a file that is one part of a source
    (an mltop run's ``metrics.jsonl``, a Lightning version's ``metrics.csv``) means that source,
    and a file that is a source by itself (``mlflow.db``, a Keras CSV) means just that file.
    Empty when no importer reads the file.
    """
    folder = path.parent
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    dirnames = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    dirnames = [d for d in dirnames if d not in SKIP_DIRS]
    unclaimed = [e.name for e in entries if e.is_file()]  # regular files: never a FIFO
    kinds = {imp.kind for imp in chosen}
    for imp in chosen:
        detection = _detect(imp, folder, list(dirnames), unclaimed, problems)
        if detection is None:
            continue
        located = [
            SourceRef(r.kind, _inside(r.location, folder, folder))
            for r in detection.refs
            if r.kind in kinds
        ]
        refs = [r for r in located if r.location == path]
        if not refs and path.name in detection.claimed:
            refs = [r for r in located if r.location == folder]
        if refs:
            return [SourceRef(r.kind, r.location, path) for r in refs]
        if detection.claimed:
            unclaimed = [f for f in unclaimed if f not in detection.claimed]
        if detection.prune or path.name not in unclaimed:
            break
    return []


@_confined
def ingest(
    root: Path,
    store: Store,
    *,
    progress: Progress | None = None,
    importers: Iterable[Importer] | None = None,
    forget_missing: bool = True,
) -> ImportReport:
    """Discover sources under ``root`` and import what changed since the last scan.

    Runs whose source disappeared from disk are removed (the store mirrors the folder) when
    ``forget_missing`` is set and ``root`` is a folder. When ``root`` is the folder the store
    belongs to, that goes for every source on disk outside it too: a store copied or moved with
    its folder keeps nothing of the old location, of folders gone since, or of siblings. A
    symlink out of ``root`` is not followed (see
    :func:`~mltop.core.common.regular_files.confined_to`) and becomes a problem line.
    """
    report = ImportReport()
    root = root.resolve()
    found = discover(root, importers)
    report.sources_seen = len(found.refs)
    for problem in found.problems:
        report.problem(problem.path, problem.message)
    for path in found.undecodable:
        report.problem(path, "the path is not valid UTF-8; skipped (rename it to import it)")
    kinds = found.refs.kinds()
    by_kind = {kind: found.refs.of_kind(kind) for kind in dict.fromkeys(kinds)}
    total = len(found.refs)
    done = 0
    if progress:
        progress("scanning", 0, total)
    # In the importers' order, not the walk's: the readers of an MLflow run's artifacts come
    # after the MLflow readers, which may have dropped the run's points to read them anew.
    order = list(found.importers)
    for kind, refs in sorted(by_kind.items(), key=lambda item: order.index(item[0])):
        imp = found.importers[kind]
        try:
            imp.import_sources(store, refs, report)
        except Exception as exc:  # an importer bug must not hide every other source
            report.problem(refs[0].location, f"{kind} import failed: {type(exc).__name__}: {exc}")
        done += len(refs)
        if progress:
            progress(kind, done, total)
    # A marked folder (a run folder) holds no model registry: only detected sources can.
    sync_registries(store, found.refs.detected(), report)
    reported = {problem.path for problem in report.problems}
    for path, what in found.not_regular:
        if str(path) not in reported:  # an importer that looked for it by name said so already
            report.problem(path, f"not read ({what}, not a regular file)")
    locations = found.refs.texts()
    # Joins of every source seen (a hundred thousand at a re-scan of as many run folders) with
    # the tables: DuckDB's second thread took no less time and held 13 MB more at the peak.
    with store.one_worker_thread():
        store.touch_sources(kinds, locations)
        if forget_missing and root.is_dir():
            # A source that could not be read this time keeps the runs it had: an unreadable or
            # half-copied file is not a deleted one.
            keep = locations + [p.path for p in found.problems]
            keep += _stored_under(store, found.unlistable)
            scope = os.sep if store.anchor == root else str(root)
            report.removed_runs += store.forget_sources_under(scope, keep)
            store.forget_registries(scope, keep)
    return report


def sync_registries(store: Store, refs: Iterable[SourceRef], report: ImportReport) -> None:
    """The model registries of the local sources among ``refs`` (see
    :func:`mltop.core.registry.sync.sync_local`).

    Its module is imported only when there is a source to offer: it brings every registry
    reader and an HTTP client (7 MB and a fifth of a second), which a folder of run folders
    never needs.
    """
    refs = list(refs)
    if refs:
        from mltop.core.registry.sync import sync_local

        sync_local(store, refs, report)


def _stored_under(store: Store, folders: list[Path]) -> list[str]:
    """The stored sources inside ``folders``: a folder that cannot be listed today (permissions,
    a flaky mount) has not lost its runs, so they stay until it can be read again."""
    if not folders:
        return []
    prefixes = tuple(str(folder).rstrip(os.sep) + os.sep for folder in folders)
    exact = {str(folder) for folder in folders}
    return [
        location
        for _kind, location in store.sources()
        if location in exact or location.startswith(prefixes)
    ]

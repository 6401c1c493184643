"""Find the sources under a folder and bring the store up to date with them.

The walk offers each folder to the importers in registry order; an importer claims the files it
reads (so the generic readers skip them) and may stop the walk from descending into a tracker's
own tree. Folders that never hold runs (.git, virtualenvs, node_modules, caches, the store
itself) are skipped by name.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.entities import ImportReport, Problem, SourceRef
from mltop.core.importers.base import Detection, Importer
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

# Suffixes of the files that hold runs (SQLite trackers, metric logs): one of these left unclaimed
# because it cannot even be opened is a problem line, not a file silently passed over.
SOURCE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".jsonl", ".csv", ".tsv")

Progress = Callable[[str, int, int], None]
"""progress(what, done, total): called as sources are imported."""


def _is_virtualenv(dirpath: str, filenames: list[str]) -> bool:
    return "pyvenv.cfg" in filenames


@dataclass(frozen=True)
class Found:
    refs: list[SourceRef]
    importers: dict[str, Importer]
    problems: list[Problem] = field(default_factory=list)


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


def discover(root: Path, importers: Iterable[Importer] | None = None) -> Found:
    """Walk ``root`` and list its sources, in walk order, without reading them."""
    chosen = list(importers) if importers is not None else default_importers()
    by_kind = {imp.kind: imp for imp in chosen}
    refs: list[SourceRef] = []
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    root = root.resolve()

    def unlisted(exc: OSError) -> None:
        # A folder that cannot be listed may hold runs: say so instead of walking past it.
        where = exc.filename or root
        problems.append(_problem(where, f"cannot list folder ({exc.strerror or exc})"))

    if root.is_file():
        walk: Iterable[tuple[str, list[str], list[str]]] = [(str(root.parent), [], [root.name])]
    else:
        walk = os.walk(root, onerror=unlisted, followlinks=False)
    for dirpath, dirnames, filenames in walk:
        if _is_virtualenv(dirpath, filenames):
            dirnames[:] = []
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
                key = (ref.kind, str(ref.location))
                if key not in seen:
                    seen.add(key)
                    refs.append(SourceRef(ref.kind, ref.location, root))
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
    return Found(refs, by_kind, problems)


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
    ``forget_missing`` is set and ``root`` is a folder.
    """
    report = ImportReport()
    root = root.resolve()
    found = discover(root, importers)
    report.sources_seen = len(found.refs)
    for problem in found.problems:
        report.problem(problem.path, problem.message)
    by_kind: dict[str, list[SourceRef]] = {}
    for ref in found.refs:
        by_kind.setdefault(ref.kind, []).append(ref)
    total = len(found.refs)
    done = 0
    if progress:
        progress("scanning", 0, total)
    for kind, refs in by_kind.items():
        imp = found.importers[kind]
        try:
            imp.import_sources(store, refs, report)
        except Exception as exc:  # an importer bug must not hide every other source
            report.problem(refs[0].location, f"{kind} import failed: {type(exc).__name__}: {exc}")
        done += len(refs)
        if progress:
            progress(kind, done, total)
    store.touch_sources((ref.kind, str(ref.location)) for ref in found.refs)
    if forget_missing and root.is_dir():
        # A source that could not be read this time keeps the runs it had: an unreadable or
        # half-copied file is not a deleted one.
        keep = [str(ref.location) for ref in found.refs] + [p.path for p in found.problems]
        report.removed_runs = store.forget_sources_under(str(root), keep)
    return report

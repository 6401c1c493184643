"""Find the sources under a folder and bring the store up to date with them.

The walk offers each folder to the importers in registry order; an importer claims the files it
reads (so the generic readers skip them) and may stop the walk from descending into a tracker's
own tree. Folders that never hold runs (.git, virtualenvs, node_modules, caches, the store
itself) are skipped by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mltop.core.entities import ImportReport, SourceRef
from mltop.core.importers.base import Importer
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

Progress = Callable[[str, int, int], None]
"""progress(what, done, total): called as sources are imported."""


def _is_virtualenv(dirpath: str, filenames: list[str]) -> bool:
    return "pyvenv.cfg" in filenames


@dataclass(frozen=True)
class Found:
    refs: list[SourceRef]
    importers: dict[str, Importer]


def discover(root: Path, importers: Iterable[Importer] | None = None) -> Found:
    """Walk ``root`` and list its sources, in walk order, without reading them."""
    chosen = list(importers) if importers is not None else default_importers()
    by_kind = {imp.kind: imp for imp in chosen}
    refs: list[SourceRef] = []
    seen: set[tuple[str, str]] = set()
    root = root.resolve()
    if root.is_file():
        return Found(_sources_of_file(root, chosen), by_kind)
    walk = os.walk(root, onerror=None, followlinks=False)
    for dirpath, dirnames, filenames in walk:
        if _is_virtualenv(dirpath, filenames):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        filenames.sort()
        path = Path(dirpath)
        unclaimed = list(filenames)
        for imp in chosen:
            detection = imp.detect(path, dirnames, unclaimed)
            if detection is None:
                continue
            for ref in detection.refs:
                if ref.kind not in by_kind:
                    continue  # handed over to a reader that was not asked for
                location = _inside(ref.location, root, path)
                key = (ref.kind, str(location))
                if key not in seen:
                    seen.add(key)
                    refs.append(SourceRef(ref.kind, location, root))
            if detection.claimed:
                unclaimed = [f for f in unclaimed if f not in detection.claimed]
            if detection.prune:
                dirnames[:] = []
                break
    return Found(refs, by_kind)


def _inside(location: Path, root: Path, dirpath: Path) -> Path:
    """``location``, or ``dirpath`` when the source would reach outside the opened folder.

    A Hugging Face ``checkpoint-N/`` belongs to its output folder; opened directly, that folder
    is outside what the user asked for, so the checkpoint is a run of its own (named after
    itself), and nothing outside it is read.
    """
    if location == root or root in location.parents:
        return location
    return dirpath


def _sources_of_file(path: Path, chosen: list[Importer]) -> list[SourceRef]:
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
    unclaimed = [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
    kinds = {imp.kind for imp in chosen}
    for imp in chosen:
        detection = imp.detect(folder, list(dirnames), unclaimed)
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
    its folder keeps nothing of the old location, of folders gone since, or of siblings.
    """
    report = ImportReport()
    root = root.resolve()
    found = discover(root, importers)
    report.sources_seen = len(found.refs)
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
        scope = os.sep if store.anchor == root else str(root)
        report.removed_runs = store.forget_sources_under(
            scope, [str(ref.location) for ref in found.refs]
        )
    return report

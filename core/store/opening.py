"""The composed :class:`Store` and the ways to open one (a project's file, a fallback, memory).

DuckDB lets one process hold a file read-write and refuses every other process, even read-only.
:func:`open_store` therefore falls back to a private temporary store when the file is locked (a
second mltop, or ``mltop runs`` while the TUI is open) and says so in :attr:`Store.note`.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from mltop.core.common import scratch
from mltop.core.store.files import FileTables
from mltop.core.store.logs import LogTables
from mltop.core.store.points import PointTables
from mltop.core.store.queries import RunsTableQueries
from mltop.core.store.registry import RegistryTables
from mltop.core.store.runs import RunTables
from mltop.core.store.schema import STORE_DIR, STORE_ENV, STORE_FILE, StoreError, default_store_path


class Store(RunTables, PointTables, FileTables, LogTables, RunsTableQueries, RegistryTables):
    """A DuckDB metadata store. Use :func:`open_store` to get one.

    One object over one connection, composed from one class per family of tables (all sharing
    :class:`~mltop.core.store.connection.StoreConnection`), so callers keep a single handle and
    a transaction spans every family.
    """


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflict" in text or "could not set lock" in text)


def scratch_base(store_path: Path) -> Path:
    """Where processes using this store keep temporary files: ``.mltop/tmp`` beside it.

    Inside a ``.mltop`` folder, which discovery and the watcher skip, wherever the store is.
    """
    folder = store_path.parent
    return (folder if folder.name == STORE_DIR else folder / STORE_DIR) / "tmp"


def open_store(root: Path, store_path: Path | None = None) -> Store:
    """Open the store for ``root``: ``--store``, then ``$MLTOP_STORE``, then ``root/.mltop/``.

    When another process holds the file (DuckDB allows one writer and then refuses even readers),
    or the folder is not writable, return a private temporary store instead, with
    :attr:`Store.note` saying why; the caller re-imports the sources into it.
    """
    if store_path is None and os.environ.get(STORE_ENV):
        store_path = Path(os.environ[STORE_ENV]).expanduser()
    path = store_path or default_store_path(root)
    # A store in a `.mltop/` folder indexes the folder holding it (see Store._settle_anchor).
    anchor = path.parent.parent.resolve() if path.parent.name == STORE_DIR else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.name == STORE_DIR:
            ignore = path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by mltop: the store is rebuilt from the sources\n*\n")
        store = Store(path, anchor=anchor)
        scratch.place_in(scratch_base(path))
        return store
    except duckdb.Error as exc:
        if _is_lock_error(exc):
            why = f"{path} is in use by another mltop"
        else:
            raise StoreError(f"{path}: cannot open store ({' '.join(str(exc).split())})") from exc
    except OSError as exc:
        why = f"cannot write {path.parent} ({exc.strerror or exc})"
    temp_dir = Path(scratch.mkdtemp(prefix="store-"))
    return Store(
        temp_dir / STORE_FILE,
        note=f"{why}; using a private temporary store built from the sources",
        temp_dir=temp_dir,
        anchor=anchor,
    )


def open_memory_store() -> Store:
    """An in-memory store, for tests and one-shot reads."""
    return Store(None)

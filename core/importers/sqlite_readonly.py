"""Opening a SQLite source (MLflow's ``mlflow.db``, trackio projects) without writing beside it.

A SQLite reader is not as passive as it looks. In WAL mode committed rows may sit in ``<db>-wal``
until a checkpoint, and reading them needs the wal-index in ``<db>-shm``, which any reader,
``mode=ro`` included, creates when it is missing; ``mode=ro`` on a WAL database without a
``-wal`` creates both files. A source folder must never gain files because mltop looked at it
(a read-only checkout, a synced folder, a colleague's ``ls``), so the way in depends on what is
there, checked each time:

* no ``-wal``, or an empty one, and the database in WAL mode (header byte 18 is 2), or in
  rollback mode and quiet (no ``-journal``, no write for a few seconds) -> ``immutable=1``, which
  reads the main file only and creates nothing; everything committed is in it;
* a rollback-mode database being written -> ``mode=ro``: readers take shared locks on the file
  itself, so a running writer is respected, and no file is created;
* a non-empty ``-wal`` with its ``-shm`` (a live writer) -> ``mode=ro`` through the writer's own
  index: nothing is created;
* a non-empty ``-wal`` without ``-shm`` (a killed writer, a copied folder), or when ``mode=ro``
  fails -> the database and its WAL are copied to this process's scratch folder
  (:mod:`mltop.core.common.scratch`) and the copy is read.

We checked with SQLite 3.40: a WAL database with one row in the main file and one committed row
in its WAL reads one row with ``immutable=1`` and two with ``mode=ro``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mltop.core.common import scratch
from mltop.core.common.regular_files import open_regular

#: A rollback-mode database untouched this long, with no -journal beside it, is read immutable.
QUIET_SECONDS = 5.0
_WAL_MODE = 2  # header bytes 18-19 (file format read/write versions): 2 means WAL


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _in_wal_mode(db: Path) -> bool:
    try:
        with open_regular(db) as fh:
            header = fh.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == _WAL_MODE


def how_to_open(db: Path) -> str:
    """``"immutable"``, ``"ro"`` or ``"copy"``: the way in that writes nothing (module doc)."""
    if _size(Path(f"{db}-wal")) > 0:
        return "ro" if Path(f"{db}-shm").exists() else "copy"
    if _in_wal_mode(db):
        return "immutable"
    if Path(f"{db}-journal").exists():
        return "ro"
    try:
        quiet = time.time() - os.stat(db).st_mtime > QUIET_SECONDS
    except OSError:
        quiet = False
    return "immutable" if quiet else "ro"


def connect_uri(db: Path, how: str, **kwargs: Any) -> sqlite3.Connection:
    """A connection to ``db`` itself, read-only (``how`` is "immutable" or "ro")."""
    query = "?mode=ro&immutable=1" if how == "immutable" else "?mode=ro"
    return sqlite3.connect(db.absolute().as_uri() + query, uri=True, **kwargs)


@contextlib.contextmanager
def open_readonly(db: Path, **kwargs: Any) -> Iterator[sqlite3.Connection]:
    """A read-only connection to ``db`` that creates no file beside it; ``kwargs`` go to
    :func:`sqlite3.connect`. Raises ``sqlite3.Error`` or ``OSError`` when it cannot be read."""
    how = how_to_open(db)
    if how != "copy":
        con = connect_uri(db, how, **kwargs)
        try:
            if how == "ro":  # a writer's index that cannot be used: read a copy instead
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            con.close()
        else:
            try:
                yield con
            finally:
                con.close()
            return
    folder = Path(scratch.mkdtemp(prefix="sqlite-"))
    try:
        copy = folder / db.name
        _copy_regular(db, copy)
        with contextlib.suppress(OSError):
            _copy_regular(Path(f"{db}-wal"), Path(f"{copy}-wal"))
        con = sqlite3.connect(str(copy), **kwargs)
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy_regular(src: Path, dst: Path) -> None:
    with open_regular(src) as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)

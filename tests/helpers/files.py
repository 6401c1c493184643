"""Small files that tests write by hand next to the tool-made fixtures."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def write_lines(path: Path, lines: list[str]) -> Path:
    """``lines`` as a UTF-8 text file at ``path``, each ended by a newline; returns ``path``."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def not_tracker_databases(folder: Path) -> None:
    """Two ``.db`` files in ``folder`` that no tracker wrote: an application's SQLite database
    with a ``runs`` table of its own, and a text file that is not SQLite at all."""
    con = sqlite3.connect(folder / "app.db")
    con.execute("CREATE TABLE runs (id INTEGER)")
    con.commit()
    con.close()
    (folder / "notes.db").write_text("not a database")

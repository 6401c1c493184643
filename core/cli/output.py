"""What every ``mltop`` command shares: exit codes, usage errors, consoles, problem lines.

Kept small and free of command logic so each command module reads on its own. Exit codes:
0 ok, 1 problems found (unreadable files, a failed gate), 2 usage errors.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from mltop.core.common.sanitize import inert
from mltop.core.entities import ImportReport, Run
from mltop.core.store import Store, open_store

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line: ``main`` prints it as one inert message and exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error exits 2 the same way."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console(file: TextIO | None = None) -> Console:
    console = Console(file=file, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or redirected: no terminal width to fit, so never truncate cells.
        console = Console(file=file, highlight=False, soft_wrap=False, width=1000)
    return console


def open_store_for(root: Path, store_arg: str | None, err: Console) -> Store:
    """The store of ``root`` (a folder, or a file's folder) or ``--store``, with any note about
    it said on stderr."""
    store = open_store(store_root(root), Path(store_arg).expanduser() if store_arg else None)
    if store.note:
        err.print(Text(f"mltop: {inert(store.note)}", style="yellow"))
    return store


def resolve_root(arg: str | None) -> Path:
    root = Path(arg or ".").expanduser()
    if not root.exists():
        raise UsageError(f"mltop: {root}: no such file or folder")
    return root.resolve()


def store_root(root: Path) -> Path:
    return root if root.is_dir() else root.parent


def progress_text(what: str) -> str:
    """A progress label as Rich's ``TextColumn`` shows it: it parses markup, so escape it too."""
    return escape(inert(what))


def print_problems(report: ImportReport, err: Console) -> None:
    for problem in report.problems:
        err.print(Text(str(problem)))  # one inert line, whatever the file name holds


def problems_exit(report: ImportReport, err: Console) -> int:
    """Say the import's problems and give the exit code they mean: 1 with any, else 0."""
    print_problems(report, err)
    return EXIT_PROBLEMS if report.problems else EXIT_OK


def run_brief(run: Run) -> str:
    return inert(f"{run.name} ({run.id[:8]}, {run.source_kind}, {run.location})")


def candidates(runs: Sequence[Run], limit: int = 8) -> str:
    """The runs an ambiguous RUN argument matched, for the error message that lists them."""
    shown = "; ".join(run_brief(r) for r in runs[:limit])
    return shown + (f"; and {len(runs) - limit} more" if len(runs) > limit else "")

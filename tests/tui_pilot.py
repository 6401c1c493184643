"""Helpers for driving the app in tests: build a project, start the app, wait for quiet."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from mltop.tui.app import MltopApp
from mltop.tui.screens.runs.screen import RunsScreen

SIZE = (120, 40)


def make_app(root: Path, tmp_path: Path, **kwargs: object) -> MltopApp:
    """The app over ``root`` with a real DuckDB store file in ``tmp_path``."""
    return MltopApp(root, tmp_path / "store" / "store.duckdb", **kwargs)  # type: ignore[arg-type]


ENDLESS_GROUPS = frozenset({"watch", "logs-follow"})
"""Worker groups that follow files until their app or screen closes."""


async def until(
    pilot: Pilot,
    predicate: Callable[[], bool],
    timeout: float = 15.0,
    describe: Callable[[], str] | None = None,
) -> None:
    """Let the app run (workers included) until ``predicate`` holds.

    On a timeout the error names the workers still on the app and what ``describe`` says of
    the state reached, so a failure seen once on a loaded machine can be read afterwards."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause()
        if predicate():
            return
        # An exclusive worker superseded by a newer request is cancelled: keep waiting.
        # The live watcher's and the Logs screen's followers run until their app or screen
        # closes: wait for the others only, and never past the deadline, so a worker that
        # follows something without end cannot hold the test forever.
        # (An empty list means "all workers" to Textual, so only wait when there are some.)
        finite = [w for w in pilot.app.workers if w.group not in ENDLESS_GROUPS]
        if finite:
            left = max(0.05, deadline - time.monotonic())
            with contextlib.suppress(WorkerCancelled, TimeoutError):
                await asyncio.wait_for(pilot.app.workers.wait_for_complete(finite), left)
        await pilot.pause()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(timed_out(pilot, describe))
        await asyncio.sleep(0.02)


def timed_out(pilot: Pilot, describe: Callable[[], str] | None) -> str:
    """What :func:`until` says when the state it waits for did not come."""
    workers = ", ".join(f"{w.group}/{w.name}: {w.state.name}" for w in pilot.app.workers)
    state = f"; {describe()}" if describe is not None else ""
    screen = type(pilot.app.screen).__name__
    return (
        f"the app did not reach the expected state in time (screen {screen};"
        f" workers: {workers or 'none'}{state})"
    )


async def settled(pilot: Pilot) -> RunsScreen:
    """Wait until the runs screen has read the folder and answered its latest request."""
    app = pilot.app
    assert isinstance(app, MltopApp)
    await until(pilot, lambda: app.runs_screen.settled)
    return app.runs_screen


async def watching(pilot: Pilot) -> RunsScreen:
    """:func:`settled`, and the live watcher started (it starts after the first scan)."""
    screen = await settled(pilot)
    app = pilot.app
    assert isinstance(app, MltopApp)
    await until(pilot, lambda: app._watching)
    return screen


def names(screen: RunsScreen) -> list[str]:
    assert screen.view is not None
    return screen.view.table.column("name").to_pylist()


async def type_text(pilot: Pilot, text: str) -> None:
    """Type ``text`` into the focused input in one edit (key by key is slow and adds nothing)."""
    from textual.widgets import Input

    focused = pilot.app.focused
    assert isinstance(focused, Input)
    focused.insert_text_at_cursor(text)
    await pilot.pause()

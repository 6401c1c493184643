"""Starting the app over a project and opening its screens by their keys, as a person would.

Most app tests begin the same way (build the app over a folder, run it at a size, wait for the
runs screen to read the folder, press a key and wait for the screen it opens); these are those
steps once, so each test shows only what it checks."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from textual.command import CommandList, CommandPalette
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen
from tui_pilot import SIZE, make_app, settled, until

from mltop.tui.app import MltopApp
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.screens.runs.screen import RunsScreen

S = TypeVar("S", bound=Screen[object])


@contextlib.asynccontextmanager
async def running(
    root: Path, tmp_path: Path, size: tuple[int, int] = SIZE, **kwargs: object
) -> AsyncIterator[tuple[MltopApp, Pilot[object]]]:
    """The app over ``root`` (its store in ``tmp_path``) running at ``size``; nothing awaited."""
    app = make_app(root, tmp_path, **kwargs)
    trace = MessageTrace()
    app.test_trace = trace  # type: ignore[attr-defined]
    async with app.run_test(size=size, message_hook=trace) as pilot:
        yield app, pilot


@contextlib.asynccontextmanager
async def on_runs(
    root: Path, tmp_path: Path, size: tuple[int, int] = SIZE, **kwargs: object
) -> AsyncIterator[tuple[MltopApp, Pilot[object], RunsScreen]]:
    """:func:`running`, once the runs screen has read the folder (:func:`settled`)."""
    async with running(root, tmp_path, size, **kwargs) as (app, pilot):
        yield app, pilot, await settled(pilot)


async def pushed(
    pilot: Pilot[object],
    key: str,
    kind: type[S],
    ready: Callable[[S], object] = lambda _: True,
) -> S:
    """Press ``key`` and wait until the app shows a ``kind`` screen that is ``ready``."""
    await pilot.press(key)
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, kind) and bool(ready(app.screen)))
    screen = app.screen
    assert isinstance(screen, kind)
    return screen


async def palette_titles(pilot: Pilot[object], more_than: int) -> list[str]:
    """Open the command palette (ctrl+p); once it lists more than ``more_than`` commands, and
    0.3 s later for the providers that answer last, the first line of every command's title,
    in the order shown."""
    palette = await pushed(pilot, "ctrl+p", CommandPalette)
    commands = palette.query_one(CommandList)
    await until(pilot, lambda: commands.option_count > more_than)
    await pilot.pause(0.3)
    return [
        str(commands.get_option_at_index(i).prompt).split("\n")[0]
        for i in range(commands.option_count)
    ]


async def open_detail(pilot: Pilot[object], *, charts_drawn: bool = True) -> RunDetailScreen:
    """Enter on the runs screen's current row once it settled: the run detail with its details
    read and, with ``charts_drawn``, its charts made and every one's series loaded."""
    await settled(pilot)
    screen = await pushed(pilot, "enter", RunDetailScreen, lambda s: s.details)
    if charts_drawn:
        await until(pilot, lambda: charts_loaded(screen), describe=lambda: charts_state(screen))
    else:
        await pilot.pause()
    return screen


class MessageTrace:
    """The messages a test's app dispatched that tell how its screens got their data: a count
    of each kind and the last ones in order (Textual calls this hook for every message it
    dispatches)."""

    KINDS = frozenset(
        {"Resized", "ChartDataLoaded", "DetailsLoaded", "LiveUpdate", "StateChanged", "Timer"}
    )

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.last: collections.deque[str] = collections.deque(maxlen=60)

    def __call__(self, message: Message) -> None:
        kind = type(message).__name__
        if kind not in self.KINDS or getattr(message, "_traced", False):
            return
        message._traced = True  # type: ignore[attr-defined]  # once, not at every bubbling step
        self.counts[kind] += 1
        if kind == "Resized":
            kind += f"({getattr(message.chart, 'key', '')}, {message.buckets})"  # type: ignore[attr-defined]
        elif kind == "ChartDataLoaded":
            kind += f"({message.key}, {message.x})"  # type: ignore[attr-defined]
        elif kind == "StateChanged":
            worker = message.worker  # type: ignore[attr-defined]
            kind += f"({worker.group}/{worker.name}: {message.state.name})"  # type: ignore[attr-defined]
        if kind != "Timer":
            self.last.append(kind)

    def __str__(self) -> str:
        return f"messages {dict(self.counts)}, the last: {list(self.last)}"


def charts_state(screen: RunDetailScreen) -> str:
    """Which charts still wait for their series, the requests not sent yet, and the messages
    that came (see :class:`MessageTrace`)."""
    waiting = [k for k, c in screen.charts.items() if c.series is None]
    sizes = [(k, c.size.width, c.size.height) for k, c in list(screen.charts.items())[:3]]
    return (
        f"{len(screen.charts)} charts, waiting for series: {waiting}; pending requests"
        f" {screen._pending}, flush scheduled {screen._flush_scheduled}; first charts' sizes"
        f" {sizes}; x {screen.x_kind}; {getattr(screen.app, 'test_trace', '')}"
    )


def charts_loaded(screen: RunDetailScreen) -> bool:
    """The run detail has made its charts and every one has its series."""
    return bool(screen.charts) and all(c.series is not None for c in screen.charts.values())

"""The whole app following a live run: mltop's resident memory and CPU over a long session.

    python bench/follow_app.py                         # 120 s on the run detail screen
    python bench/follow_app.py --screen logs           # the logs screen, following
    python bench/follow_app.py --soak 600              # 10 minutes

``bench/follow.py`` measures the pieces without a screen (log model, watcher, store). This runs
the real app (headless Textual at 120x40, the same process a terminal would run) over a
project while a writer process appends 1,000 log lines/s and 50 metric points/s to one run,
with the run's detail screen (charts growing) or its logs screen (following) open. It reports
mltop's resident memory at the start and end of the window (after a warm-up) and its CPU, and
how far the screen got (points in the open charts, lines in the log view) so a stalled app
cannot pass as a frugal one.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from follow import cpu_seconds, rss_mb

from mltop.core.common.malloc import limit_malloc_arenas
from mltop.tui.app import MltopApp
from mltop.tui.screens.logs.screen import LogsScreen
from mltop.tui.screens.runs.detail import RunDetailScreen

FOLLOW = Path(__file__).with_name("follow.py")


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("the app did not reach the expected screen in time")
        await asyncio.sleep(0.05)


def progress(app: MltopApp) -> str:
    screen = app.screen
    if isinstance(screen, RunDetailScreen) and screen.details is not None:
        loss = screen.details.metrics.get("loss")
        return f"loss points in the open run: {loss.count if loss else 0:,}"
    if isinstance(screen, LogsScreen) and screen.models:
        return f"log lines indexed in the view: {screen.models[0].file.count:,}"
    return f"screen: {type(screen).__name__}"


async def session(
    root: Path, store: Path, args: argparse.Namespace, proc: subprocess.Popen[str]
) -> None:
    app = MltopApp(root, store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app._watching and app.runs_screen.settled)
        await wait_for(lambda: app.runs_screen.table.row_count > 0)
        await pilot.press("l" if args.screen == "logs" else "enter")
        wanted = LogsScreen if args.screen == "logs" else RunDetailScreen
        await wait_for(lambda: isinstance(app.screen, wanted))
        await asyncio.sleep(args.warmup)
        cpu0, wall0, rss0 = cpu_seconds(), time.monotonic(), rss_mb()
        first = progress(app)
        samples = [(0.0, rss0)]
        while proc.poll() is None:
            await asyncio.sleep(1.0)
            samples.append((time.monotonic() - wall0, rss_mb()))
        await asyncio.sleep(1.0)  # the last writes arrive
        cpu1, wall1, rss1 = cpu_seconds(), time.monotonic(), rss_mb()
        last = progress(app)
    cpu = (cpu1 - cpu0) / (wall1 - wall0) * 100
    window = wall1 - wall0
    print(f"screen: {args.screen}, window {window:.0f} s after a {args.warmup:.0f} s warm-up")
    print(f"progress: at the start {first}; at the end {last}")
    print(f"mltop CPU: {cpu:.1f} % of one core (app, watcher and rendering together)")
    print(
        f"resident memory: {rss0:.1f} MB at the start, {rss1:.1f} MB at the end, "
        f"growth {rss1 - rss0:+.1f} MB   (goal <= 10 MB)"
    )
    step = max(1, len(samples) // 10)
    shown = ", ".join(f"{t:.0f}s {m:.1f}" for t, m in samples[::step])
    print(f"resident memory over time (MB): {shown}")


def main() -> int:
    limit_malloc_arenas()  # as the mltop command does first thing
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the window")
    parser.add_argument("--soak", type=float, help="same as --seconds, for a long window")
    parser.add_argument("--screen", choices=("detail", "logs"), default="detail")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--lines", type=float, default=1000.0, help="log lines per second")
    parser.add_argument("--points", type=float, default=50.0, help="metric points per second")
    args = parser.parse_args()
    seconds = args.soak or args.seconds
    with tempfile.TemporaryDirectory(prefix="mltop-follow-app-") as tmp:
        root = Path(tmp) / "project"
        proc = subprocess.Popen(
            [sys.executable, str(FOLLOW), "--writer", str(root),
             str(seconds + args.warmup + 15), str(args.lines), str(args.points)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        proc.stdout.readline()  # the run folder exists
        try:
            asyncio.run(session(root, Path(tmp) / "store.duckdb", args, proc))
        finally:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

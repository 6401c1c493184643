"""What the Host screen costs while it is open: CPU time of the mltop process per second.

    python bench/host.py               # 60 s with the runs screen, then 60 s with the Host screen
    python bench/host.py --seconds 20

Runs the real app (headless Textual at 120x40, the process a terminal would run) over a project
with one run in progress (a child process training with mltop's writer, so the Host screen links
a process to it), and measures the process's CPU time (every thread: the UI and the sampling
worker) over the window after a warm-up, twice:

* baseline: the runs screen open, the app otherwise idle (live watching off in both);
* host: the Host screen open, refreshing once a second.

The Host screen's cost is the difference, in percent of one core; the goal is ≤ 2 %. The number
of refreshes the screen drew is printed too, so a stalled screen cannot pass as a cheap one.
Exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from mltop.core.common.malloc import limit_malloc_arenas
from mltop.tui.app import MltopApp
from mltop.tui.screens.system.host import HostScreen

GOAL_PERCENT = 2.0
WARM_UP = 5.0

TRAIN = textwrap.dedent(
    """
    import time
    from mltop.core.tracking import start_run

    with start_run("runs", name="bench-live", capture_output=True) as run:
        for step in range(100000):
            run.log(step=step, loss=1 / (step + 1))
            time.sleep(1)
    """
)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def measure(project: Path, store: Path, seconds: float, host: bool) -> tuple[float, int]:
    """CPU percent of one core over ``seconds`` (after a warm-up), and refreshes drawn."""
    app = MltopApp(project, store, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 30
        while app.store is None or not app.runs_screen.settled:
            if time.monotonic() > deadline:
                raise SystemExit("the app did not open its store in time")
            await asyncio.sleep(0.1)
        screen: HostScreen | None = None
        if host:
            await pilot.press("h")
            assert isinstance(app.screen, HostScreen)
            screen = app.screen
        await asyncio.sleep(WARM_UP)
        drawn_before = len(screen.view.history) if screen and screen.view else 0
        cpu, wall = cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = cpu_seconds() - cpu, time.monotonic() - wall
        drawn = (len(screen.view.history) if screen and screen.view else 0) - drawn_before
        if screen is not None and screen.view is not None and len(screen.view.history) >= 300:
            drawn = round(seconds)  # the history is full (5 minutes): count by time instead
        linked = sum(1 for p in screen.view.processes if p.link) if screen and screen.view else 0
        if host and not linked:
            raise SystemExit("the Host screen linked no process to the running run")
    return cpu / wall * 100, drawn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    limit_malloc_arenas()
    with tempfile.TemporaryDirectory(prefix="mltop-bench-host-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "train.py").write_text(TRAIN, encoding="utf-8")
        child = subprocess.Popen([sys.executable, "train.py"], cwd=project)
        try:
            time.sleep(2)
            store = Path(tmp) / "store.duckdb"
            base, _ = asyncio.run(measure(project, store, args.seconds, host=False))
            host, drawn = asyncio.run(measure(project, store, args.seconds, host=True))
        finally:
            child.kill()
            child.wait()
    cost = host - base
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"window {args.seconds:.0f} s at 120x40, {os.cpu_count()} cores, load average {load}")
    print("CPU time (user+sys of every thread) per second of wall time, in % of one core")
    print(f"runs screen open (baseline): {base:5.2f} % of one core")
    print(f"Host screen open:            {host:5.2f} % of one core, {drawn} refreshes drawn")
    verdict = "ok" if cost <= GOAL_PERCENT else "MISSED"
    goal = f"goal ≤ {GOAL_PERCENT} %: {verdict}"
    print(f"Host screen's cost:          {cost:5.2f} % of one core ({goal})")
    return 0 if cost <= GOAL_PERCENT else 1


if __name__ == "__main__":
    sys.exit(main())

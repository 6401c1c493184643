"""How long ``mltop demo`` takes to prepare its folder, with and without registering its models.

Times :func:`mltop.core.demo.prepare_demo` (copy the sample project, train the sweep, simulate
the served model's predictions) twice in one run, each in a fresh folder:

* the baseline: without ``git`` on ``PATH`` the demo trains and simulates only, which is what
  it did before it registered models;
* with ``git``: the folder is also made a repository and ``register.py`` releases the two best
  runs of each data set (a commit, one training at that commit and GTO's tags per version).

Every figure is wall time and CPU time (user + system of this process and its children: the
trainers are subprocesses), with the load average: on a busy machine wall time waits for a
core, so the cost of registering is judged by CPU time. Goal: registering adds at most a third
to the baseline's CPU time.

Usage: ``python bench/demo.py [--epochs N]`` (``--epochs`` shortens every run, for a quick look).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from mltop.core.demo import prepare_demo


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(folder: Path, extra: list[str], with_git: bool) -> tuple[float, float]:
    path = os.environ["PATH"]
    if not with_git:  # the interpreter is called by its full path: only git goes missing
        os.environ["PATH"] = str(folder.parent / "no-tools")
    try:
        wall, cpu = time.perf_counter(), _cpu()
        prepare_demo(folder, log=lambda _: None, extra_args=extra)
        return time.perf_counter() - wall, _cpu() - cpu
    finally:
        os.environ["PATH"] = path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="override every run's number of epochs")
    args = parser.parse_args(argv)
    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    with tempfile.TemporaryDirectory(prefix="mltop-bench-demo-") as tmp:
        base = timed(Path(tmp) / "baseline" / "sample_project", extra, with_git=False)
        registered = timed(Path(tmp) / "registered" / "sample_project", extra, with_git=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} (2 cores shared: judge by CPU time)")
    print(f"{'':<34}{'wall s':>8}{'cpu s':>8}")
    print(f"{'baseline: train + serve (no git)':<34}{base[0]:>8.2f}{base[1]:>8.2f}")
    print(f"{'with git: + register.py (GTO)':<34}{registered[0]:>8.2f}{registered[1]:>8.2f}")
    ratio = registered[1] / base[1] if base[1] else float("inf")
    print(f"CPU time with registering: {ratio:.2f}x the baseline (goal <= 1.33x)")
    return 0 if ratio <= 4 / 3 else 1


if __name__ == "__main__":
    sys.exit(main())

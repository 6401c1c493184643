"""How long comparing runs takes on a large store.

Builds an in-memory store of 100 runs × 50 metrics × 1,000 steps (5 million points, written as
Arrow batches), then times:

* ``compare_runs`` of all 100 runs, with best-of-history aggregates (goal ≤ 300 ms),
* ``overlay`` of one metric across the 100 runs, 200 buckets, EMA 0.6 (goal ≤ 200 ms),
  on each x axis,
* and the compare screen's own work on that data: the table's cell texts for all 100 runs
  (``build_layout``, in a worker; goal ≤ 100 ms) and drawing the 100-line overlay chart at
  120x40 (``draw_overlay``, on the UI thread when the chart changes; goal ≤ 50 ms).

Usage: ``python bench/compare.py [--runs 100] [--metrics 50] [--steps 1000] [--repeat 5]``.
Prints the median and best of the repeats; exits 1 when a median misses its goal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from mltop.core.compare.diff import compare_runs
from mltop.core.compare.directions import DirectionRules
from mltop.core.compare.overlay import overlay
from mltop.core.entities import RunRecord
from mltop.core.store import Store, open_memory_store

METRIC_NAMES = ["loss", "val_loss", "val_acc", "f1", "epoch_time", "lr", "grad_norm"]


def metric_keys(count: int) -> list[str]:
    keys = list(METRIC_NAMES[:count])
    while len(keys) < count:
        keys.append(f"extra/metric_{len(keys)}")
    return keys


def build_store(runs: int, metrics: int, steps: int, seed: int = 0) -> tuple[Store, list[str]]:
    """A store with ``runs`` runs, each logging every metric at every step."""
    rng = np.random.default_rng(seed)
    store = open_memory_store()
    keys = metric_keys(metrics)
    ids = [f"run{i:04d}" for i in range(runs)]
    records = [
        RunRecord(
            id=run_id,
            source_kind="mltop",
            location=f"/bench/{run_id}",
            name=f"sweep-{i % (runs // 2 or 1)}",  # names repeat: labels must disambiguate
            start_time=1_700_000_000.0 + i * 600,
        )
        for i, run_id in enumerate(ids)
    ]
    params = [
        (run_id, key, value)
        for i, run_id in enumerate(ids)
        for key, value in (("lr", 10 ** -(1 + i % 4)), ("model", "sgd" if i % 2 else "rf"))
    ]
    with store.transaction():
        store.put_runs(None, records, params=params)
    step = np.arange(steps, dtype=np.int64)
    for i, run_id in enumerate(ids):
        n = steps * len(keys)
        start = 1_700_000_000.0 + i * 600
        values = rng.random(n) / (1 + np.tile(step, len(keys)) / 100)
        batch = pa.table(
            {
                "run_id": pa.array([run_id] * n, pa.string()),
                "key": pa.array(np.repeat(np.array(keys, dtype=object), steps), pa.string()),
                "step": np.tile(step, len(keys)),
                "ts": np.tile(start + step * 0.5, len(keys)),
                "value": values,
            }
        )
        with store.transaction():
            store.add_points(batch)
    with store.transaction():
        store.refresh_summaries(ids)
    return store, ids


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) wall time in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    store, ids = build_store(args.runs, args.metrics, args.steps)
    points = store.point_count()
    print(
        f"store: {args.runs} runs × {args.metrics} metrics × {args.steps} steps = "
        f"{points:,} points, built in {time.perf_counter() - t0:.1f} s"
    )
    rules = DirectionRules()
    ok = True

    def check(what: str, fn: Callable[[], object], goal: float) -> None:
        nonlocal ok
        median, best = timed(fn, args.repeat)
        verdict = "ok" if median <= goal else "SLOW"
        ok = ok and median <= goal
        print(
            f"{what:<44} median {median:7.1f} ms  best {best:7.1f} ms  goal {goal:.0f} ms {verdict}"
        )

    comparison = compare_runs(store, ids, directions=rules)
    print(f"compare: {len(comparison.rows)} rows × {len(comparison.runs)} runs")
    check(
        f"compare_runs({args.runs} runs)", lambda: compare_runs(store, ids, directions=rules), 300
    )
    check(
        f"compare_runs({args.runs} runs, only changed)",
        lambda: compare_runs(store, ids, only_changed=True, directions=rules),
        300,
    )
    for axis in ("step", "time", "relative"):
        check(
            f"overlay(val_loss, {args.runs} runs, x={axis})",
            lambda axis=axis: overlay(store, ids, "val_loss", x=axis),  # type: ignore[misc]
            200,
        )
    series = overlay(store, ids, "val_loss")
    print(f"overlay: {len(series)} series, {max(len(s.x) for s in series)} points each at most")

    # Imported here: the rest of the benchmark needs no Textual.
    from rich.style import Style

    from mltop.tui.widgets.compare_table import build_layout
    from mltop.tui.widgets.overlay_chart import OverlayStyles, draw_overlay, run_colour

    check(f"build_layout({args.runs} runs)", lambda: build_layout(comparison), 100)
    styles = OverlayStyles(
        axis=Style(dim=True),
        muted=Style(dim=True),
        runs=tuple(Style(color=run_colour(i)) for i in range(len(series))),
        text=Style(),
    )
    # The chart's inside at 120x40: 116 columns, 14 rows (legend, plot and x labels).
    check(
        f"draw_overlay({args.runs} runs, 116x14 cells)",
        lambda: draw_overlay(series, 116, 14, styles, on_top=0, legend_max=2),
        50,
    )
    store.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

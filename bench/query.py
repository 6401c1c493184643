"""How fast filters run over a large store, and which SQL shape the filter compiler should emit.

Builds an in-memory store of 100,000 synthetic runs (3 params, 3 tags, 3 metrics of 5 points
each), then times each filter two ways: ``r.id IN (SELECT run_id ...)`` (what
:func:`mltop.core.runs.query.to_sql` emits) and the correlated ``EXISTS (... run_id = r.id ...)``.
Figures are the median of several runs, in milliseconds, for ``count_runs`` (the SQL alone) and for
``runs(limit=1000)`` (what a screen asks for), plus ``runs()`` with no limit for the IN shape.

    python bench/query.py [--runs 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pyarrow as pa

from mltop.core.entities import RunRecord, Status
from mltop.core.runs.query import parse
from mltop.core.runs.query_sql import _Compiler
from mltop.core.store import Store, open_memory_store

FILTERS = [
    "",
    "metrics.acc > 0.9",
    "metrics.loss.min < 0.05",
    "params.lr < 0.001",
    "params.model = 'rf'",
    "tags.stage = 'prod'",
    "status != FINISHED",
    "name ~ 'sgd.*7$'",
    "metrics.acc >= 0.9 and (params.model = 'rf' or params.lr < 1e-3)",
    "not tags.team",
    "params.model in ('rf', 'svm') and metrics.f1 > 0.5 and duration < 1h",
    "metrics.acc > 0.5 or metrics.f1 > 0.99 or tags.stage = 'dev'",
    "not (metrics.acc > 0.5 and params.model = 'rf')",
]


def build(n: int) -> Store:
    rng = np.random.default_rng(7)
    store = open_memory_store()
    ids = [f"run{i:07d}" for i in range(n)]
    statuses = [Status.FINISHED, Status.FAILED, Status.RUNNING, Status.KILLED]
    models = ["rf", "svm", "sgd", "mlp", "gbm"]
    store.put_experiments([("exp1", "bench", "bench", "1", "bench experiment")])
    start = 1.7e9 + rng.uniform(0, 3e7, n)
    records = [
        RunRecord(
            id=rid,
            source_kind="bench",
            location=f"/bench/{rid}",
            name=f"{models[i % 5]}-{i}",
            status=statuses[i % 7 % 4],
            experiment_id="exp1",
            start_time=float(start[i]),
            end_time=float(start[i] + rng.uniform(60, 7200)),
        )
        for i, rid in enumerate(ids)
    ]
    lrs = 10 ** rng.uniform(-5, -1, n)
    params = []
    tags = []
    for i, rid in enumerate(ids):
        params += [(rid, "lr", float(lrs[i])), (rid, "model", models[i % 5]), (rid, "seed", i)]
        tags += [(rid, "stage", ["dev", "prod", "test"][i % 3]), (rid, "user", f"u{i % 50}")]
        if i % 4:
            tags.append((rid, "team", f"t{i % 9}"))
    with store.transaction():
        store.put_runs("bench", records, params=params, tags=tags)
    steps = 5
    keys = ["acc", "loss", "f1"]
    total = n * len(keys) * steps
    points = pa.table(
        {
            "run_id": np.repeat(np.array(ids, dtype=object), len(keys) * steps),
            "key": np.tile(np.repeat(np.array(keys, dtype=object), steps), n),
            "step": np.tile(np.arange(steps, dtype=np.int64), n * len(keys)),
            "ts": np.full(total, 1.7e9),
            "value": rng.uniform(0, 1, total),
        }
    )
    with store.transaction():
        store.add_points(points)
        store.refresh_summaries(ids)
    return store


def timed(fn, repeat: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    t0 = time.perf_counter()
    store = build(args.runs)
    print(f"built {args.runs:,} runs in {time.perf_counter() - t0:.1f} s: {store.table_counts()}")
    t0 = time.perf_counter()
    for text in FILTERS:
        parse(text)
    print(f"parse+check, all {len(FILTERS)} filters: {(time.perf_counter() - t0) * 1000:.2f} ms")
    header = (
        f"{'filter':<72} {'match':>7} {'IN cnt':>7} {'EX cnt':>7} {'IN 1k':>7} {'EX 1k':>7}"
        f" {'IN all':>7}"
    )
    print(header)
    print("-" * len(header))
    for text in FILTERS:
        node = parse(text)
        q_in = _Compiler().compile(node)
        q_ex = _Compiler(correlated=True).compile(node)
        matched = store.count_runs(q_in)
        assert matched == store.count_runs(q_ex), text
        figures = [
            timed(lambda q=q_in: store.count_runs(q), args.repeat),
            timed(lambda q=q_ex: store.count_runs(q), args.repeat),
            timed(lambda q=q_in: store.runs(q, limit=1000), args.repeat),
            timed(lambda q=q_ex: store.runs(q, limit=1000), args.repeat),
            timed(lambda q=q_in: store.runs(q), max(1, args.repeat // 2)),
        ]
        label = text or "(empty filter)"
        print(f"{label:<72} {matched:>7} " + " ".join(f"{f:>7.1f}" for f in figures))
    print("times in ms (median); cnt = count_runs, 1k = runs(limit=1000), all = runs()")


if __name__ == "__main__":
    main()

"""Following a run with a long history: the watcher's time per batch, by format.

    python bench/follow_history.py                  # 200,000 steps x 5 metrics (1M points)
    python bench/follow_history.py --steps 20000    # smaller

A job that has logged for hours keeps appending; each batch of the live watcher imports the
new lines. For a Lightning ``metrics.csv``, an mltop run folder's ``metrics.jsonl`` and one
metric file of an MLflow file store (the tool-made fixture, its history made long), this
writes a long history, imports it, then appends 25 steps at a time and times
:meth:`Watcher.apply` over 40 batches. Each format runs twice in this process:

* "fold": mltop as it is (appended points fold into the stored summaries),
* "whole history" (the baseline): ``Store.update_summaries`` swapped for a summary of the
  runs' whole histories in SQL, what every import did before the fold.

Both must end with the same summaries; the script checks that and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mltop.core.discovery import ingest
from mltop.core.live.watch import Watcher
from mltop.core.store import Store, open_store

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mlflow"
BATCHES = 40
STEPS_PER_BATCH = 25
KEYS = ("train_loss", "val_loss", "acc", "lr", "grad_norm")


def _appender(path: Path, rows: Callable[[int, int], str]) -> Callable[[int], Path]:
    """What the training job does each batch: append the next steps' rows to ``path``."""

    def grow(start: int) -> Path:
        with open(path, "a") as fh:
            fh.write(rows(start, STEPS_PER_BATCH))
        return path

    return grow


def lightning(root: Path, steps: int) -> Callable[[int], Path]:
    folder = root / "lightning_logs" / "version_0"
    folder.mkdir(parents=True)
    (folder / "hparams.yaml").write_text("lr: 0.1\n")
    path = folder / "metrics.csv"

    def rows(start: int, count: int) -> str:
        return "".join(
            f"{s // 1000},{s},{1 / (s + 1)},{2 / (s + 1)},{s / (s + 100)},0.1,{s % 7}\n"
            for s in range(start, start + count)
        )

    path.write_text("epoch,step," + ",".join(KEYS) + "\n" + rows(0, steps))
    return _appender(path, rows)


def mltop_run(root: Path, steps: int) -> Callable[[int], Path]:
    from mltop.core.tracking import METRICS_FILE, start_run

    with start_run(root / "runs", name="long") as run:
        folder = run.folder
    path = folder / METRICS_FILE

    def rows(start: int, count: int) -> str:
        return "".join(
            f'{{"step": {s}, "ts": {1.79e9 + s}, "train_loss": {1 / (s + 1)}, '
            f'"val_loss": {2 / (s + 1)}, "acc": {s / (s + 100)}, "lr": 0.1, '
            f'"grad_norm": {s % 7}}}\n'
            for s in range(start, start + count)
        )

    with open(path, "a") as fh:
        fh.write(rows(0, steps))
    return _appender(path, rows)


def mlflow_files(root: Path, steps: int) -> Callable[[int], Path]:
    with tarfile.open(FIXTURE / "small-filestore.tar.gz") as tar:
        tar.extractall(root, filter="data")
    path = sorted(root.glob("small-filestore/mlruns/*/*/metrics/train_loss"))[0]
    base = 1_795_723_000_000

    def rows(start: int, count: int) -> str:
        return "".join(f"{base + s} {1 / (s + 1)} {s}\n" for s in range(start, start + count))

    path.write_text(rows(0, steps))
    return _appender(path, rows)


FORMATS = {"Lightning CSV": lightning, "mltop run folder": mltop_run, "MLflow files": mlflow_files}


@contextlib.contextmanager
def whole_histories() -> Iterator[None]:
    """The baseline: every changed run summarised from its whole history."""
    original = Store.update_summaries

    def refresh(self: Store, run_ids, appended) -> None:  # type: ignore[no-untyped-def]
        self.refresh_summaries(sorted(set(run_ids)))

    Store.update_summaries = refresh  # type: ignore[method-assign]
    try:
        yield
    finally:
        Store.update_summaries = original  # type: ignore[method-assign]


def follow(
    make: Callable[[Path, int], Callable[[int], Path]], steps: int
) -> tuple[list[float], list[tuple]]:
    with tempfile.TemporaryDirectory(prefix="mltop-follow-history-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        grow = make(root, steps)
        store = open_store(root)
        ingest(root, store)
        store.checkpoint()
        watcher = Watcher([root], store, lambda _update: None)
        times = []
        for batch in range(BATCHES):
            path = grow(steps + batch * STEPS_PER_BATCH)
            started = time.perf_counter()
            watcher.apply({str(path)})
            times.append(time.perf_counter() - started)
        ids = [r.id for r in store.runs()]
        # Run ids come from paths, which differ between the two temporary trees.
        fields = ("key", "last", "min", "max", "count", "first_step", "last_step", "last_time")
        summaries = list(
            tuple("nan" if v != v else v for v in (getattr(s, f) for f in fields))  # NaN == NaN
            for by_key in store.summaries(ids).values()
            for s in by_key.values()
        )
        summaries.sort(key=repr)
        store.close()
        return times, summaries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000, help="history length per metric")
    args = parser.parse_args()
    print(
        f"{args.steps:,} steps of history, then {BATCHES} batches of {STEPS_PER_BATCH} steps "
        "(time of one watcher batch)"
    )
    for name, make in FORMATS.items():
        folded, folded_sums = follow(make, args.steps)
        with whole_histories():
            whole, whole_sums = follow(make, args.steps)
        same = "same summaries" if folded_sums == whole_sums else "SUMMARIES DIFFER"
        ms = 1000.0
        print(
            f"  {name:18s} fold: median {statistics.median(folded) * ms:6.1f} ms, "
            f"max {max(folded) * ms:6.1f} ms   whole history (baseline): median "
            f"{statistics.median(whole) * ms:6.1f} ms, max {max(whole) * ms:6.1f} ms   ({same})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

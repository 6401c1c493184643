"""Resident memory after a big import and the checkpoint that follows it, as the app does them.

    python bench/store_memory.py                      # 20 runs x 50,000 steps x 5 metrics
    python bench/store_memory.py --runs 200 --steps 5000

The app imports a folder when it opens, and its live watcher checkpoints the store a minute
later. Each case runs in a fresh process on the same tree and reads resident memory
(/proc/self/statm) after the import, after the CHECKPOINT, and after 15 s of idling (what the
app's memory is while a person looks at the runs table):

* "purging on": the store as mltop opens it (DuckDB's allocator purges freed pages on its own
  background threads, ``allocator_background_threads``);
* "purging off": the same with that setting turned off again, DuckDB's default (the baseline).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from follow import rss_mb
from ingest import make_tree

from mltop.core.discovery import ingest
from mltop.core.store import open_store

IDLE = 15.0


def measure(root: Path, purge: bool) -> dict[str, float]:
    store = open_store(root)
    if not purge:
        store.cursor().execute("SET allocator_background_threads = false")
    figures = {"opened": rss_mb()}
    started = time.perf_counter()
    report = ingest(root, store)
    figures["import_s"] = time.perf_counter() - started
    figures["points"] = report.points_added
    figures["imported"] = rss_mb()
    started = time.perf_counter()
    store.checkpoint()
    figures["checkpoint_s"] = time.perf_counter() - started
    figures["checkpointed"] = rss_mb()
    time.sleep(IDLE)
    store.runs()
    figures["idle"] = rss_mb()
    store.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--case", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.root, args.case == "on")))
        return 0
    with tempfile.TemporaryDirectory(prefix="mltop-store-memory-") as tmp:
        tree = Path(tmp) / "tree"
        make_tree(tree, args.runs, args.steps)
        print(f"{args.runs} runs x {args.steps:,} steps x 5 metrics, each case in a fresh process")
        for case, label in (("off", "purging off (baseline)"), ("on", "purging on (mltop)")):
            root = Path(tmp) / case
            shutil.copytree(tree, root)
            out = subprocess.run(
                [sys.executable, __file__, "--case", case, "--root", str(root)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            f = json.loads(out.splitlines()[-1])
            print(
                f"{label:<24} opened {f['opened']:6.1f} MB   imported {f['imported']:6.1f} MB "
                f"({f['points']:,} points, {f['import_s']:.1f} s)   checkpointed "
                f"{f['checkpointed']:6.1f} MB ({f['checkpoint_s']:.2f} s)   "
                f"{IDLE:.0f} s later {f['idle']:6.1f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Replay a live run's import batches as fast as they go, and show where memory goes.

    python bench/watch_memory.py                 # 1,200 batches (a 10-minute soak's worth)
    python bench/watch_memory.py --batches 3000 --every 500 --checkpoint 120
    python bench/watch_memory.py --checkpoint 120 --block-size 262144   # DuckDB's default blocks

The soak in ``bench/follow.py`` takes ten minutes a try. This does the watcher's work of the
same soak in about half a minute: each batch appends 25 steps of two metrics to an mltop run
(what 50 points/s give every half second) and calls :meth:`Watcher.apply` on the file, as the
watch loop does. Every ``--every`` batches it prints, next to resident memory:

* glibc's heap in use (``mallinfo2``: Python's larger objects and C++ containers),
* DuckDB's own accounting of its buffers (``pragma_database_size``),
* DuckDB's buffers by what holds them (``duckdb_memory()``: table blocks written to the file,
  rows still only in memory),
* jemalloc's allocated and active bytes: DuckDB's Linux wheel links its own jemalloc
  (``duckdb_je_*``), whose memory glibc never sees and ``malloc_trim`` cannot return
  (jemalloc's "resident" figure counts retained mappings and reads above the process's RSS).
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import tempfile
import time
from pathlib import Path

import duckdb
from follow import rss_mb

from mltop.core.discovery import ingest
from mltop.core.live.watch import Watcher
from mltop.core.store import connection as store_connection
from mltop.core.store import open_store
from mltop.core.tracking import METRICS_FILE, start_run


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


def _duckdb_library() -> ctypes.CDLL | None:
    here = os.path.dirname(duckdb.__file__)
    for path in glob.glob(os.path.join(here, "..", "_duckdb*.so")):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "duckdb_je_mallctl"):
            return lib
    return None


def jemalloc_mb(lib: ctypes.CDLL, name: str) -> float:
    epoch, size = ctypes.c_uint64(1), ctypes.c_size_t(8)
    lib.duckdb_je_mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(8))
    value = ctypes.c_size_t(0)
    lib.duckdb_je_mallctl(name.encode(), ctypes.byref(value), ctypes.byref(size), None, 0)
    return value.value / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1200)
    parser.add_argument("--every", type=int, default=100, help="print every N batches")
    parser.add_argument("--checkpoint", type=int, default=0, help="CHECKPOINT every N batches")
    parser.add_argument(
        "--block-size",
        type=int,
        default=store_connection.BLOCK_SIZE,
        help=f"block size of the new store (mltop: {store_connection.BLOCK_SIZE}; DuckDB: 262144)",
    )
    args = parser.parse_args()
    # Set on the module the connection reads it from, not on the package's re-export.
    store_connection.BLOCK_SIZE = args.block_size
    libc, jemalloc = _libc(), _duckdb_library()
    with tempfile.TemporaryDirectory(prefix="mltop-watch-memory-") as tmp:
        root = Path(tmp) / "project"
        with start_run(root / "runs", name="replay") as run:
            store = open_store(root)
            ingest(root, store)
            watcher = Watcher([root], store, lambda _update: None)
            paths = {str(run.folder / METRICS_FILE)}
            start, step = time.perf_counter(), 0
            rss0 = rss_mb()
            for batch in range(args.batches):
                for _ in range(25):
                    run.log(step=step, loss=1.0 / (step + 1), acc=step / (step + 100))
                    step += 1
                watcher.apply(paths)
                if args.checkpoint and batch % args.checkpoint == args.checkpoint - 1:
                    store.checkpoint()
                if batch % args.every and batch != args.batches - 1:
                    continue
                parts = [f"batch {batch:5d}", f"rss {rss_mb():6.1f} MB ({rss_mb() - rss0:+5.1f})"]
                if libc is not None:
                    info = libc.mallinfo2()
                    parts.append(f"glibc in use {(info.uordblks + info.hblkhd) / 1e6:5.1f}")
                parts.append(f"duckdb buffers {store.memory_usage()} ({store.memory_by_tag()})")
                if jemalloc is not None:
                    parts.append(
                        f"jemalloc allocated {jemalloc_mb(jemalloc, 'stats.allocated'):5.1f} "
                        f"active {jemalloc_mb(jemalloc, 'stats.active'):5.1f}"
                    )
                parts.append(f"{time.perf_counter() - start:5.1f} s")
                print("   ".join(parts), flush=True)
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

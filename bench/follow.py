"""Following a live run: write-to-view latency, CPU and memory while a job writes fast.

    python bench/follow.py                  # 60 s: 1,000 log lines/s, 50 metric points/s
    python bench/follow.py --seconds 20     # shorter
    python bench/follow.py --soak 600       # 10 minutes: resident memory at start and end

A writer process appends to an mltop run folder (``output.log`` one flushed line at a time,
each carrying the time it was written, and ``metrics.jsonl`` through mltop's run writer). This
process is mltop without a screen: the log model followed by :func:`follow_logs` (what the Logs
screen runs) and the live :class:`Watcher` importing the metrics into an on-disk store (what
the app runs). It reports, goals in brackets:

* log line latency, write to the line being in the view model: p50, p95 [p95 <= 100 ms]
* metric point latency, write to the point being in the store: p50, p95
* CPU of this process while following, in % of one core [<= 15 %], from /proc/self/stat
* resident memory at the start and the end of the window [growth <= 10 MB], /proc/self/statm;
  the end is read once the import set off by the writer's last write has finished

Metric latency is measured per point from the store's history; a soak (or ``--cheap-metrics``)
only takes the newest point of each update from the metric summary instead, so the benchmark's
own queries do not show up as memory growth. ``--log-only`` leaves the watcher and store out, to
see what following the log alone costs. Like the ``mltop`` command, the process caps glibc's
malloc arenas first (:mod:`mltop.core.common.malloc`); ``--default-arenas`` leaves glibc's default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

from mltop.core.common.malloc import limit_malloc_arenas
from mltop.core.discovery import ingest
from mltop.core.live.watch import Watcher, WatchUpdate
from mltop.core.logs.logmodel import LogModel, ModelChange, follow_logs
from mltop.core.store import open_store

PAD = "x" * 60  # a line of about 100 bytes, like a logging line with a message


# -- the writer process ----------------------------------------------------------------------------


def writer(root: Path, seconds: float, lines_per_s: float, points_per_s: float) -> None:
    from mltop.core.tracking import start_run

    with start_run(root / "runs", name="bench-live") as run:
        log = open(run.folder / "output.log", "a", encoding="utf-8")  # noqa: SIM115
        print(run.folder, flush=True)  # tells the reader where to look
        start = time.time()
        lines = points = 0
        while True:
            now = time.time()
            elapsed = now - start
            if elapsed >= seconds:
                break
            while lines < elapsed * lines_per_s:
                log.write(f"{time.time():.6f} INFO step {lines} {PAD}\n")
                log.flush()
                lines += 1
            while points < elapsed * points_per_s:
                run.log(step=points, loss=1.0 / (points + 1), acc=points / (points + 100))
                points += 1
            time.sleep(0.001)
        log.close()


# -- measurements ----------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU time of this process, from /proc/self/stat (fields 14 and 15)."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        resident = int(fh.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE") / 1e6


class Latencies:
    """A fixed-size histogram (0.1 ms buckets up to 10 s): a soak must not measure its own list."""

    BUCKET = 1e-4

    def __init__(self) -> None:
        self.counts = array("L", [0]) * 100_001
        self.n = 0
        self.total = 0.0
        self.worst = 0.0

    def add(self, seconds: float) -> None:
        self.counts[min(len(self.counts) - 1, max(0, int(seconds / self.BUCKET)))] += 1
        self.n += 1
        self.total += seconds
        self.worst = max(self.worst, seconds)

    def percentile(self, q: float) -> float:
        if not self.n:
            return float("nan")
        want = q * self.n
        seen = 0
        for bucket, count in enumerate(self.counts):
            seen += count
            if seen >= want:
                return (bucket + 1) * self.BUCKET
        return self.worst

    def summary(self) -> str:
        ms = 1000.0
        return (
            f"{self.n:,}   p50 {self.percentile(0.5) * ms:.1f} ms   "
            f"p95 {self.percentile(0.95) * ms:.1f} ms   max {self.worst * ms:.1f} ms"
        )


class Reader:
    """The mltop side: a log model and a watcher, recording how late each write arrives."""

    def __init__(
        self,
        root: Path,
        run_folder: Path,
        warmup: float,
        *,
        cheap: bool = False,
        store: bool = True,
    ):
        self.root = root
        self.cheap = cheap
        self.with_store = store
        self.log_path = run_folder / "output.log"
        self.store = open_store(root)
        ingest(root, self.store)
        self.model = LogModel(self.log_path)
        self.line_latency = Latencies()
        self.point_latency = Latencies()
        self.seen_lines = 0
        self.seen_points = 0
        self.measure_from = time.time() + warmup
        self.updates = 0
        self.stop = threading.Event()
        self.run_id: str | None = None

    def on_lines(self, changes: list[tuple[LogModel, ModelChange]]) -> None:
        now = time.time()
        file = self.model.file
        count = file.count
        for i in range(self.seen_lines, count):
            stamp = float(file.line(i).split(b" ", 1)[0])
            if stamp >= self.measure_from:
                self.line_latency.add(now - stamp)
        self.seen_lines = count

    def on_update(self, update: WatchUpdate) -> None:
        now = time.time()
        self.updates += 1
        if self.run_id is None:
            runs = [r for r in self.store.runs() if r.name == "bench-live"]
            self.run_id = runs[0].id if runs else None
        if self.run_id is None:
            return
        if self.cheap:
            summary = self.store.summaries([self.run_id])[self.run_id].get("loss")
            if summary is not None and summary.count > self.seen_points:
                self.seen_points = summary.count
                if summary.last_time and summary.last_time >= self.measure_from:
                    self.point_latency.add(now - summary.last_time)
            return
        history = self.store.history(self.run_id, "loss")
        stamps = history.column("ts").to_pylist()[self.seen_points :]
        self.seen_points += len(stamps)
        for ts in stamps:
            if ts and ts >= self.measure_from:
                self.point_latency.add(now - ts)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(
                target=follow_logs, args=([self.model], self.on_lines, self.stop), daemon=True
            )
        ]
        if self.with_store:
            watcher = Watcher([self.root], self.store, self.on_update, self.stop)
            threads.append(threading.Thread(target=watcher.run, daemon=True))
        for thread in threads:
            thread.start()
        return threads


def settle(reader: Reader, quiet: float = 2.0, limit: float = 15.0) -> None:
    """Wait until the watcher has reported nothing for ``quiet`` seconds (at most ``limit``)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seen = reader.updates
        time.sleep(quiet)
        if reader.updates == seen:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run")
    parser.add_argument("--soak", type=float, help="a long run (seconds) for memory growth")
    parser.add_argument("--lines", type=float, default=1000.0, help="log lines per second")
    parser.add_argument("--points", type=float, default=50.0, help="metric points per second")
    parser.add_argument(
        "--cheap-metrics", action="store_true", help="newest point per update only (soak default)"
    )
    parser.add_argument("--log-only", action="store_true", help="no watcher, no store imports")
    parser.add_argument(
        "--default-arenas", action="store_true", help="glibc's default malloc arenas (baseline)"
    )
    parser.add_argument("--writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.default_arenas:
        limit_malloc_arenas()  # as the mltop command does first thing
    if args.writer:
        root, seconds, lines, points = args.writer
        writer(Path(root), float(seconds), float(lines), float(points))
        return 0
    seconds = args.soak or args.seconds
    warmup = 5.0
    with tempfile.TemporaryDirectory(prefix="mltop-follow-") as tmp:
        root = Path(tmp) / "project"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--writer", str(root), str(seconds + warmup),
             str(args.lines), str(args.points)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        run_folder = Path(proc.stdout.readline().strip())
        cheap = args.cheap_metrics or bool(args.soak)
        reader = Reader(root, run_folder, warmup, cheap=cheap, store=not args.log_only)
        threads = reader.start()
        time.sleep(warmup)
        cpu0, wall0, rss0 = cpu_seconds(), time.monotonic(), rss_mb()
        rss_samples = [(0.0, rss0)]
        while proc.poll() is None:
            time.sleep(1.0)
            rss_samples.append((time.monotonic() - wall0, rss_mb()))
        time.sleep(0.5)  # the last writes arrive
        cpu1, wall1, rss_busy = cpu_seconds(), time.monotonic(), rss_mb()
        # The writer's last act (status FINISHED) sets off one more import; memory is read
        # once that is done, so a transient peak of the final import is not called growth.
        settle(reader)
        rss1 = rss_mb()
        peak = max(m for _t, m in rss_samples)
        reader.stop.set()
        for thread in threads:
            thread.join(timeout=5)
        rate = f"{args.lines:,.0f} lines/s and {args.points:,.0f} points/s"
        print(f"writer: {rate} for {seconds:.0f} s")
        print(
            f"log lines in the view model: {reader.line_latency.summary()}   (goal p95 <= 100 ms)"
        )
        which = "newest point of each update" if cheap else "every point"
        print(
            f"metric points in the store:  {reader.point_latency.summary()}   "
            f"({which}; {reader.updates} watcher updates)"
        )
        cpu = (cpu1 - cpu0) / (wall1 - wall0) * 100
        print(f"mltop CPU while following: {cpu:.1f} % of one core   (goal <= 15 %)")
        print(
            f"resident memory: {rss0:.1f} MB at the start, {rss1:.1f} MB at the end, "
            f"growth {rss1 - rss0:+.1f} MB   (goal <= 10 MB)"
        )
        print(
            f"  (end read after the last import settled; {rss_busy:.1f} MB as the writer "
            f"stopped, peak of the per-second samples {peak:.1f} MB)"
        )
        if len(rss_samples) >= 120:
            first = statistics.median(m for _t, m in rss_samples[:60])
            last = statistics.median(m for _t, m in rss_samples[-60:])
            print(
                f"  median of the first minute {first:.1f} MB, of the last minute {last:.1f} MB: "
                f"{last - first:+.1f} MB while following"
            )
        if args.soak:
            step = max(1, len(rss_samples) // 10)
            shown = ", ".join(f"{t:.0f}s {m:.1f}" for t, m in rss_samples[::step])
            print(f"resident memory over time (MB): {shown}")
        print(
            f"view model: {reader.model.file.count:,} lines indexed in "
            f"{reader.model.file.index_bytes:,} bytes of index"
        )
        reader.model.close()
        reader.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A hundred thousand runs: re-scan, `mltop runs`, cold import, each beside its baseline.

The tree is native mltop run folders (4 metrics x 5 steps each, as laid out by
mltop.core.tracking), generated once into --data (default /tmp/mltop-scale) and reused; the
store is built there by the first cold import. Each figure is printed beside its baseline and
budget in one run:

  * re-scan of the unchanged tree vs `find -printf '%s %T@'` (budget 2x, peak RSS <= 250 MB),
    as `ingest` does it and as the app's background worker does it (its first scan, headless),
  * `mltop runs` filtered and sorted (about half the runs) as a table and as JSON, vs the
    `--limit 20` call and its first line out (budgets 3 s, 300 MB, first line 1 s),
  * cold import vs a plain Python script reading every run's files (budget 3x), with the cost
    per run of the first and last batch (budget +-25%) and bytes written vs final store size
    (budget 2x) and vs the part of it in use (the rest: free blocks left by rewrites).

    python bench/scale.py [--runs 100000] [--data /tmp/mltop-scale] [--only rescan,runs,import]

Each measurement runs in a fresh process under `/usr/bin/time -v` when it is there (peak RSS
and bytes written come from the kernel: /proc/self/io's write_bytes, and its
cancelled_write_bytes for the part written to files deleted before the kernel wrote them out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mltop.core.tracking import META_FILE, METRICS_FILE, PARAMS_FILE

METRICS = ("loss", "val_loss", "acc", "val_acc")
STEPS = 5
FILTER = "metrics.acc > 0.5"
SORT = "-metrics.acc"


def make_tree(root: Path, runs: int) -> None:
    """Run folders as the writer lays them out; ``acc``'s last value is above 0.5 for half."""
    base = 1_790_000_000.0
    for i in range(runs):
        folder = root / "runs" / f"run-{i:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "mltop-run/1",
            "id": f"{i:032x}",
            "name": f"run-{i:06d}",
            "experiment": f"exp-{i % 10}",
            "status": "FINISHED",
            "start_time": base + i,
            "end_time": base + i + STEPS,
            "host": "bench",
            "git_commit": None,
            "error": None,
            "tags": {"sweep": "scale", "group": str(i // 100)},
        }
        (folder / META_FILE).write_text(json.dumps(meta))
        (folder / PARAMS_FILE).write_text(json.dumps({"lr": 0.1 / (1 + i % 97), "seed": i}))
        final = ((i * 7919) % 1000) / 1000.0
        lines = []
        for step in range(STEPS):
            frac = (step + 1) / STEPS
            row = {
                "step": step,
                "ts": base + i + step,
                "loss": 1.0 / (1 + step + i % 7),
                "val_loss": 1.1 / (1 + step + i % 5),
                "acc": final * frac,
                "val_acc": final * frac * 0.9,
            }
            lines.append(json.dumps(row))
        (folder / METRICS_FILE).write_text("\n".join(lines) + "\n")


# What `mltop ingest` does before it reads anything (see mltop.core.common.no_pandas); the
# scripts that stand for it begin with it, the plain baselines do not.
AS_MLTOP_INGEST = """
from mltop.core.common.no_pandas import answer_without_pandas
answer_without_pandas()
"""

CHILD = r"""
import json, resource, sys, time
def written(field="write_bytes:"):
    with open("/proc/self/io") as fh:
        return next((int(x.split()[1]) for x in fh if x.startswith(field)), 0)
start = time.perf_counter()
exec(compile(sys.argv[1], "<bench>", "exec"))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cpu = time.process_time()
print("RESULT " + json.dumps(
    {"s": seconds, "cpu": cpu, "rss": peak, "written": written(),
     "cancelled": written("cancelled_write_bytes:")}), flush=True)
"""

COLD = (
    AS_MLTOP_INGEST
    + """
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.importers import mltop_runs
from mltop.core.store import open_store
batches = []
real = mltop_runs.MltopRunsImporter._import_batch
def timed(self, store, refs, known, report):
    t0, c0 = time.perf_counter(), time.process_time()
    real(self, store, refs, known, report)
    n = len(refs)
    batches.append(((time.perf_counter() - t0) / n, (time.process_time() - c0) / n))
mltop_runs.MltopRunsImporter._import_batch = timed
tree, store_path = Path(sys.argv[2]), Path(sys.argv[3])
with open_store(tree, store_path) as store:
    report = ingest(tree, store)
    print("IN_USE %d" % store.bytes_in_use())
assert not report.problems, report.problems[:3]
print("BATCHES " + json.dumps(batches))
"""
)

# The baseline: every run's three files read and parsed as the import reads them (the metadata
# and params as JSON objects, each metrics line as one), with nothing else. The import also
# walks the tree, stats each file, lists each run folder (its logs) and writes the store.
READ_ALL = """
from pathlib import Path
n = 0
for folder in sorted(Path(sys.argv[2], "runs").iterdir()):
    json.loads((folder / "mltop-run.json").read_bytes())
    json.loads((folder / "params.json").read_bytes())
    n += sum(len(json.loads(line)) for line in (folder / "metrics.jsonl").read_bytes().splitlines())
"""

RESCAN = (
    AS_MLTOP_INGEST
    + """
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.store import open_store
tree, store_path = Path(sys.argv[2]), Path(sys.argv[3])
with open_store(tree, store_path) as store:
    t0, c0 = time.perf_counter(), time.process_time()
    report = ingest(tree, store)
    print("INGEST %f %f" % (time.perf_counter() - t0, time.process_time() - c0))
assert report.points_added == 0 and not report.problems, report
"""
)

# The app over the same tree and store: its first scan, started by the runs screen once the
# stored runs are on screen, is the background re-scan. Timed inside the worker thread (its own
# CPU, and the whole process's over the same interval: the UI thread draws meanwhile), with the
# resident memory before it began, the process's peak until then and the peak during the scan.
TUI_RESCAN = """
import threading
from pathlib import Path
from mltop.core import discovery
from mltop.tui.app import MltopApp
tree, store_path = Path(sys.argv[2]), Path(sys.argv[3])
real = discovery.ingest
def status(key):
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) / 1024 for x in fh if x.startswith(key))
def timed(root, store, **options):
    rss, hwm = status("VmRSS:"), status("VmHWM:")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # the peak from here on: the scan's own (Linux resets VmHWM to VmRSS)
    t0, c0, th0 = time.perf_counter(), time.process_time(), time.thread_time()
    report = real(root, store, **options)
    print("TUI_INGEST %f %f %f %f %f %f" % (time.perf_counter() - t0, time.process_time() - c0,
          time.thread_time() - th0, rss, hwm, status("VmHWM:")), flush=True)
    assert report.points_added == 0 and not report.problems, report
    return report
discovery.ingest = timed
app = MltopApp(tree, store_path, live=False)
def wait():
    if app.scans_done:
        app.exit(0)
    else:
        app.set_timer(0.1, wait)
app.call_later(wait)
app.run(headless=True, size=(120, 40))
app.close_store()
"""

RUNS = """
from mltop.core.cli import main
code = main(sys.argv[2:])
sys.stdout.flush()
assert code == 0, code
"""


def in_child(code: str, *args: str) -> tuple[dict[str, float], list[str]]:
    """Run ``code`` in a fresh Python: wall time, peak RSS (MB), bytes written, its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, code, *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    lines = out.stdout.splitlines()
    result = [x for x in lines if x.startswith("RESULT ")][-1]
    return json.loads(result[len("RESULT ") :]), lines


def find_seconds(tree: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys) of `find` reading every file's size and mtime."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = ["find", str(tree), "-printf", "%s %T@\n"]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def cold_import_against(
    label: str, plain_code: str, source: Path, cold_code: str, tree: Path, store: Path
) -> None:
    """A cold import of ``tree`` (``cold_code`` prints each batch's cost per run) beside a plain
    script reading ``source``: time, first and last batches, bytes written; three lines.

    The plain script runs twice and its second run is the baseline: the first pays for bringing
    the tree into the page cache (at 100k runs it took 9 s of CPU, 18x its 10k figure), which
    the import after it then found warm.
    """
    for leftover in (store, store.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    in_child(plain_code, str(source))
    plain, _ = in_child(plain_code, str(source))
    result, lines = in_child(cold_code, str(tree), str(store))
    batches = json.loads([x for x in lines if x.startswith("BATCHES ")][-1][8:])
    head, tail = (
        statistics.median(b[0] for b in part) * 1000 for part in (batches[:5], batches[-5:])
    )
    head_cpu, tail_cpu = (
        statistics.median(b[1] for b in part) * 1000 for part in (batches[:5], batches[-5:])
    )
    size = store.stat().st_size
    in_use = int([x for x in lines if x.startswith("IN_USE ")][-1].split()[1])
    print(
        f"{label} {result['s']:6.1f} s (cpu {result['cpu']:5.1f} s)"
        f"  peak {result['rss']:5.0f} MB"
        f"   plain Python reading every run (cache warm): {plain['s']:5.1f} s"
        f" (cpu {plain['cpu']:5.1f} s)  ({result['s'] / plain['s']:.1f}x wall,"
        f" {result['cpu'] / plain['cpu']:.1f}x cpu; budget 3x)"
    )
    print(
        f"  per run, first 5 batches {head:6.3f} ms, last 5 {tail:6.3f} ms"
        f" ({(tail / head - 1) * 100:+.0f}%); cpu {head_cpu:6.3f} ms, {tail_cpu:6.3f} ms"
        f" ({(tail_cpu / head_cpu - 1) * 100:+.0f}%); budget +-25%"
    )
    print(
        f"  written {result['written'] / 1e6:6.0f} MB for a {size / 1e6:.0f} MB store"
        f"  ({result['written'] / size:.2f}x; budget 2x), {in_use / 1e6:.0f} MB of it in use"
        f" ({result['written'] / in_use:.2f}x); {result['cancelled'] / 1e6:.0f} MB of the"
        " written went to temporary files deleted before they reached the disk"
    )


def bench_import(tree: Path, store: Path) -> None:
    cold_import_against("cold import:              ", READ_ALL, tree, COLD, tree, store)


def _median_beside_find(
    tree: Path, script: str, store: Path, tag: str, names: tuple[str, ...]
) -> tuple[dict[str, float], float, float]:
    """The median by wall time of three runs of ``script`` in a child, each reporting a line
    ``TAG figures...`` read into ``names``, and `find`'s median (seconds, CPU) over ``tree``."""
    found, found_cpu = sorted(find_seconds(tree) for _ in range(3))[1]
    samples = []
    for _ in range(3):
        result, lines = in_child(script, str(tree), str(store))
        figures = [x for x in lines if x.startswith(f"{tag} ")][-1].split()
        result.update(zip(names, (float(x) for x in figures[1:]), strict=True))
        samples.append(result)
    return sorted(samples, key=lambda r: r["ingest"])[1], found, found_cpu


def rescan_against_find(tree: Path, store: Path) -> str:
    """The median of three re-scans of the unchanged ``tree`` beside `find` over it, one line."""
    mid, found, found_cpu = _median_beside_find(
        tree, RESCAN, store, "INGEST", ("ingest", "ingest_cpu")
    )
    return (
        f"{mid['ingest']:6.2f} s (cpu {mid['ingest_cpu']:5.2f} s;"
        f" whole process {mid['cpu']:5.2f} s)  peak {mid['rss']:5.0f} MB"
        f"   find -printf '%s %T@': {found:5.2f} s (cpu {found_cpu:5.2f} s)"
        f"  ({mid['ingest'] / found:.1f}x wall, {mid['ingest_cpu'] / max(found_cpu, 1e-9):.1f}x"
        " cpu; budget 2x, 250 MB)"
    )


def _cpu_of(pid: int) -> float:
    """User+system CPU seconds a live process has used so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_rescan(tree: Path, store: Path) -> None:
    print(f"re-scan, unchanged tree:   {rescan_against_find(tree, store)}")
    print(f"the TUI's background one:  {tui_rescan_against_find(tree, store)}")


def tui_rescan_against_find(tree: Path, store: Path) -> str:
    """The app's first scan of the unchanged ``tree`` (the median of three) beside `find`."""
    mid, found, found_cpu = _median_beside_find(
        tree,
        TUI_RESCAN,
        store,
        "TUI_INGEST",
        ("ingest", "cpu_in", "thread", "before", "hwm", "during"),
    )
    return (
        f"{mid['ingest']:6.2f} s (cpu {mid['thread']:5.2f} s in its thread,"
        f" {mid['cpu_in']:5.2f} s the whole process meanwhile)"
        f"  rss {mid['before']:4.0f} MB before (every run on screen as it begins;"
        f" budget 250 MB), peak during the scan {mid['during']:4.0f} MB (the process's before it:"
        f" {mid['hwm']:4.0f} MB)"
        f"   find: {found:5.2f} s (cpu {found_cpu:5.2f} s)"
        f"  ({mid['thread'] / max(found_cpu, 1e-9):.1f}x cpu in its thread; budget 2x)"
    )


def runs_call(args: list[str]) -> dict[str, float]:
    """`mltop runs ARGS` in a fresh process: seconds and CPU seconds (user+sys) in all and to
    its first line out, lines, peak RSS (MB)."""
    cmd = [sys.executable, "-c", CHILD, RUNS, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    first = first_cpu = None
    lines = 0
    result: dict[str, float] = {}
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            continue
        if first is None:
            first = time.perf_counter() - start
            first_cpu = _cpu_of(proc.pid)
        lines += 1
    if proc.wait():
        raise SystemExit(proc.stderr.read()[-2000:])
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "s": wall,
        "cpu": cpu,
        "first": first or wall,
        "first_cpu": first_cpu if first_cpu is not None else cpu,
        "lines": lines,
        "rss": result.get("rss", 0.0),
    }


def bench_runs(tree: Path, store: Path) -> None:
    """Each call against its budget and, measured the same way in this run, the cost of
    starting Python with mltop's CLI and opening the store (`--limit 1`): what no listing can
    go below. Judge by CPU when the load is high: wall time then mostly waits for a core."""
    base = ["runs", str(tree), "--store", str(store), "--no-scan"]
    query = ["--filter", FILTER, f"--sort={SORT}"]
    fixed = runs_call([*base, *query, "--limit", "1"])
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; fixed cost (a"
        f" --limit 1 call) {fixed['s']:.2f} s, cpu {fixed['cpu']:.2f} s, peak {fixed['rss']:.0f} MB"
    )
    for label, extra in (
        ("table", query),
        ("--json", [*query, "--json"]),
        ("--limit 20", [*query, "--limit", "20"]),
        ("--limit 20 --json", [*query, "--limit", "20", "--json"]),
    ):
        r = runs_call([*base, *extra])
        print(
            f"mltop runs {label:<17} {r['lines']:9,} lines {r['s']:5.2f} s (cpu {r['cpu']:5.2f} s)"
            f"  first line {r['first']:5.2f} s (cpu {r['first_cpu']:4.2f} s)"
            f"  peak {r['rss']:4.0f} MB   budget 3 s, first line 1 s, 300 MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/mltop-scale"))
    parser.add_argument("--only", default="import,rescan,runs")
    args = parser.parse_args()
    which = set(args.only.split(","))
    tree = args.data / "tree"
    marker = args.data / f"tree-{args.runs}.done"
    if not marker.exists():
        shutil.rmtree(tree, ignore_errors=True)
        start = time.perf_counter()
        make_tree(tree, args.runs)
        marker.touch()
        print(f"generated {args.runs:,} run folders in {time.perf_counter() - start:.0f} s")
    store = args.data / "store.duckdb"
    print(f"{args.runs:,} mltop run folders, {len(METRICS)} metrics x {STEPS} steps, in {tree}")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} (judge by cpu time when it is high)")
    if "import" in which or not store.exists():
        bench_import(tree, store)
    if "rescan" in which:
        bench_rescan(tree, store)
    if "runs" in which:
        bench_runs(tree, store)


if __name__ == "__main__":
    main()

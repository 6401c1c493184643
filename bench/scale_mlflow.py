"""A hundred thousand MLflow runs: cold import and re-scan of a SQLite and a file store.

    python bench/scale_mlflow.py --db /tmp/x/mlflow-100k.db [--mlruns /tmp/x/fs100k/mlruns]
    python bench/scale_mlflow.py --build-db /tmp/x/mlflow-100k.db --copies 10
    python bench/scale_mlflow.py --build-mlruns /tmp/x/fs100k/mlruns --from-mlruns FS10K --copies 10

The stores are MLflow's own output: the shared 10,000-run SQLite store (written by MLflow
3.17.2 through its client, ../shared/fixtures/mlflow/scale/) or a file store written by
``gen_scale.py``, made ten times bigger by copying every run under a new run id (its rows,
or its folder with the id in meta.yaml changed). Writing 100,000 runs through MLflow's client
takes hours on a 2-core machine (709 s for the 10,000); the copies keep MLflow's exact layout.

Each figure runs in a fresh process, beside its baseline from the same run:

  * cold import vs a plain Python script that reads every run's rows (sqlite3) or files
    (budget 3x), with the cost per run of the first and last five batches (budget +-25%) and
    bytes written vs the final store (budget 2x);
  * re-scan of the unchanged store; for a file store vs `find -printf '%s %T@'` (budget 2x,
    peak RSS <= 250 MB), from the command line and in the app's background worker;
  * for a SQLite store, a re-scan in a fresh process after MLflow changed one run's tag (the
    change is undone after), beside the plain script again (peak RSS <= 250 MB): what the
    store recorded of each run decides which runs are rewritten, not the process's memory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import (
    AS_MLTOP_INGEST,
    cold_import_against,
    in_child,
    rescan_against_find,
    tui_rescan_against_find,
)

SHARED_10K = Path("/work/shared/fixtures/mlflow/scale/mlflow-10k-runs-3m-10s.db.zst")

COLD = (
    AS_MLTOP_INGEST
    + """
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport
from mltop.core.store import open_store
ends = []
real = ImportReport.add
def add(self, kind, runs=0, points=0):
    ends.append((time.perf_counter(), time.process_time(), runs))
    real(self, kind, runs=runs, points=points)
ImportReport.add = add
tree, store_path = Path(sys.argv[2]), Path(sys.argv[3])
with open_store(tree, store_path) as store:
    ends.append((time.perf_counter(), time.process_time(), 0))
    report = ingest(tree, store)
    print("IN_USE %d" % store.bytes_in_use())
assert not report.problems, report.problems[:3]
per_run = [((t - s) / n, (c - d) / n) for (s, d, _), (t, c, n) in zip(ends, ends[1:]) if n]
print("BATCHES " + json.dumps(per_run))
"""
)

READ_SQLITE = """
import sqlite3
con = sqlite3.connect("file:" + sys.argv[2] + "?immutable=1", uri=True)
for table in ("experiments", "runs", "params", "tags", "metrics"):
    con.execute(f"SELECT * FROM {table}").fetchall()
"""

CHANGED = (
    AS_MLTOP_INGEST
    + """
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.store import open_store
tree, store_path = Path(sys.argv[2]), Path(sys.argv[3])
with open_store(tree, store_path) as store:
    t0, c0 = time.perf_counter(), time.process_time()
    report = ingest(tree, store)
    runs = sum(c.runs for c in report.counts.values())
    print("INGEST %f %f %d" % (time.perf_counter() - t0, time.process_time() - c0, runs))
assert not report.problems, report.problems[:3]
"""
)

READ_FILES = """
import os
n = 0
for folder, _, files in os.walk(sys.argv[2]):
    for name in files:
        with open(os.path.join(folder, name), "rb") as fh:
            n += len(fh.read().splitlines())
"""


def build_db(out: Path, copies: int, source: Path) -> None:
    """Every run of the 10,000-run store ``copies`` times, each copy under a new run id."""
    work = out.with_suffix(".src.db")
    subprocess.run(["zstd", "-q", "-d", "-f", str(source), "-o", str(work)], check=True)
    shutil.move(work, out)
    con = sqlite3.connect(out)
    con.execute(
        "CREATE TEMP TABLE m AS SELECT run_uuid AS old, k, "
        "substr(run_uuid, 1, 24) || printf('%08x', k) AS new FROM runs, "
        "(WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < ?) "
        "SELECT k FROM c)",
        [copies - 1],
    )
    con.execute("CREATE INDEX temp.m_old ON m(old)")
    renamed = {
        ("runs", "name"): "x.name || '-c' || m.k",
        ("tags", "value"): "CASE WHEN x.key = 'mlflow.parentRunId' THEN coalesce((SELECT new "
        "FROM m m2 WHERE m2.old = x.value AND m2.k = m.k), x.value) WHEN x.key = "
        "'mlflow.runName' THEN x.value || '-c' || m.k ELSE x.value END",
    }
    for table in ("runs", "metrics", "latest_metrics", "params", "tags"):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        select = ["m.new" if c == "run_uuid" else renamed.get((table, c), f"x.{c}") for c in cols]
        con.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(select)} "
            f"FROM {table} x JOIN m ON m.old = x.run_uuid"
        )
    con.commit()
    con.close()
    hour_ago = time.time() - 3600
    os.utime(out, (hour_ago, hour_ago))


def build_mlruns(out: Path, copies: int, source: Path) -> None:
    """Every run folder of a file store ``copies`` times, each copy under a new run id."""
    shutil.copytree(source, out)
    for meta in sorted(source.glob("*/*/meta.yaml")):
        run = meta.parent
        text = meta.read_text()
        for k in range(1, copies):
            new_id = run.name[:-8] + f"{k:08x}"
            target = out / run.parent.name / new_id
            shutil.copytree(run, target)
            changed = re.sub(rf"\b{run.name}\b", new_id, text)
            (target / "meta.yaml").write_text(changed)


def bench(label: str, source: Path, tree: Path, store: Path, plain_code: str) -> None:
    cold_import_against(f"{label} cold import:", plain_code, source, COLD, tree, store)
    print(f"  re-scan, unchanged: {rescan_against_find(tree, store)}")


def rescan_after_tag_change(db: Path, tree: Path, store: Path) -> None:
    """A fresh process re-reading ``db`` after one run's tag changed (by SQL, as MLflow's
    set_tag writes it), beside the plain script; the tag is put back and the store with it."""
    st = db.stat()
    con = sqlite3.connect(db)
    rowid, value = con.execute("SELECT rowid, value FROM tags ORDER BY rowid LIMIT 1").fetchone()
    try:
        with con:
            con.execute("UPDATE tags SET value = ? WHERE rowid = ?", [f"{value}-changed", rowid])
        result, lines = in_child(CHANGED, str(tree), str(store))
    finally:
        with con:
            con.execute("UPDATE tags SET value = ? WHERE rowid = ?", [value, rowid])
        con.close()
        os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns))  # quiet again: read immutable
    in_child(CHANGED, str(tree), str(store))
    plain, _ = in_child(READ_SQLITE, str(db))
    seconds, cpu, runs = (
        float(x) for x in [x for x in lines if x.startswith("INGEST ")][-1].split()[1:]
    )
    print(
        f"  re-scan in a fresh process, one tag changed: {seconds:6.2f} s (cpu {cpu:5.2f} s;"
        f" whole process {result['cpu']:5.2f} s)  peak {result['rss']:5.0f} MB,"
        f" {runs:.0f} run(s) rewritten   plain Python reading every row: {plain['s']:5.1f} s"
        f" (cpu {plain['cpu']:5.1f} s)  ({result['cpu'] / plain['cpu']:.1f}x cpu; 250 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an MLflow SQLite store to import")
    parser.add_argument("--mlruns", type=Path, help="an MLflow file store (mlruns) to import")
    parser.add_argument("--build-db", type=Path, help="write the copied SQLite store here")
    parser.add_argument("--build-mlruns", type=Path, help="write the copied file store here")
    parser.add_argument("--from-mlruns", type=Path, help="the file store to copy runs of")
    parser.add_argument("--from-db", type=Path, default=SHARED_10K, help="a .db.zst to copy")
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    if args.build_db:
        build_db(args.build_db, args.copies, args.from_db)
    if args.build_mlruns:
        build_mlruns(args.build_mlruns, args.copies, args.from_mlruns)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} (judge by cpu time when it is high)")
    if args.db:
        tree = args.db.parent
        bench("SQLite", args.db, tree, tree / "mltop-store.duckdb", READ_SQLITE)
        rescan_after_tag_change(args.db, tree, tree / "mltop-store.duckdb")
    if args.mlruns:
        tree = args.mlruns.parent
        bench("file store", args.mlruns, tree, tree / "mltop-store.duckdb", READ_FILES)
        store = tree / "mltop-store.duckdb"
        print(f"  the TUI's background re-scan: {tui_rescan_against_find(tree, store)}")


if __name__ == "__main__":
    main()

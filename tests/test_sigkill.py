"""A real import process killed with SIGKILL leaves whole runs only, and re-import completes it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mltop.core.discovery import ingest
from mltop.core.store import open_store
from mltop.core.tracking import META_FILE, METRICS_FILE, PARAMS_FILE

RUNS, STEPS, METRICS = 600, 40, ("loss", "acc")

IMPORTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mltop.core import discovery
    from mltop.core.importers import mltop_runs
    from mltop.core.store import connection, open_store
    mltop_runs.BATCH_RUNS = 20  # many small transactions, so the kill lands between and inside
    connection.BULK_MEMORY = 256 * 1024  # and commits of a few of them, not one of them all
    written = mltop_runs.MltopRunsImporter._import_batch

    def announced(*args, **kwargs):
        # Says each batch as it is written, so the test can kill at a known point of the
        # import, not at a wall-clock guess a fast machine outruns.
        written(*args, **kwargs)
        print("batch", flush=True)

    mltop_runs.MltopRunsImporter._import_batch = announced
    root = Path(sys.argv[1])
    store = open_store(root)
    print("importing", flush=True)
    discovery.ingest(root, store)
    print("done", flush=True)
    """
)


def _make_tree(root: Path) -> None:
    for i in range(RUNS):
        folder = root / "runs" / f"run-{i:04d}"
        folder.mkdir(parents=True)
        meta = {"name": f"run-{i:04d}", "status": "FINISHED", "start_time": 1e9 + i, "tags": {}}
        (folder / META_FILE).write_text(json.dumps(meta))
        (folder / PARAMS_FILE).write_text(json.dumps({"i": i}))
        rows = [
            json.dumps({"step": s, "ts": 1e9 + s, **{m: s * 0.5 for m in METRICS}})
            for s in range(STEPS)
        ]
        (folder / METRICS_FILE).write_text("\n".join(rows) + "\n")


def _assert_only_whole_runs(root: Path) -> int:
    with open_store(root) as store:
        runs = store.runs()
        ids = [r.id for r in runs]
        summaries = store.summaries(ids)
        params = store.params_for(ids)
        known_files = store.file_states()
        for run in runs:
            assert store.point_count(run.id) == STEPS * len(METRICS), run.name
            assert set(summaries[run.id]) == set(METRICS), run.name
            assert params[run.id] == {"i": str(int(run.name.split("-")[1]))}
            assert str(Path(run.location) / METRICS_FILE) in known_files
        assert store.point_count() == len(runs) * STEPS * len(METRICS)
        return len(runs)


BATCHES = RUNS // 20


@pytest.mark.parametrize(("after", "delay"), [(0, 0.0), (1, 0.0), (6, 0.01), (12, 0.02)])
def test_sigkill_mid_import_leaves_no_partial_run_and_reimport_completes(
    tmp_path: Path, after: int, delay: float
) -> None:
    """Killed after ``after`` of the 30 batches were written (and ``delay`` seconds into the
    next), only whole runs are stored and the next import adds exactly the rest."""
    _make_tree(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "importing"
    for _ in range(after):
        assert proc.stdout.readline().strip() == "batch"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    said = proc.stdout.read().split()
    assert "done" not in said, "the import ended before the kill; the test no longer kills it"
    assert len(said) + after < BATCHES

    survivors = _assert_only_whole_runs(tmp_path)
    assert survivors < RUNS

    with open_store(tmp_path) as store:
        report = ingest(tmp_path, store)
        assert not report.problems
        assert report.runs_added == RUNS - survivors
    assert _assert_only_whole_runs(tmp_path) == RUNS

"""The live index: changed files reach the store through the importers' incremental path."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from conftest import write_run

from mltop.core.discovery import ingest
from mltop.core.entities import Run
from mltop.core.live.watch import Watcher, WatchUpdate, is_stale
from mltop.core.store import open_memory_store
from mltop.core.tracking import METRICS_FILE


def _run(status: str = "RUNNING", updated: float | None = 1000.0, start: float | None = 900.0):
    """A run with what staleness reads (status, start, last update) and nothing else known."""
    unknown = dict.fromkeys(f.name for f in dataclasses.fields(Run))
    named = {"id": "r1", "name": "r", "source_kind": "mltop", "location": "/x"}
    read = {"status": status, "start_time": start, "updated": updated, "lifecycle": "active"}
    return Run(**(unknown | named | read))


def test_is_stale_only_for_silent_running_runs() -> None:
    assert is_stale(_run(updated=1000.0), now=1400.0, after=300)
    assert not is_stale(_run(updated=1000.0), now=1200.0, after=300)
    assert not is_stale(_run(status="FINISHED", updated=1000.0), now=9999.0, after=300)
    assert is_stale(_run(updated=None, start=900.0), now=1300.0, after=300)
    assert not is_stale(_run(updated=None, start=None), now=1e9, after=300)


def test_an_append_reimports_only_that_run(runs_root: Path) -> None:
    store = open_memory_store()
    ingest(runs_root, store)
    run = next(r for r in store.runs() if r.name == "sgd-lr0.1")
    folder = Path(run.location)
    before = store.point_count(run.id)
    with open(folder / METRICS_FILE, "a") as fh:
        fh.write('{"step": 99, "loss": 0.01}\n')
    watcher = Watcher([runs_root], store, lambda u: None)
    update = watcher.apply({str(folder / METRICS_FILE)})
    assert not update.full_scan
    assert update.changed_runs == {run.id}
    assert not update.new_runs
    assert store.point_count(run.id) == before + 1


def test_new_and_removed_runs_need_a_full_scan(runs_root: Path) -> None:
    store = open_memory_store()
    ingest(runs_root, store)
    watcher = Watcher([runs_root], store, lambda u: None)
    folder = write_run(runs_root / "runs", "brand-new", steps=4)
    update = watcher.apply({str(folder / METRICS_FILE)})
    assert update.full_scan
    new = {r.id for r in store.runs() if r.name == "brand-new"}
    assert update.new_runs == new and new <= update.changed_runs
    shutil.rmtree(folder)
    update = watcher.apply({str(folder / METRICS_FILE)})
    assert update.removed_runs == 1
    assert "brand-new" not in {r.name for r in store.runs()}


def test_a_growing_log_keeps_its_run_alive(runs_root: Path) -> None:
    store = open_memory_store()
    folder = write_run(runs_root / "runs", "printer", steps=1)
    (folder / "output.log").write_text("hello\n")
    ingest(runs_root, store)
    run = next(r for r in store.runs() if r.name == "printer")
    watcher = Watcher([runs_root], store, lambda u: None)
    time.sleep(0.02)
    with open(folder / "output.log", "a") as fh:
        fh.write("still going\n")
    update = watcher.apply({str(folder / "output.log")})
    assert update.grown_logs == {str(folder / "output.log")}
    assert run.id in update.changed_runs
    touched = store.run(run.id)
    assert touched is not None and touched.updated >= (folder / "output.log").stat().st_mtime


def test_stale_checks_report_runs_that_go_quiet(runs_root: Path) -> None:
    store = open_memory_store()
    folder = runs_root / "runs" / "killed"
    folder.mkdir(parents=True)
    (folder / "mltop-run.json").write_text(
        '{"format": "mltop-run/1", "name": "killed", "status": "RUNNING", "start_time": 1000.0}'
    )
    ingest(runs_root, store)
    run = next(r for r in store.runs() if r.name == "killed")
    watcher = Watcher([runs_root], store, lambda u: None, stale_seconds=300)
    seen = store.run(run.id).updated or 1000.0
    assert watcher.check_stale(now=seen + 10) is None  # nothing stale yet, nothing to say
    update = watcher.check_stale(now=seen + 301)
    assert update is not None and update.stale_runs == {run.id}
    assert watcher.check_stale(now=seen + 302) is None  # said once


WRITER = textwrap.dedent(
    """
    import sys, time
    from mltop.core.tracking import start_run
    with start_run(sys.argv[1], name="live", capture_output=True) as run:
        for step in range(int(sys.argv[2])):
            run.log(step=step, loss=1.0 / (step + 1))
            print(f"step {step}", flush=True)
            time.sleep(float(sys.argv[3]))
    """
)


def _watch(root: Path, store, **kwargs) -> tuple[Watcher, list[WatchUpdate], threading.Thread]:
    updates: list[WatchUpdate] = []
    watcher = Watcher([root], store, updates.append, **kwargs)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    time.sleep(0.3)  # inotify watches in place
    return watcher, updates, thread


def test_a_live_training_process_reaches_the_store(runs_root: Path, tmp_path: Path) -> None:
    store = open_memory_store()
    ingest(runs_root, store)
    watcher, updates, thread = _watch(runs_root, store, min_interval=0.1, full_interval=0.2)
    script = tmp_path / "train.py"
    script.write_text(WRITER)
    proc = subprocess.run(
        [sys.executable, str(script), str(runs_root / "runs"), "8", "0.05"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 10
    live = None
    while time.monotonic() < deadline:
        live = next((r for r in store.runs() if r.name == "live"), None)
        if live is not None and live.status == "FINISHED" and store.point_count(live.id) == 8:
            break
        time.sleep(0.05)
    watcher.stop()
    thread.join(5)
    assert not thread.is_alive() and watcher.error is None
    assert live is not None and live.status == "FINISHED"
    assert store.point_count(live.id) == 8
    assert any(live.id in u.new_runs for u in updates)
    assert any(p.endswith("output.log") for u in updates for p in u.grown_logs)


FAST_WRITER = textwrap.dedent(
    """
    import sys, time
    path, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    with open(path, "a") as fh:
        i = 0
        while time.monotonic() < end:
            fh.write(f"line {i}\\n")
            fh.flush()
            i += 1
            time.sleep(0.0005)
    """
)


def test_a_fast_writer_cannot_flood_the_ui(runs_root: Path, tmp_path: Path) -> None:
    store = open_memory_store()
    ingest(runs_root, store)
    folder = next(p for p in (runs_root / "runs").iterdir() if p.is_dir())
    watcher, updates, thread = _watch(runs_root, store, min_interval=0.25)
    script = tmp_path / "fast.py"
    script.write_text(FAST_WRITER)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(script), str(folder / "output.log"), "1.5"], check=True, timeout=60
    )
    time.sleep(0.5)
    elapsed = time.monotonic() - started
    watcher.stop()
    thread.join(5)
    assert updates, "the writer's changes were reported"
    # Thousands of writes, yet at most one update per min_interval (plus the first).
    assert len(updates) <= elapsed / 0.25 + 2


def test_a_long_session_folds_its_write_ahead_log_into_the_store(
    runs_root: Path, tmp_path: Path
) -> None:
    from mltop.core.store import open_store

    store = open_store(runs_root)
    ingest(runs_root, store)
    store.checkpoint()
    wal = Path(f"{store.path}.wal")
    metrics = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    watcher, _updates, thread = _watch(runs_root, store, min_interval=0.05, checkpoint_interval=0)
    try:
        with open(metrics, "a") as fh:
            fh.write('{"step": 10, "loss": 0.01}\n')
        run_id = next(r.id for r in store.runs() if r.name == "sgd-lr0.1")

        def folded() -> bool:
            return store.point_count(run_id) == 21 and (not wal.exists() or wal.stat().st_size == 0)

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            # A commit creates the log empty and then writes it: folded is what stays so.
            if folded():
                time.sleep(0.3)
                if folded():
                    break
            time.sleep(0.05)
        assert store.point_count(run_id) == 21
        assert folded()
    finally:
        watcher.stop()
        thread.join(5)
        store.close()

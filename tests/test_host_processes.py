"""Processes linked to runs, with real child processes: one that holds its run's files open
(mltop's writer keeps metrics.jsonl and output.log open while it trains), and one recognised
by the working directory and command line its run recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltop.core.discovery import ingest
from mltop.core.store import Store, open_store
from mltop.core.system.processes import ProcessWatcher, RunTraces, link_process

TRAIN = textwrap.dedent(
    """
    import os, sys, time
    from mltop.core.tracking import start_run

    mode = os.environ["MODE"]
    if mode == "write-and-die":
        # A run whose process is gone without a final status: it stays RUNNING.
        with start_run("runs", name="trained-here") as run:
            run.log(loss=1.0)
            os._exit(0)
    elif mode == "train":
        with start_run("runs", name="training", capture_output=True) as run:
            run.log(loss=0.5)
            print("ready", flush=True)
            time.sleep(120)
    else:
        print("ready", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    return tmp_path


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        child.kill()
        child.wait(timeout=10)


def _start(
    children: list[subprocess.Popen[str]], project: Path, mode: str, *args: str
) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=project,
        env={**os.environ, "MODE": mode},
        stdout=subprocess.PIPE,
        text=True,
    )
    children.append(child)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def _store(project: Path) -> Store:
    store = open_store(project)
    report = ingest(project, store)
    assert not report.problems
    return store


def _traces(store: Store) -> RunTraces:
    return RunTraces.from_rows(*store.running_run_traces())


def _run_id(store: Store, name: str) -> str:
    [run] = store.find_runs(name)
    return run.id


def test_a_process_holding_its_runs_files_open_is_linked_to_the_run(
    project: Path, children: list[subprocess.Popen[str]]
) -> None:
    trainer = _start(children, project, "train")
    bystander = _start(children, project, "sleep", "--other")
    with _store(project) as store:
        link = link_process(trainer.pid, _traces(store))
        assert link is not None and link.run_id == _run_id(store, "training")
        assert link.how in ("holds metrics.jsonl open", "holds output.log open")
        assert link_process(bystander.pid, _traces(store)) is None


def test_a_process_with_the_recorded_cwd_and_command_line_is_linked(
    project: Path, children: list[subprocess.Popen[str]]
) -> None:
    subprocess.run(
        [sys.executable, "train.py", "--epochs", "3"],
        cwd=project,
        env={**os.environ, "MODE": "write-and-die"},
        check=True,
        timeout=60,
    )
    again = _start(children, project, "sleep", "--epochs", "3")
    other_args = _start(children, project, "sleep", "--epochs", "4")
    with _store(project) as store:
        run_id = _run_id(store, "trained-here")
        assert store.tags(run_id)["mltop.cwd"] == str(project)
        link = link_process(again.pid, _traces(store))
        assert link is not None
        assert (link.run_id, link.how) == (run_id, "same working directory and command line")
        assert link_process(other_args.pid, _traces(store)) is None


def test_a_command_recorded_on_another_host_links_nothing() -> None:
    traces = RunTraces.from_rows(
        [], [("r1", "gpu-07", "/work", '["train.py"]'), ("r2", None, "/work", "not json")]
    )
    assert traces.commands == () and not traces


def test_the_watcher_lists_linked_processes_first_with_their_run(
    project: Path, children: list[subprocess.Popen[str]]
) -> None:
    trainer = _start(children, project, "train")
    with _store(project) as store:
        watcher = ProcessWatcher(lambda: _traces(store), top=3)
        rows = watcher.sample()
        run_id = _run_id(store, "training")
    assert rows[0].pid == trainer.pid and rows[0].link is not None
    assert rows[0].link.run_id == run_id
    assert "train.py" in rows[0].command
    assert len(rows) == 4  # the linked process, then the three busiest


def test_a_finished_run_claims_no_process(
    project: Path, children: list[subprocess.Popen[str]]
) -> None:
    trainer = _start(children, project, "train")
    with _store(project) as store:
        run_id = _run_id(store, "training")
        assert link_process(trainer.pid, _traces(store)) is not None
        meta = project / "runs" / "training" / "mltop-run.json"
        meta.write_text(meta.read_text().replace('"RUNNING"', '"FINISHED"'))
        ingest(project, store)
        assert store.run(run_id).status == "FINISHED"
        assert link_process(trainer.pid, _traces(store)) is None


def test_a_busy_process_reads_its_cpu_share_since_the_last_sample(
    children: list[subprocess.Popen[str]],
) -> None:
    spin = "import time\nprint('ready', flush=True)\nwhile True: pass\n"
    busy = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True)
    children.append(busy)
    assert busy.stdout is not None and busy.stdout.readline().strip() == "ready"
    watcher = ProcessWatcher(top=100_000)
    first = {row.pid: row for row in watcher.sample()}
    assert first[busy.pid].cpu_percent == 0.0  # no interval yet, as psutil's first reading
    time.sleep(1.0)
    row = {row.pid: row for row in watcher.sample()}[busy.pid]
    # A spinning loop takes a core when it can; the machine running the tests may be shared.
    assert row.cpu_percent is not None and 5.0 < row.cpu_percent <= 100.0 * (os.cpu_count() or 1)
    assert "while True: pass" in row.command
    assert row.user is not None and row.rss is not None and row.rss > 0

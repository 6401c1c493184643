"""Source paths that are not plain files of a sane size: refused with a problem line, never read.

A FIFO blocks ``open()`` until a writer comes, and ``/dev/zero`` never ends: a regression here
hangs or exhausts memory, so ingest runs in a real subprocess with a deadline and the test fails
instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import write_run
from test_import_mlflow import FILES, filestore_copy, run_import

from mltop.core.cli.output import EXIT_PROBLEMS
from mltop.core.common.regular_files import NotRegularFile
from mltop.core.discovery import ingest
from mltop.core.importers.lightning import MAX_HPARAMS_BYTES
from mltop.core.importers.mlflow_files import MAX_VALUE_BYTES
from mltop.core.logs.cursor import FileCursor
from mltop.core.store import open_memory_store, open_store

DEADLINE = 60  # seconds; the whole ingest takes two

#: A file named like each kind of source, in the folder layout its tool writes.
SOURCE_FILES = (
    "runs/fake/metrics.jsonl",
    "out/checkpoint-10/trainer_state.json",
    "lightning_logs/version_0/metrics.csv",
    "lightning_logs/version_1/hparams.yaml",
    "dvclive/params.yaml",
    "tracking/mlflow.db",
    "logs/train.metrics.jsonl",
    "tb/events.out.tfevents.1700000000.host.1.0",
)


def _make_tree(root: Path, make_bad: object) -> list[Path]:
    """A real run beside a bad file named like every source; returns the bad paths."""
    write_run(root / "runs", "good", steps=4)
    fake = write_run(root / "runs", "fake", steps=2)
    (fake / "metrics.jsonl").unlink()
    version1 = root / "lightning_logs" / "version_1"
    version1.mkdir(parents=True)
    (version1 / "metrics.csv").write_text("epoch,step,loss\n0,0,1.0\n0,1,0.5\n")
    dvclive = root / "dvclive"
    (dvclive / "plots" / "metrics").mkdir(parents=True)
    (dvclive / "plots" / "metrics" / "loss.tsv").write_text("step\tloss\n0\t1.0\n1\t0.5\n")
    (dvclive / "metrics.json").write_text('{"loss": 0.5, "step": 1}')
    bad = []
    for relative in SOURCE_FILES:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        make_bad(path)  # type: ignore[operator]
        bad.append(path)
    return bad


def _ingest(root: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "mltop.core.cli", "ingest", str(root)],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ingest still running after {DEADLINE} s: it blocked on a source file")


def test_fifos_named_like_source_files_are_reported_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    fifos = _make_tree(tmp_path, os.mkfifo)
    result = _ingest(tmp_path)
    assert result.returncode == EXIT_PROBLEMS, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for fifo in fifos:
        named = [line for line in lines if str(fifo) in line]
        assert named, f"no problem line for {fifo}:\n{result.stderr}"
        assert all("a FIFO, not a regular file" in line for line in named), named
    with open_store(tmp_path) as store:
        names = {run.name for run in store.runs()}
    assert {"good", "version_1"} <= names


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_sources_symlinked_to_endless_devices_are_reported_not_read(
    tmp_path: Path, device: str
) -> None:
    links = _make_tree(tmp_path, lambda path: path.symlink_to(device))
    result = _ingest(tmp_path)
    assert result.returncode == EXIT_PROBLEMS, result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    lines = result.stderr.splitlines()
    for link in links:
        assert [line for line in lines if str(link) in line], f"nothing said about {link}"
    with open_store(tmp_path) as store:
        assert "good" in {run.name for run in store.runs()}


def test_a_hparams_file_over_its_size_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    version = tmp_path / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_text("epoch,step,loss\n0,0,1.0\n")
    hparams = version / "hparams.yaml"
    hparams.write_text("lr: 0.1\n" + "# padding\n" * (MAX_HPARAMS_BYTES // 10))
    size = hparams.stat().st_size
    result = _ingest(tmp_path)
    assert result.returncode == EXIT_PROBLEMS
    (line,) = [line for line in result.stderr.splitlines() if "hparams.yaml" in line]
    limit = f"{MAX_HPARAMS_BYTES:,}-byte limit for a hparams file"
    assert f"too large: {size:,} bytes, over the {limit}" in line
    with open_store(tmp_path) as store:
        assert [run.name for run in store.runs()] == ["version_0"]


def test_following_a_fifo_named_like_a_log_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "train.log"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def follow() -> None:
        try:
            FileCursor(fifo)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    # A daemon thread: on a regression it stays blocked in open() without holding up the exit.
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        with open(fifo, "wb"):  # unblock the reader so the thread can end
            pass
        pytest.fail("opening a FIFO to follow it blocked")
    assert isinstance(outcome[0], NotRegularFile)
    assert str(outcome[0]) == "a FIFO, not a regular file"


def test_an_mlflow_param_file_far_over_mlflows_limits_is_refused_alone(tmp_path: Path) -> None:
    mlruns = filestore_copy(tmp_path)
    params = sorted(mlruns.glob("*/*/params/learning_rate"))[0].parent
    (params / "learning_rate").write_bytes(b"0.1" * (MAX_VALUE_BYTES // 2))
    store = open_memory_store()
    report = run_import(store, FILES, mlruns)
    assert [str(problem) for problem in report.problems] == [
        f"{params / 'learning_rate'}: cannot read: too large: "
        f"{3 * (MAX_VALUE_BYTES // 2):,} bytes, over the {MAX_VALUE_BYTES:,}-byte limit "
        "for an MLflow param or tag"
    ]
    (run,) = [run for run in store.runs() if run.native_id == params.parent.name]
    assert "learning_rate" not in store.params_for([run.id])[run.id]
    assert "model" in store.params_for([run.id])[run.id]


def test_a_fifo_as_dvcs_lock_file_does_not_hold_up_the_workspace_run(tmp_path: Path) -> None:
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    os.mkfifo(tmp_path / ".dvc" / "tmp" / "rwlock")
    (tmp_path / "dvc.yaml").write_text("stages:\n  train:\n    cmd: python train.py\n")
    (tmp_path / "params.yaml").write_text("lr: 0.1\n")
    result = _ingest(tmp_path)
    assert result.returncode == 0, result.stderr
    with open_store(tmp_path) as store:
        assert [(run.name, run.status) for run in store.runs()] == [("workspace", "FINISHED")]


def test_a_fifo_named_like_a_runs_log_is_not_listed_as_its_log(tmp_path: Path) -> None:
    run = write_run(tmp_path / "runs", "printer")
    (run / "train.log").write_text("epoch 1\n")
    os.mkfifo(run / "output.log")
    with open_store(tmp_path) as store:
        report = ingest(tmp_path, store)
        (only,) = store.runs()
        assert [log.path for log in store.logs(only.id)] == [str(run / "train.log")]
    assert [str(p) for p in report.problems] == [
        f"{run / 'output.log'}: not read (a FIFO, not a regular file)"
    ]

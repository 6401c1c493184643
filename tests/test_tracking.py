"""mltop's run writer: the files a training script leaves behind."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mltop.core.tracking import META_FILE, METRICS_FILE, OUTPUT_FILE, PARAMS_FILE, start_run


def _meta(folder: Path) -> dict[str, object]:
    return json.loads((folder / META_FILE).read_text())


def test_a_finished_run_has_metadata_params_and_one_line_per_log(tmp_path: Path) -> None:
    with start_run(tmp_path / "runs", name="sgd", params={"lr": 0.1, "opt": {"m": 0.9}}) as run:
        assert _meta(run.folder)["status"] == "RUNNING"
        run.log(step=0, loss=1.0, acc=0.5)
        run.log(loss=0.5)
        assert len((run.folder / METRICS_FILE).read_text().splitlines()) == 2  # flushed per line
    meta = _meta(run.folder)
    assert meta["status"] == "FINISHED"
    assert meta["name"] == "sgd" and meta["experiment"] == "runs"
    assert meta["end_time"] >= meta["start_time"]
    assert json.loads((run.folder / PARAMS_FILE).read_text()) == {"lr": 0.1, "opt": {"m": 0.9}}
    rows = [json.loads(x) for x in (run.folder / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]
    assert rows[1]["loss"] == 0.5


def test_a_raising_block_marks_the_run_failed_with_the_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError), start_run(tmp_path, name="bad") as run:
        run.log(loss=float("nan"))
        raise ValueError("loss diverged")
    meta = _meta(run.folder)
    assert meta["status"] == "FAILED"
    assert meta["error"] == "ValueError: loss diverged"


def test_ctrl_c_marks_the_run_killed(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), start_run(tmp_path, name="stopped") as run:
        raise KeyboardInterrupt
    assert _meta(run.folder)["status"] == "KILLED"


def test_ctrl_c_while_the_run_is_being_set_up_marks_it_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real SIGINT cannot be timed into the moment between meta.json saying RUNNING and the
    # block starting, so NVML's loading (which takes seconds on a GPU machine) raises it here.
    from mltop.core import tracking_system

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tracking_system.NvmlGpus, "load", staticmethod(interrupted))
    with (
        pytest.raises(KeyboardInterrupt),
        start_run(tmp_path, name="setup", system_metrics=True),
    ):
        pytest.fail("the block must not start")
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    meta = _meta(folder)
    assert meta["status"] == "KILLED" and meta["end_time"] is not None


def test_non_finite_values_are_written_and_read_back(tmp_path: Path) -> None:
    with start_run(tmp_path, name="nan") as run:
        run.log(step=0, a=float("nan"), b=float("inf"), c=float("-inf"))
    row = json.loads((run.folder / METRICS_FILE).read_text())
    assert math.isnan(row["a"]) and row["b"] == math.inf and row["c"] == -math.inf


def test_metric_values_must_be_numbers(tmp_path: Path) -> None:
    with start_run(tmp_path, name="x") as run, pytest.raises(TypeError, match="numbers"):
        run.log(loss="high")  # type: ignore[arg-type]


def test_same_name_twice_gets_two_folders(tmp_path: Path) -> None:
    with start_run(tmp_path, name="a/b c") as first:
        pass
    with start_run(tmp_path, name="a/b c") as second:
        pass
    assert first.folder != second.folder
    assert first.folder.parent == second.folder.parent == tmp_path
    assert _meta(second.folder)["name"] == "a/b c"


def test_captured_output_goes_to_the_run_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_run(tmp_path, name="talky", capture_output=True) as run:
        print("epoch 1/3 loss=0.5")
    assert "epoch 1/3 loss=0.5" in (run.folder / OUTPUT_FILE).read_text()
    assert "epoch 1/3" in capsys.readouterr().out


def test_a_sigkilled_job_stays_running(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from mltop.core.tracking import start_run
        with start_run({str(tmp_path)!r}, name="killed") as run:
            run.log(step=0, loss=1.0)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    folder = tmp_path / "killed"
    assert _meta(folder)["status"] == "RUNNING"
    assert _meta(folder)["end_time"] is None
    assert (folder / METRICS_FILE).read_text().count("\n") == 1


def test_git_commit_is_recorded_inside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, check=True, env=env
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    with start_run(repo / "runs", name="r") as run:
        pass
    assert _meta(run.folder)["git_commit"] == head

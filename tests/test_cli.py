"""The command line: output that scripts can parse, exit codes, one-line problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mltop.core.cli import main
from mltop.core.tracking import METRICS_FILE


def _mltop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_runs_json_parses_back_with_params_and_final_metrics(runs_root: Path) -> None:
    result = _mltop("runs", str(runs_root), "--json")
    assert result.returncode == 0, result.stderr
    runs = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(runs) == {"sgd-lr0.1", "sgd-lr0.01", "sgd-lr0.001", "sgd-diverged"}
    run = runs["sgd-lr0.01"]
    assert run["status"] == "FINISHED" and run["source"] == "mltop"
    assert run["params"] == {"lr": "0.01", "model": "sgd"}
    assert run["metrics"]["loss"] == pytest.approx(1 / 11)
    assert runs["sgd-diverged"]["status"] == "FAILED"
    assert run["start"].startswith("20") and run["duration"] >= 0


def test_runs_sorts_by_a_metric(runs_root: Path) -> None:
    result = _mltop("runs", str(runs_root), "--json", "--sort", "metrics.loss")
    names = [r["name"] for r in json.loads(result.stdout)]
    assert names == ["sgd-lr0.001", "sgd-lr0.01", "sgd-lr0.1", "sgd-diverged"]
    result = _mltop("runs", str(runs_root), "--json", "--sort=-metrics.loss")
    assert [r["name"] for r in json.loads(result.stdout)] == names[::-1]


def test_runs_table_lists_every_run(runs_root: Path) -> None:
    result = _mltop("runs", str(runs_root))
    assert result.returncode == 0
    assert "sgd-lr0.001" in result.stdout and "FAILED" in result.stdout
    assert result.stdout.strip().endswith("4 runs")


def test_non_finite_metrics_are_valid_json(tmp_path: Path) -> None:
    from conftest import write_run

    folder = write_run(tmp_path / "runs", "nan", steps=0)
    (folder / METRICS_FILE).write_text('{"step": 0, "loss": NaN, "acc": Infinity}\n')
    result = _mltop("runs", str(tmp_path), "--json")
    (run,) = json.loads(result.stdout)
    assert run["metrics"] == {"loss": "NaN", "acc": "Infinity"}


def test_ingest_prints_a_summary_and_one_line_per_problem(runs_root: Path) -> None:
    bad = runs_root / "runs" / "sgd-lr0.1" / METRICS_FILE
    bad.write_bytes(b"\x00\x01garbage\n")
    result = _mltop("ingest", str(runs_root))
    assert result.returncode == 1
    assert "mltop" in result.stdout and "4 runs" in result.stdout
    problems = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(problems) == 1
    assert all(line.startswith(str(bad) + ": ") for line in problems)
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["runs", str(tmp_path / "missing")]) == 2
    assert main(["runs", str(tmp_path), "--bogus"]) == 2
    assert main(["runs", str(tmp_path), "--sort", "nonsense"]) == 2


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("mltop ingest", "mltop runs", "mltop demo"):
        assert command in out


def test_the_console_script_is_installed() -> None:
    result = subprocess.run(["mltop", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mltop ")


def test_runs_of_a_run_file_are_that_runs_only(runs_root: Path) -> None:
    assert _mltop("ingest", str(runs_root)).returncode == 0  # the folder's store knows all four
    folder = runs_root / "runs" / "sgd-lr0.01"
    for name in (METRICS_FILE, "mltop-run.json"):
        result = _mltop("runs", str(folder / name), "--json")
        assert result.returncode == 0, result.stderr
        assert [(r["name"], r["source"]) for r in json.loads(result.stdout)] == [
            ("sgd-lr0.01", "mltop")
        ]
        assert result.stderr == ""


def test_runs_of_a_file_that_holds_none_says_it_uses_the_folder(runs_root: Path) -> None:
    readme = runs_root / "README.md"
    readme.write_text("# notes\n", encoding="utf-8")
    result = _mltop("runs", str(readme), "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4
    assert result.stderr == (
        f"mltop: {readme} holds no runs by itself; using its folder {runs_root}\n"
    )


def test_the_demo_command_beside_a_demo_folder_says_how_to_open_the_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "demo").mkdir()
    result = _mltop("demo", "--bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "mltop: running the `demo` command; to open the folder demo/, run `mltop ./demo`"
    )
    opened = _mltop("runs", "./demo", "--json", cwd=tmp_path)
    assert (opened.returncode, json.loads(opened.stdout)) == (0, [])

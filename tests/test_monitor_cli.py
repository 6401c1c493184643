"""``mltop monitor``: formats, gates, the config file and exit codes, on the fixture's log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.files import write_lines
from helpers.fixtures import untar
from rich.console import Console

from mltop.core.cli import main
from mltop.core.monitor import MonitorConfig, build_report
from mltop.core.monitor.render import render_table

FIXTURE = Path(__file__).parent / "fixtures" / "monitoring"
ORACLE = json.loads((FIXTURE / "oracle_monitoring.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untar(FIXTURE / "data.tar.gz", tmp_path_factory.mktemp("monitoring-cli"))


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["monitor", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_holds_the_whole_log_and_every_window_keyed_by_column(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            str(data / "prediction_log.parquet"),
            "--ref",
            str(data / "reference.parquet"),
            "--sensitive",
            "group",
            "--drift",
            "psi",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["window"] == "day" and len(doc["windows"]) == 30
    whole = doc["overall"]
    oracle = ORACLE["overall_vs_reference"]
    for column, want in oracle["drift_vs_reference"]["columns"].items():
        got = whole["drift"][column]
        assert got["test"] == want["stattest_id"] and got["drifted"] is want["drift_detected"]
        assert got["statistic"] == pytest.approx(want["score"], rel=1e-9)
        assert got["threshold"] == want["threshold"]
    assert whole["extra_drift"]["psi"]["income_k"]["test"] == "psi"
    assert whole["quality"]["credit_utilization"]["missing_share"] == pytest.approx(
        oracle["missing_share"]["credit_utilization"]
    )
    assert whole["performance"]["f1"] == pytest.approx(oracle["performance_labeled"]["f1"])
    assert set(whole["performance_by_version"]) == {"v1", "v2"}
    fair = whole["fairness"]["group"]
    assert fair["equalized_odds_difference"] == pytest.approx(
        oracle["fairness"]["equalized_odds_difference_labeled"]
    )
    day = doc["windows"][25]
    assert day["start"] == "2025-03-26T00:00:00Z"
    assert day["drift"]["channel"]["drifted"] is True


def test_a_crossed_gate_exits_1_and_says_which_in_one_line(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [str(data / "prediction_log.parquet"), "--ref", str(data / "reference.parquet")]
    code, _out, err = run(
        [*base, "--sensitive", "group", "--fail-on", "drift_share>0.5,dpd>0.5"], capsys
    )
    assert code == 1
    lines = [line for line in err.splitlines() if "gate crossed" in line]
    assert lines == [
        "mltop monitor: gate crossed: drift_share>0.5: drift_share is 0.714286 (whole log)"
    ]
    # Accuracy fell by 0.036 against the reference: a 0.05 allowance holds, 0.01 does not.
    code, _, err = run([*base, "--format", "md", "--fail-on", "accuracy<-0.05"], capsys)
    assert code == 0, err
    code, _, err = run([*base, "--format", "md", "--fail-on", "accuracy<-0.01"], capsys)
    assert code == 1 and "accuracy 0.8383 vs reference 0.8742" in err
    # credit_utilization misses 20% on 2025-03-29 and 25% on the 30th: any. names the first.
    code, _, err = run([*base, "--format", "md", "--fail-on", "any.missing>=0.2"], capsys)
    assert code == 1 and "(2025-03-29T00:00:00Z)" in err


def test_a_threshold_that_cannot_be_read_is_a_usage_error(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [str(data / "prediction_log.parquet"), "--ref", str(data / "reference.parquet")]
    for bad, said in (
        ("drift_share=>1", "cannot read threshold"),
        ("flux>1", "unknown key 'flux'"),
    ):
        code, _, err = run([*base, "--fail-on", bad], capsys)
        assert code == 2
        assert said in err and len(err.strip().splitlines()) == 1


def test_markdown_has_a_table_per_part(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [str(data / "prediction_log.csv"), "--ref", str(data / "reference.csv"), "--format", "md",
         "--sensitive", "group"],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert "### Drift, whole log against the reference: 5 of 7 features drifted" in out
    assert "| income\\_k | Wasserstein distance (normed) | 0.476373 | 0.1 | ✗ drift |" in out
    assert "### Fairness by group" in out and "### By day" in out


def test_the_table_fits_80_columns_and_keeps_numbers_whole(data: Path) -> None:
    report = build_report(
        MonitorConfig(
            log=str(data / "prediction_log.parquet"),
            reference=str(data / "reference.parquet"),
            sensitive=("group",),
        )
    )
    console = Console(width=80, record=True, color_system=None)
    console.print(render_table(report, 80))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "0.100032" in text  # the borderline statistic, not rounded to the threshold
    assert "✗ drift" in text


def test_names_and_values_from_the_log_are_shown_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"2025-01-0{1 + i % 3}T10:00:00Z,{i % 7},[red]v{i % 3}\x1b]0;t\x07" for i in range(60)]
    log = write_lines(tmp_path / "log.csv", ["ts,[bold]x\x1b[31m,c", *rows])
    code, out, err = run([str(log), "--ref-window", "2025-01-01..2025-01-02"], capsys)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "[bold]x" in out  # markup shown as text, not applied


def test_the_config_file_names_the_log_reference_and_roles(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".mltop").mkdir()
    (tmp_path / ".mltop" / "monitor.yaml").write_text(
        f"log: {data / 'prediction_log.jsonl'}\n"
        f"reference: {data / 'reference.parquet'}\n"
        "window: week\n"
        "columns:\n  sensitive: [group]\n  features: [income_k, channel]\n"
        "drift: [ks]\n"
        "fail_on: dpd>0.5\n",
        encoding="utf-8",
    )
    code, out, err = run([str(tmp_path), "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["window"] == "week" and doc["roles"]["features"] == ["income_k", "channel"]
    assert list(doc["overall"]["extra_drift"]["ks"]) == ["income_k"]
    # A flag wins over the file.
    code, out, _ = run([str(tmp_path), "--format", "json", "--window", "day"], capsys)
    assert json.loads(out)["window"] == "day"
    (tmp_path / ".mltop" / "monitor.yaml").write_text("log: x.parquet\nwindows: day\n")
    code, _, err = run([str(tmp_path)], capsys)
    assert code == 2
    assert err.strip() == (
        f"mltop monitor: {tmp_path / '.mltop' / 'monitor.yaml'}: unknown key 'windows' "
        "(known: columns, drift, fail_on, log, reference, reference_window, task, window)"
    )


def test_the_installed_command_exits_1_on_a_crossed_gate(data: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "monitor", str(data / "prediction_log.parquet"),
         "--ref", str(data / "reference.parquet"), "--format", "json", "--sensitive", "group",
         "--fail-on", "latest.drift_share>0.5"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "latest.drift_share>0.5: drift_share is 0.857143 (2025-03-30T00:00:00Z)" in done.stderr
    assert json.loads(done.stdout)["overall"]["n_rows"] == 4995


def test_class_scores_give_each_class_its_line_and_a_bad_flag_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers.multiclass_log import multiclass_log

    multiclass_log(tmp_path, ["bird", "cat", "dog"])
    log, ref = str(tmp_path / "log.parquet"), str(tmp_path / "ref.parquet")
    flags = [f"--class-score={c}=p_{c}" for c in ("bird", "cat", "dog")]
    code, out, err = run([log, "--ref", ref, *flags, "--format", "json"], capsys)
    assert code == 0, err
    per_class = json.loads(out)["overall"]["performance"]["per_class"]
    assert list(per_class) == ["bird", "cat", "dog"]
    assert all(0.5 < c["roc_auc"] < 1 for c in per_class.values())
    assert "p_bird" not in json.loads(out)["overall"]["drift"]  # a score column, not a feature
    code, out, err = run([log, "--ref", ref, "--class-score", "bird"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == "mltop monitor: --class-score wants CLASS=COLUMN, not 'bird'"

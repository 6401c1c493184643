"""`mltop diff`: golden output in three formats, run selection, gates and exit codes.

The project is written with mltop's own run writer plus a plain JSONL metric log, so the runs
come from two sources. Values are fixed; what differs per test run (ids, which hash the run's
folder, paths and start times) is normalised before comparing with ``tests/golden/``. Set
``MLTOP_UPDATE_GOLDEN=1`` to rewrite the golden files after an intended change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mltop.core.cli import COMMANDS, USAGE, main
from mltop.core.tracking import start_run

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MLTOP_UPDATE_GOLDEN") == "1"


@pytest.fixture(autouse=True)
def _plain_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No colour codes, no user overrides, no store from the environment.
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "MLTOP_STORE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def log_run(root: Path, name: str, params: dict[str, Any], rows: list[dict[str, float]]) -> None:
    with start_run(root / "runs", name=name, params=params, experiment="digits") as run:
        for step, row in enumerate(rows):
            run.log(step=step, **row)


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Written once per module; tests only read it (its store is reused, as a user's would be)."""
    root = tmp_path_factory.mktemp("diff") / "project"
    log_run(
        root,
        "sgd-lr0.1",
        {"lr": 0.1, "model": "sgd|momentum", "epochs": 5, "batch": 32},
        [
            {"loss": 1.0, "val_acc": 0.80, "epoch_time": 2.0, "grad_norm": 3.0},
            {"loss": 0.5, "val_acc": 0.85, "epoch_time": 2.0, "grad_norm": 2.0},
            {"loss": 0.3, "val_acc": 0.90, "epoch_time": 2.0, "grad_norm": 1.5},
            {"loss": 0.25, "val_acc": 0.92, "epoch_time": 2.0, "grad_norm": 1.2},
            {"loss": 0.2, "val_acc": 0.91, "epoch_time": 2.0, "grad_norm": 1.0},
        ],
    )
    log_run(
        root,
        "sgd-lr0.03 [v2]",
        {"lr": 0.03, "model": "sgd|momentum", "epochs": "5", "batch": "auto", "note": "`x`\ny"},
        [
            {"loss": 1.2, "val_acc": 0.78, "epoch_time": 2.0, "grad_norm": 3.5},
            {"loss": 0.7, "val_acc": 0.84, "epoch_time": 2.0, "grad_norm": 2.5},
            {"loss": 0.4, "val_acc": 0.88, "epoch_time": 2.0, "grad_norm": 2.0},
            {"loss": 0.3, "val_acc": 0.89, "epoch_time": 2.0, "grad_norm": 1.8},
            {"loss": 0.26, "val_acc": 0.90, "epoch_time": 2.0, "grad_norm": 1.6},
        ],
    )
    (root / "logs").mkdir()
    (root / "logs" / "rf-depth12.jsonl").write_text(
        '{"step": 0, "val_acc": 0.7, "loss": 0.5}\n'
        '{"step": 5, "val_acc": 0.9, "loss": 0.3}\n'
        '{"step": 10, "val_acc": 0.95, "loss": NaN}\n'
    )
    return root


@pytest.fixture
def project(shared_project: Path) -> Path:
    return shared_project


@pytest.fixture
def own_project(shared_project: Path, tmp_path: Path) -> Path:
    """A private copy for tests that change the project."""
    copy = tmp_path / "project"
    shutil.copytree(shared_project, copy, ignore=shutil.ignore_patterns(".mltop"))
    return copy


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def diff(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_cli(["diff", *args, "-C", str(project)], capsys)


def check_golden(name: str, text: str) -> None:
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with MLTOP_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def normalise_json(text: str, root: Path) -> str:
    """Ids become the run's label, paths relative to the project, start times a placeholder."""
    data = json.loads(text)
    names = {run["id"]: f"<id of {run['label']}>" for run in data["runs"]}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return names.get(value, value.replace(str(root), "<root>"))
        return value

    data = walk(data)
    for run in data["runs"]:
        assert isinstance(run["start_time"], float | None)
        run["start_time"] = "<start>" if run["start_time"] is not None else None
    return json.dumps(data, indent=2, ensure_ascii=False)


# -- golden output ---------------------------------------------------------------------------------


def test_table_output_matches_golden(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = diff(project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "rf-depth12")
    assert code == 0, err
    assert "\x1b" not in out
    check_golden("diff_table.txt", out)


def test_json_output_matches_golden_and_parses_back(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = diff(
        project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "rf-depth12", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert [r["name"] for r in data["runs"]] == ["sgd-lr0.1", "sgd-lr0.03 [v2]", "rf-depth12"]
    assert [r["source"] for r in data["runs"]] == ["mltop", "mltop", "jsonl"]
    loss = next(m for m in data["metrics"] if m["key"] == "loss")
    assert loss["direction"] == "min" and loss["steps_differ"] is True
    assert loss["cells"][1]["verdict"] == "worse"
    assert loss["cells"][1]["delta"] == pytest.approx(0.06)
    assert loss["cells"][1]["pct"] == pytest.approx(30.0)
    assert loss["cells"][2]["value"] == "NaN" and loss["cells"][2]["delta"] == "NaN"
    assert loss["cells"][0]["best"] == 0.2 and loss["cells"][0]["best_step"] == 4
    acc = next(m for m in data["metrics"] if m["key"] == "val_acc")
    assert (acc["cells"][0]["best"], acc["cells"][0]["best_step"]) == (0.92, 3)
    epochs = next(p for p in data["params"] if p["key"] == "epochs")
    assert [c["verdict"] for c in epochs["cells"]] == ["baseline", "same", "missing"]
    check_golden("diff.json", normalise_json(out, project))


def test_markdown_output_matches_golden(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = diff(project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "rf-depth12", "--md")
    assert code == 0, err
    check_golden("diff.md", out)


def test_markdown_with_gate_and_only_changed_matches_golden(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = diff(
        project,
        capsys,
        "sgd-lr0.1",
        "sgd-lr0.03 [v2]",
        "--format=md",
        "--only-changed",
        "--fail-on",
        "val_acc<-0.005,loss>+5%",
    )
    assert code == 1
    assert "| epoch\\_time" not in out and "| model" not in out  # equal rows are hidden
    assert "**Regressions (2)**" in out
    check_golden("diff_gate.md", out)


# -- gates -----------------------------------------------------------------------------------------


def test_fail_on_exits_1_and_names_each_regression(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = diff(
        project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "rf-depth12", "--fail-on",
        "val_acc<-0.005,loss>+5%",
    )  # fmt: skip
    assert code == 1
    lines = [line for line in err.splitlines() if "regression" in line]
    assert len(lines) == 3, err
    assert any("val_acc in sgd-lr0.03 [v2]: 0.91 -> 0.9 (-0.01 vs baseline" in x for x in lines)
    assert any("loss in sgd-lr0.03 [v2]: 0.2 -> 0.26 (+30%" in x for x in lines)
    assert any("loss in rf-depth12: NaN" in x for x in lines)
    assert "sgd-lr0.1" in out  # the table is still printed


def test_fail_on_passes_when_within_thresholds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = diff(project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "--fail-on", "loss>+50%")
    assert code == 0, err
    code, out, _ = diff(
        project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "--json", "--fail-on", "val_acc<-0.05"
    )
    assert code == 0 and json.loads(out)["gate"] == {"passed": True, "failures": []}


@pytest.mark.parametrize("bad", ["loss", "loss<<1", "loss<fast", ","])
def test_bad_fail_on_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    code, _, err = diff(project, capsys, "sgd-lr0.1", "rf-depth12", "--fail-on", bad)
    assert code == 2 and err.startswith("mltop diff: --fail-on:") and err.count("\n") == 1


# -- selecting runs --------------------------------------------------------------------------------


def test_identical_runs_say_no_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "same"
    root.mkdir()
    content = '{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n'
    (root / "first.jsonl").write_text(content)
    (root / "second.jsonl").write_text(content)
    code, out, _ = diff(root, capsys, "first", "second")
    assert code == 0 and "no differences between the 2 runs" in out
    code, out, _ = diff(root, capsys, "first", "second", "--md", "--only-changed")
    assert "no differences between the 2 runs" in out and "| Metric" not in out
    code, out, _ = diff(root, capsys, "first", "second", "--json")
    data = json.loads(out)
    assert data["identical"] is True and data["summary"] == "no differences between the 2 runs"


def test_ambiguous_name_lists_the_candidates_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "dups"
    for _ in range(2):
        log_run(root, "dup", {"lr": 0.1}, [{"loss": 1.0}])
    log_run(root, "other", {"lr": 0.2}, [{"loss": 2.0}])
    code, _, err = diff(root, capsys, "dup", "other")
    assert code == 2
    assert err.count("\n") == 1
    assert "'dup' is ambiguous, it matches 2 runs" in err
    assert str(root / "runs" / "dup") in err and str(root / "runs" / "dup-2") in err
    # An id prefix picks one of them; both labels are disambiguated.
    ids = [part.split(",")[0].strip("( ") for part in err.split("dup (")[1:]]
    code, out, err = diff(root, capsys, ids[0], ids[1], "--json")
    assert code == 0, err
    labels = [r["label"] for r in json.loads(out)["runs"]]
    assert labels[0] != labels[1] and all(label.startswith("dup (") for label in labels)


def test_unknown_name_suggests_close_names(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = diff(project, capsys, "sgd-lr0.01", "rf-depth12")
    assert code == 2 and err.count("\n") == 1
    assert "no run named 'sgd-lr0.01'" in err and "'sgd-lr0.1'" in err
    # One word with an operator that is no valid filter is still read as a mistyped name.
    code, _, err = diff(project, capsys, "lr=0.1", "rf-depth12")
    assert code == 2 and err.count("\n") == 1 and "no run named 'lr=0.1'" in err


def test_filter_expression_selects_several_runs_and_baseline_moves_first(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = diff(project, capsys, "params.model = 'sgd|momentum'", "rf-depth12", "--json")
    assert code == 0, err
    names = [r["name"] for r in json.loads(out)["runs"]]
    assert sorted(names[:2]) == ["sgd-lr0.03 [v2]", "sgd-lr0.1"] and names[2] == "rf-depth12"
    code, out, _ = diff(
        project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "--baseline", "rf-depth12", "--json"
    )
    data = json.loads(out)
    assert data["runs"][0]["name"] == "rf-depth12"
    assert data["runs"][0]["baseline"] is True and data["baseline"] == data["runs"][0]["id"]
    code, _, err = diff(project, capsys, "rf-depth12", "params.lr >")
    assert code == 2 and "bad filter" in err
    code, _, err = diff(project, capsys, "rf-depth12", "status = KILLED")
    assert code == 2 and "selects no runs" in err


def test_metrics_regex_and_only_changed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = diff(
        project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "--metrics", "^val_", "--json"
    )
    data = json.loads(out)
    assert [m["key"] for m in data["metrics"]] == ["val_acc"]
    assert data["metrics_regex"] == "^val_"
    code, out, _ = diff(project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "--only-changed", "--json")
    data = json.loads(out)
    assert "epoch_time" not in [m["key"] for m in data["metrics"]]
    assert "model" not in [p["key"] for p in data["params"]]
    assert "epochs" not in [p["key"] for p in data["params"]]  # 5 and "5": the same text
    code, _, err = diff(project, capsys, "sgd-lr0.1", "rf-depth12", "--metrics", "(")
    assert code == 2 and "bad regular expression" in err


def test_fewer_than_two_runs_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = diff(project, capsys, "rf-depth12", "rf-depth12")
    assert code == 2 and "need at least 2 runs" in err
    code, _, err = run_cli(["diff", "rf-depth12"], capsys)
    assert code == 2


def test_diff_ingests_first_so_new_runs_are_seen(
    own_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert diff(own_project, capsys, "sgd-lr0.1", "rf-depth12")[0] == 0
    (own_project / "logs" / "late.jsonl").write_text('{"step": 0, "loss": 0.1}\n')
    code, out, err = diff(own_project, capsys, "sgd-lr0.1", "late", "--json")
    assert code == 0, err
    assert json.loads(out)["runs"][1]["name"] == "late"


def test_project_direction_overrides_apply(
    own_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (own_project / ".mltop").mkdir(exist_ok=True)
    (own_project / ".mltop" / "directions.yaml").write_text("grad_norm: min\nloss: max\n")
    _, out, _ = diff(own_project, capsys, "sgd-lr0.1", "sgd-lr0.03 [v2]", "--json")
    metrics = {m["key"]: m for m in json.loads(out)["metrics"]}
    assert metrics["grad_norm"]["direction"] == "min"
    assert metrics["grad_norm"]["direction_source"] == "user"
    assert metrics["loss"]["cells"][1]["verdict"] == "better"


def test_usage_lists_diff_and_help_documents_thresholds() -> None:
    assert COMMANDS["diff"].__name__ == "cmd_diff"
    assert "mltop diff RUN RUN" in USAGE and "--fail-on" in USAGE
    result = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "diff", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "KEY<LIMIT" in result.stdout and "loss>+5%" in result.stdout
    assert "relative change" in result.stdout

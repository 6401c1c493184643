"""``pipelines_command``: the side-by-side table, JSON, Markdown, ``--dag`` and exit codes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from helpers.pipelines import write_files

from mltop.core.cli.pipelines import pipelines_command

HERE = Path(__file__).resolve().parent / "pipelines"

JUNIT = (
    '<testsuites><testsuite name="pytest" tests="3" failures="0" errors="0" skipped="0"'
    ' time="2.5"><testcase classname="t" name="a"/><testcase classname="t" name="b"/>'
    '<testcase classname="t" name="c"/></testsuite></testsuites>'
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(HERE / "sample", root)
    (root / "reports").mkdir()
    (root / "reports/junit.xml").write_text(JUNIT)
    return root


def run(*args: object, **kw: object) -> tuple[int, str]:
    out = io.StringIO()
    code = pipelines_command(*args, out=out, **kw)  # type: ignore[arg-type]
    return code, out.getvalue()


def test_table_lines_up_phases_with_coverage_and_maturity(project: Path) -> None:
    code, text = run(project)
    assert code == 0
    lines = text.splitlines()
    assert lines[0].split() == [
        "phase",
        "DevOps:",
        ".github/workflows/ci.yml",
        "MLOps:",
        "dvc.yaml",
        "coverage",
    ]
    row = next(line for line in lines if line.startswith("test / train"))
    assert "test [✓ junit 3 ✓ 0 ✗ 2s]" in row
    assert "train [○ not run yet: no dvc.lock]" in row
    assert "✓ train" not in row  # a covered phase is not a tick beside a stage that never ran
    assert row.rstrip().endswith("both")
    monitor = next(line for line in lines if line.startswith("monitor"))
    assert "✗ nothing watches drift or data quality" in monitor and monitor.endswith("none")
    assert any(line.startswith("Coverage: DevOps covers 3 of 7 phases") for line in lines)
    assert "MLOps maturity: level 1: training is an automated pipeline with evaluation" in text
    assert "    - no data validation stage" in lines
    assert '  train → test: name "train" says train' in lines


def test_json_parses_back_with_rows_stages_reasons_and_maturity(project: Path) -> None:
    code, text = run(project, "json")
    assert code == 0
    data = json.loads(text)
    assert data["devops"]["path"] == ".github/workflows/ci.yml"
    assert data["mlops"]["path"] == "dvc.yaml"
    rows = {r["phase"]: r for r in data["rows"]}
    assert rows["test"] == {
        "phase": "test",
        "label": "test / train",
        "devops": ["test"],
        "mlops": ["train"],
        "devops_gap": None,
        "mlops_gap": None,
        "coverage": "both",
    }
    assert rows["package"]["mlops_gap"] == "no model registry stage"
    assert data["maturity"]["level"] == 1
    assert "no data validation stage" in data["maturity"]["missing"]
    stages = {s["id"]: s for s in data["devops"]["stages"]}
    assert stages["lint"]["phase"] == "build"
    assert stages["lint"]["phase_reason"] == 'name "lint" says lint'
    assert stages["test"]["status"]["state"] == "passed"
    assert stages["test"]["matrix"]["combinations"] == 2
    assert data["mlops"]["edges"] == [
        {"source": "prepare", "target": "train", "kind": "data"},
        {"source": "train", "target": "evaluate", "kind": "data"},
        {"source": "prepare", "target": "evaluate", "kind": "data"},
    ]
    assert data["problems"] == []


def test_markdown_table_and_sections(project: Path) -> None:
    code, text = run(project, "md")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "| phase | DevOps: .github/workflows/ci.yml | MLOps: dvc.yaml | coverage |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2].startswith("| source / data |")
    assert len([line for line in lines[2:9] if line.startswith("| ")]) == 7
    assert "**MLOps maturity: level 1**" in text
    assert "- no data validation stage" in lines


def test_file_text_cannot_inject_markup_escapes_or_table_cells(tmp_path: Path) -> None:
    evil = '  evil:\n    name: "test \\e[31m[bold red]x[/] | y <b>"\n    runs-on: x\n'
    root = write_files(tmp_path / "proj", {
        ".github/workflows/ci.yml": f"on: push\njobs:\n{evil}    steps:\n      - run: pytest\n"
    })  # fmt: skip
    _, text = run(root)
    assert "\x1b" not in text
    assert "␛[31m[bold red]x[/]" in text  # shown literally, the escape made visible
    _, md = run(root, "md")
    assert "\x1b" not in md
    assert "\\| y &lt;b&gt;" in md
    _, js = run(root, "json")
    assert json.loads(js)["devops"]["stages"][0]["name"] == "test \x1b[31m[bold red]x[/] | y <b>"


def test_dag_draws_boxes_edges_and_status(project: Path) -> None:
    code, text = run(project, dag=Path("dvc.yaml"))
    assert code == 0
    assert text.splitlines()[0] == "dvc.yaml  (dvc, 3 stages, 3 edges)"
    assert "│ prepare" in text and "│ source / data" in text and "│ ○ not run" in text
    assert text.index("prepare") < text.index("│ train") < text.index("│ evaluate")
    assert "  prepare → train  (data)" in text
    code, js = run(project, "json", dag=project / ".github/workflows/ci.yml")
    data = json.loads(js)
    assert code == 0
    assert [s["id"] for s in data["stages"]] == ["lint", "test", "build"]
    assert data["stages"][1]["status"]["summary"] == "junit 3 ✓ 0 ✗"
    code, md = run(project, "md", dag=Path("dvc.yaml"))
    assert md.startswith("```mermaid\nflowchart TD\n")
    assert "  n0 --> n1" in md


def test_dag_with_a_cycle_ends_and_reports(tmp_path: Path) -> None:
    code, text = run(tmp_path, dag=HERE / "bad/cycle.gitlab-ci.yml")
    assert code == 1
    assert "dependency cycle: a → b → c → a" in text


def test_exit_codes(project: Path, tmp_path: Path) -> None:
    assert run(project, "yaml")[0] == 2
    assert run(tmp_path / "missing")[0] == 2
    assert run(project, dag=Path("nope.yml"))[0] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = run(empty)
    assert code == 1 and "no pipeline definitions found" in text
    (project / ".github/workflows/broken.yml").write_text("jobs: [\n")
    code, text = run(project)
    assert code == 1
    assert "Problems:" in text and "broken.yml: invalid YAML" in text


def test_single_file_path(tmp_path: Path) -> None:
    code, text = run(HERE / "tekton-pipeline.yaml")
    assert code == 0
    assert "DevOps: tekton-pipeline.yaml" in text
    assert "MLOps: none found" in text
    assert "level 0" in text

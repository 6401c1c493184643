"""``mltop pipelines`` reads the model registry as the Pipelines screen does: the register phase
names the models and latest versions under the repository, the maturity reading counts a
registry with aliases as evidence and its absence as a gap, in the table, JSON and Markdown.
The registry is the fixture's SQLite store written by the real MLflow 3.17.2.
"""

from __future__ import annotations

import json

from test_registry import _pipeline_project

from mltop.core import cli
from mltop.core.pipelines.registry_evidence import NO_REGISTRY_GAP

EVIDENCE = (
    "model registry with aliases: diabetes-regressor v3 @challenger v3 @champion v1; "
    "iris-classifier v4 @challenger v4 @champion v3"
)


def _pipelines(capsys, *argv: str) -> str:
    cli.cmd_pipelines(list(argv))
    return capsys.readouterr().out


def test_pipelines_command_shows_registry_evidence_in_every_format(tmp_path, capsys):
    root = _pipeline_project(tmp_path, with_registry=True)
    table = _pipelines(capsys, str(root))
    assert EVIDENCE in table
    assert "no register stage; registry: diabetes-regre" in table  # the cell is shortened
    assert "no model registry stage" not in table
    markdown = _pipelines(capsys, str(root), "--format", "md")
    assert EVIDENCE in markdown
    text = _pipelines(capsys, str(root), "--format", "json")
    data = json.loads(text)
    assert EVIDENCE in data["maturity"]["evidence"]
    registry = {m["name"]: m for m in data["registry"]}
    assert registry["iris-classifier"]["latest_version"] == "4"
    assert registry["iris-classifier"]["aliases"] == {"champion": "3", "challenger": "4"}
    assert registry["diabetes-regressor"]["registry"].endswith("mlflow.db")
    assert NO_REGISTRY_GAP not in data["maturity"]["missing"]


def test_pipelines_command_without_a_registry_states_the_gap(tmp_path, capsys):
    root = _pipeline_project(tmp_path, with_registry=False)
    table = _pipelines(capsys, str(root))
    assert NO_REGISTRY_GAP in table
    markdown = _pipelines(capsys, str(root), "--format", "md")
    assert NO_REGISTRY_GAP in markdown
    text = _pipelines(capsys, str(root), "--format", "json")
    data = json.loads(text)
    assert data["registry"] == [] and NO_REGISTRY_GAP in data["maturity"]["missing"]


def test_pipelines_command_honours_no_scan(tmp_path, capsys):
    root = _pipeline_project(tmp_path, with_registry=True)
    # Not scanned: the new store holds no registry yet, so there is no evidence to show.
    text = _pipelines(capsys, str(root), "--format", "json", "--no-scan")
    assert json.loads(text)["registry"] == []
    text = _pipelines(capsys, str(root), "--format", "json", "--scan")
    assert len(json.loads(text)["registry"]) == 2
    # The store now holds it: --no-scan reads it without importing again.
    text = _pipelines(capsys, str(root), "--format", "json", "--no-scan")
    assert EVIDENCE in json.loads(text)["maturity"]["evidence"]


def test_a_hostile_model_name_in_the_register_cell_is_inert(tmp_path, capsys):
    # GTO reads artifact names from artifacts.yaml (and lists them before any version): any
    # text, escape sequences and markup included.
    import subprocess

    root = tmp_path / "repo"
    root.mkdir()
    name = "evil\x1b[31mred[bold]x\u202e"
    (root / "artifacts.yaml").write_text(
        json.dumps({name: {"type": "model", "path": "m.pkl"}}), encoding="utf-8"
    )
    (root / "dvc.yaml").write_text("stages:\n  train:\n    cmd: python train.py\n", "utf-8")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "project"], cwd=root, check=True)
    for fmt in ("table", "md"):
        out = _pipelines(capsys, str(root), "--format", fmt)
        assert "no register stage; registry: evil" in out
        assert "\x1b" not in out and "\u202e" not in out

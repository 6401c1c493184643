"""Declarative Jenkinsfiles read into the stage graph: stages in order, parallel fan-out and
fan-in, nested stages, a matrix, post actions; scripted pipelines said to be unread."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

from mltop.core.cli.pipelines import pipelines_command
from mltop.core.pipelines.detect import discover, parse_file
from mltop.core.pipelines.model import Phase
from mltop.core.pipelines.overview import build_overview
from mltop.core.pipelines.phases import assign_phases

HERE = Path(__file__).resolve().parent / "pipelines" / "jenkins"


def test_declarative_stages_parallel_matrix_and_post_form_one_graph() -> None:
    pipeline = parse_file(HERE / "declarative/Jenkinsfile")
    assert pipeline.format == "jenkins" and pipeline.kind == "devops"
    assert pipeline.problems == ()
    assert [s.id for s in pipeline.stages] == [
        "Checkout",
        "Lint",
        "Unit",
        "Integration",
        "Cross-platform",
        "Train model",
        "Image",
        "Deploy",
        "post",
    ]
    edges = pipeline.edge_pairs()
    # the parallel block fans out after Lint and fans in before the next stage
    assert {("Lint", "Unit"), ("Lint", "Integration")} <= edges
    assert {("Unit", "Cross-platform"), ("Integration", "Cross-platform")} <= edges
    assert ("Deploy", "post") in edges and len(edges) == 9
    unit = pipeline.stage("Unit")
    assert unit is not None and unit.group == "Tests"
    assert "python -m pytest tests/unit --junitxml=reports/unit.xml" in unit.commands[0]
    assert unit.images == ("python:3.11-slim",)
    integration = pipeline.stage("Integration")
    assert integration is not None and integration.commands == ("tox -e integration",)
    matrix = pipeline.stage("Cross-platform")
    assert matrix is not None and matrix.matrix is not None
    assert matrix.matrix.combinations == 6
    assert matrix.matrix.axes == (("PLATFORM", 3), ("PYTHON", 2))
    post = pipeline.stage("post")
    assert post is not None and post.name == "post (always, failure)"
    assert post.commands[0] == "archiveArtifacts artifacts: 'reports/**', allowEmptyArchive: true"
    assert [(r.kind, r.target) for r in pipeline.references] == [("shared library", "shared-ci@v2")]
    # neither `when` conditions nor the environment block are steps
    assert not any("branch" in c or "REGISTRY =" in c for s in pipeline.stages for c in s.commands)


def test_jenkins_stages_get_phases_from_names_and_steps() -> None:
    pipeline = assign_phases(parse_file(HERE / "declarative/Jenkinsfile"))
    phases = {s.id: s.phase for s in pipeline.stages}
    assert phases == {
        "Checkout": Phase.SOURCE,
        "Lint": Phase.BUILD,
        "Unit": Phase.TEST,
        "Integration": Phase.TEST,
        "Cross-platform": Phase.TEST,
        "Train model": Phase.TEST,
        "Image": Phase.PACKAGE,
        "Deploy": Phase.DEPLOY,
        "post": None,
    }
    image = pipeline.stage("Image")
    assert image is not None and "docker.build(" in image.phase_reason


def test_a_scripted_pipeline_says_it_is_not_read() -> None:
    path = HERE / "scripted/Jenkinsfile"
    pipeline = parse_file(path)
    assert pipeline.stages == ()
    assert pipeline.problems == (
        f"{path}: a scripted pipeline (node {{ ... }}) is not read; only declarative "
        "pipelines (pipeline { stages { ... } }) are",
    )


def test_a_jenkinsfile_is_found_and_makes_its_folder_a_repository(tmp_path: Path) -> None:
    shutil.copy(HERE / "declarative/Jenkinsfile", tmp_path / "Jenkinsfile")
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml/dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python train.py\n  evaluate:\n    cmd: python eval.py\n",
        encoding="utf-8",
    )
    assert [(p.name, fmt) for p, fmt in discover(tmp_path)] == [
        ("Jenkinsfile", "jenkins"),
        ("dvc.yaml", "dvc"),
    ]
    overview = build_overview(tmp_path)
    assert overview.repository is not None and overview.repository.marker == "Jenkinsfile"
    assert overview.comparison.maturity.level == 2  # the Jenkins stage runs `dvc repro`
    out = StringIO()
    assert pipelines_command(tmp_path, "table", out=out) == 0
    assert "DevOps: Jenkinsfile" in out.getvalue()


def test_broken_jenkinsfiles_are_one_line_problems(tmp_path: Path) -> None:
    deep = tmp_path / "deep" / "Jenkinsfile"
    deep.parent.mkdir()
    deep.write_text("pipeline " + "{ " * 5000, encoding="utf-8")
    binary = tmp_path / "bin" / "Jenkinsfile"
    binary.parent.mkdir()
    binary.write_bytes(b"pipeline { stages { \xff\xfe } }")
    cut = tmp_path / "cut" / "Jenkinsfile"
    cut.parent.mkdir()
    cut.write_text("pipeline {\n  stages {\n    stage('a') { steps { sh 'make", encoding="utf-8")
    deep_problem = parse_file(deep).problems
    assert deep_problem == (f"{deep}: blocks nested more than 200 deep",)
    assert parse_file(binary).problems == (f"{binary}: not UTF-8 text (byte 20)",)
    truncated = parse_file(cut)
    assert [s.id for s in truncated.stages] == ["a"]  # read as far as it goes
    overview = build_overview(tmp_path)
    assert len(overview.problems) == 2
    assert all("\n" not in p for p in overview.problems)

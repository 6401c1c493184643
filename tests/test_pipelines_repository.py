"""A repository is read as a whole: every workflow on the DevOps side, every ML pipeline on the
MLOps side, and a folder of several repositories split by repository root.

The repositories are real git repositories made in tmp folders, with workflows written the way
GitHub's own starter templates write them (a job named ``build`` that runs pytest)."""

from __future__ import annotations

import json
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from helpers.pipelines import write_files

from mltop.core.cli.pipelines import pipelines_command
from mltop.core.pipelines.model import Phase
from mltop.core.pipelines.overview import build_overview

HERE = Path(__file__).resolve().parent / "pipelines"

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

# GitHub's "Python application" starter workflow: its only job is called build and runs pytest
PYTHON_APP = """\
name: Python application
on:
  push:
    branches: [ "main" ]
  pull_request:
    branches: [ "main" ]
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
    - uses: actions/checkout@v4
    - name: Set up Python 3.10
      uses: actions/setup-python@v3
      with:
        python-version: "3.10"
    - name: Install dependencies
      run: |
        python -m pip install --upgrade pip
        pip install flake8 pytest
        if [ -f requirements.txt ]; then pip install -r requirements.txt; fi
    - name: Test with pytest
      run: |
        python -m pytest
"""
LINT = """\
name: lint
on: [push, pull_request]
jobs:
  build-test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: pip install ruff mypy
      - run: ruff check .
      - run: mypy src
"""
BUILD_IMAGE = """\
name: build-image
on:
  push:
    tags: ["v*"]
jobs:
  image:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: docker build -t ghcr.io/org/app:${{ github.ref_name }} .
      - run: docker push ghcr.io/org/app:${{ github.ref_name }}
"""
BACKTEST_PLOT = """\
name: backtest plot
on:
  schedule:
    - cron: "0 6 * * 1"
jobs:
  plot:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: python scripts/backtest_plot.py --out plots/
"""
DVC_YAML = """\
stages:
  download:
    cmd: python src/download.py
    outs: [data/raw]
  sanity_check:
    cmd: python src/sanity_check.py data/raw
    deps: [data/raw]
  train:
    cmd: python -m src.train
    deps: [data/raw]
    outs: [model.pkl]
  evaluate:
    cmd: python src/evaluate.py
    deps: [model.pkl]
    metrics: [metrics.json]
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def multi_workflow_repo(root: Path) -> Path:
    return make_repo(
        root,
        {
            ".github/workflows/backtest_plot.yml": BACKTEST_PLOT,
            ".github/workflows/python-app.yml": PYTHON_APP,
            ".github/workflows/lint.yml": LINT,
            ".github/workflows/build-image.yml": BUILD_IMAGE,
            "dvc.yaml": DVC_YAML,
        },
    )


@needs_git
def test_every_workflow_of_a_repository_forms_its_devops_side(tmp_path: Path) -> None:
    repo = multi_workflow_repo(tmp_path / "repo")
    overview = build_overview(repo)
    comp = overview.comparison
    assert comp.devops is not None
    assert sorted(Path(m.path).name for m in comp.devops.members) == [
        "backtest_plot.yml",
        "build-image.yml",
        "lint.yml",
        "python-app.yml",
    ]
    rows = {r.phase: r for r in comp.rows}
    tests = {s.id for s in rows[Phase.TEST].devops}
    assert tests == {".github/workflows/python-app.yml:build"}
    assert {s.id for s in rows[Phase.BUILD].devops} == {".github/workflows/lint.yml:build-test"}
    assert {s.id for s in rows[Phase.PACKAGE].devops} == {".github/workflows/build-image.yml:image"}
    build = next(iter(rows[Phase.TEST].devops))
    assert build.origin == ".github/workflows/python-app.yml"
    assert "step: python -m pytest" in build.phase_reason
    assert "no CI job runs tests" not in comp.maturity.missing
    # the ML side reads every stage, the sanity check as verification
    assert {s.id for s in rows[Phase.VERIFY].mlops} == {"sanity_check", "evaluate"}
    assert comp.unmapped_mlops == ()
    assert overview.pairing == (
        "4 CI files and 1 ML pipeline of the repository at . (it holds .git)"
    )


@needs_git
def test_the_table_names_each_stages_file_and_the_pairing(tmp_path: Path) -> None:
    repo = multi_workflow_repo(tmp_path / "repo")
    out = StringIO()
    pipelines_command(repo, "table", out=out)
    text = out.getvalue()
    assert "DevOps: .github/workflows/ (4 files)" in text
    assert "Repository: 4 CI files and 1 ML pipeline of the repository at ." in text
    assert ".github/workflows/python-app.yml:build → test" in text
    out = StringIO()
    pipelines_command(repo, "json", out=out)
    data = json.loads(out.getvalue())
    assert data["repository"]["root"] == "."
    assert len(data["devops"]["files"]) == 4
    build = next(s for s in data["devops"]["stages"] if s["name"] == "build")
    assert build["file"] == ".github/workflows/python-app.yml"
    assert build["phase"] == "test"


@needs_git
def test_a_folder_of_repositories_is_split_and_each_pairing_says_why(tmp_path: Path) -> None:
    multi_workflow_repo(tmp_path / "alpha")
    beta = make_repo(
        tmp_path / "beta",
        {".github/workflows/deploy.yml": "on: push\njobs:\n  deploy:\n    runs-on: x\n"
         "    steps:\n      - run: kubectl apply -f k8s/\n"},
    )  # fmt: skip
    overview = build_overview(tmp_path)
    assert [r.root.name for r in overview.repositories] == ["alpha", "beta"]
    assert overview.repository is not None and overview.repository.root.name == "alpha"
    comp = overview.comparison
    assert comp.devops is not None
    assert all("beta" not in str(m.path) for m in comp.devops.members)
    other = build_overview(tmp_path, repository=beta)
    assert other.comparison.mlops is None
    assert (
        other.pairing
        == "1 CI file of the repository at beta (it holds .git); it holds no ML pipeline"
    )
    assert other.comparison.maturity.level == 0
    out = StringIO()
    pipelines_command(tmp_path, "table", out=out)
    assert "  beta: 1 CI file, 0 ML pipelines, 1 stage" in out.getvalue()


def test_unrelated_examples_without_a_repository_are_split_by_folder(tmp_path: Path) -> None:
    (tmp_path / "argo").mkdir()
    shutil.copy(HERE / "argo-nested.yaml", tmp_path / "argo" / "a.yaml")
    shutil.copytree(HERE / "sample", tmp_path / "sample")
    overview = build_overview(tmp_path)
    roots = {r.root.name: r for r in overview.repositories}
    assert set(roots) == {"argo", "sample"}
    assert roots["sample"].marker == ".github/workflows"
    assert roots["argo"].marker == ""
    assert "no repository marker" in roots["argo"].pairing(tmp_path)
    # the Argo example is not paired with the sample project's CI
    assert overview.repository is roots["sample"]
    assert overview.comparison.mlops is not None
    assert overview.comparison.mlops.format == "dvc"


@needs_git
def test_a_broken_workflow_is_one_line_and_the_rest_of_the_repository_shows(
    tmp_path: Path,
) -> None:
    repo = multi_workflow_repo(tmp_path / "repo")
    (repo / ".github/workflows/broken.yml").write_text("jobs: [\n", encoding="utf-8")
    overview = build_overview(repo)
    assert len(overview.problems) == 1
    assert overview.problems[0].startswith(str(repo / ".github/workflows/broken.yml"))
    assert overview.comparison.devops is not None
    assert len(overview.comparison.devops.members) == 4


def test_statuses_of_a_joined_ml_side_come_from_each_files_own_lock(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(HERE / "sample", root)
    fit = "stages:\n  fit:\n    cmd: python train.py\n"
    write_files(root / "nested", {"dvc.yaml": fit, "dvc.lock": "schema: '2.0'\n" + fit})
    overview = build_overview(root)
    mlops = overview.comparison.mlops
    assert mlops is not None and len(mlops.members) == 2
    statuses = overview.status_of(mlops)
    assert statuses["nested/dvc.yaml:fit"].state.value == "up to date"
    assert statuses["dvc.yaml:train"].state.value == "not run"


@needs_git
def test_a_joined_stage_box_names_the_stage_then_its_file(tmp_path: Path) -> None:
    from mltop.core.pipelines.dag_layout import stage_node

    repo = multi_workflow_repo(tmp_path / "repo")
    devops = build_overview(repo).comparison.devops
    assert devops is not None
    stage = next(s for s in devops.stages if s.name == "build")
    texts = [text for text, _style in stage_node(stage, None).lines]
    assert texts[:3] == ["build", ".github/workflows/python-app.yml", "test / train"]


def test_gitlab_local_includes_and_azure_templates_join_the_devops_side(tmp_path: Path) -> None:
    gitlab = write_files(tmp_path / "gl", {
        ".gitlab-ci.yml": (
            "stages: [lint, test]\ninclude:\n  - local: /ci/lint.yml\n"
            "  - local: ci/*.missing.yml\n  - remote: https://example.org/x.yml\n"
            "unit:\n  stage: test\n  script: [python -m pytest]\n"
        ),
        "ci/lint.yml": "ruff:\n  stage: lint\n  script: [ruff check .]\n",
    })  # fmt: skip
    (gitlab / ".git").mkdir()
    overview = build_overview(gitlab)
    devops = overview.comparison.devops
    assert devops is not None
    assert [Path(m.path).name for m in devops.members] == [".gitlab-ci.yml", "lint.yml"]
    rows = {r.phase: r for r in overview.comparison.rows}
    assert [s.id for s in rows[Phase.BUILD].devops] == ["ci/lint.yml:ruff"]
    assert overview.problems == []
    out = StringIO()
    pipelines_command(gitlab, "table", out=out)
    not_followed = out.getvalue().split("Not followed (references):")[1]
    assert "/ci/lint.yml" not in not_followed  # read, so not listed as left out
    assert "include: remote https://example.org/x.yml" in not_followed

    azure = write_files(tmp_path / "az", {
        "azure-pipelines.yml": (
            "jobs:\n- template: templates/test.yml\n- template: jobs.yml@shared\n"
        ),
        "templates/test.yml": "jobs:\n- job: pytest\n  steps:\n  - script: python -m pytest\n",
    })  # fmt: skip
    overview = build_overview(azure)
    devops = overview.comparison.devops
    assert devops is not None
    assert [Path(m.path).name for m in devops.members] == ["azure-pipelines.yml", "test.yml"]
    assert "templates/test.yml:pytest" in {s.id for s in devops.stages}

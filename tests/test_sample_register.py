"""The sample pipeline's ``register`` stage, run for real in git repositories.

The bundled sample project is copied, made a repository with the real ``git``, and its
``dvc.yaml`` stages up to ``register`` are run in order with this interpreter (as
``dvc repro`` runs them, without needing DVC installed): the pipeline trains one run of the
data set in ``params.yaml``, and ``register.py`` releases it as a GTO version. The registry is
checked with GTO's own ``gto show --json`` (installed with the test extras) and with mltop's
reading of it. The same stages in a plain folder are in test_sample_project.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from test_registry import _git
from test_sample_project import copy_project

from mltop.core.discovery import ingest
from mltop.core.registry.resolve import listings
from mltop.core.store import open_memory_store

UP_TO_REGISTER = ("prepare", "train", "evaluate", "register")


def _repository(root: Path) -> None:
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "sample project")


def _run_stages(project: Path) -> subprocess.CompletedProcess[str]:
    """The pipeline's stages up to ``register``, in order; the register stage's result."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert list(stages)[: len(UP_TO_REGISTER)] == list(UP_TO_REGISTER)
    for name in UP_TO_REGISTER[:-1]:
        done = _stage(project, *shlex.split(stages[name]["cmd"])[1:])
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
    for dep in stages["register"]["deps"]:
        assert (project / dep).exists(), f"register: dependency {dep} missing"
    assert stages["register"]["cmd"] == "python register.py"
    return _stage(project, "register.py")


def _stage(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The repository's identity comes from _git's environment; a stage needs its own.
    env = {
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def _tags(repo: Path) -> dict[str, str]:
    """{tag: the commit it points at}, every tag annotated as GTO makes them."""
    fmt = "--format=%(refname:strip=2) %(objecttype) %(*objectname)"
    out = subprocess.run(
        ["git", "for-each-ref", "refs/tags", fmt], cwd=repo, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    rows = [line.split() for line in out.splitlines()]
    assert all(kind == "tag" for _, kind, _ in rows)
    return {name: commit for name, _, commit in rows}


def _gto_show(repo: Path) -> dict[str, dict[str, object]]:
    gto = Path(sys.executable).parent / "gto"  # installed with the test extras
    shown = subprocess.run(
        [str(gto), "show", "--json"], cwd=repo, check=True, capture_output=True, text=True
    )
    return json.loads(shown.stdout)


def test_register_stage_releases_the_pipelines_run_and_never_leaves_half_its_tags(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project")
    _repository(project)
    # A tag already holding the name the release's stage assignment needs: the release's
    # version tag is made, the assignment's fails, and the version tag is taken back.
    _git(project, "tag", "digits#prod#1")
    failed = _run_stages(project)
    assert failed.returncode == 1
    assert "register: digits not released: git tag -a digits#prod#1" in failed.stderr
    assert set(_tags_of(project)) == {"digits#prod#1"}
    record = json.loads((project / "registry.json").read_text(encoding="utf-8"))
    assert "error" in record["artifacts"][0]

    _git(project, "tag", "-d", "digits#prod#1")
    done = _stage(project, "register.py")
    assert done.returncode == 0, done.stderr
    # One pipeline run of digits (params.yaml's data set): released alone, as v1.0.0 at prod.
    assert "registered digits: v1.0.0 pipeline/train-sgd" in done.stdout
    tags = _tags(project)
    assert sorted(tags) == ["digits#prod#1", "digits@v1.0.0"]
    assert tags["digits#prod#1"] == tags["digits@v1.0.0"]
    assert _gto_show(project) == {
        "digits": {
            "version": "v1.0.0",
            "stage": {"prod": "v1.0.0"},
            "registered": True,
            "active": True,
        }
    }
    record = json.loads((project / "registry.json").read_text(encoding="utf-8"))
    assert record["repository"] is True
    (digits,) = [a for a in record["artifacts"] if a["artifact"] == "digits"]
    assert [(r["version"], r["stage"], r["from_run"]) for r in digits["released"]] == [
        ("1.0.0", "prod", "pipeline/train-sgd")
    ]
    # The release is a commit of its record only, and its run was trained at that commit.
    release = json.loads((project / "releases" / "digits.json").read_text(encoding="utf-8"))
    assert release["from_run"] == "pipeline/train-sgd"
    # (the first attempt's commit and run stay, untagged: history, not a version)
    metas = sorted((project / "runs" / "release").glob("*/mltop-run.json"))
    commits = {m.parent.name: json.loads(m.read_text("utf-8"))["git_commit"] for m in metas}
    assert commits["digits-v1.0.0-2"] == tags["digits@v1.0.0"] != commits["digits-v1.0.0"]

    # Running the stage again (dvc repro after a change) leaves a released artifact alone.
    again = _stage(project, "register.py")
    assert again.returncode == 0 and "digits: already registered (digits@v1.0.0)" in again.stdout
    assert _tags(project) == tags


def _tags_of(repo: Path) -> list[str]:
    out = subprocess.run(["git", "tag"], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.split()


def test_project_in_a_subfolder_releases_gtos_path_named_artifacts_and_mltop_shows_them(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    project = copy_project(repo / "ml" / "sample")
    _repository(repo)
    done = _run_stages(project)
    assert done.returncode == 0, done.stderr
    assert "registered ml/sample:digits: v1.0.0" in done.stdout
    assert sorted(_tags(repo)) == ["ml/sample=digits#prod#1", "ml/sample=digits@v1.0.0"]
    by_gto = _gto_show(repo)
    assert by_gto == {
        "ml/sample:digits": {
            "version": "v1.0.0",
            "stage": {"prod": "v1.0.0"},
            "registered": True,
            "active": True,
        }
    }
    store = open_memory_store()
    ingest(repo, store)
    ours = {x.model.name: x for x in listings(store, versions=False)}
    # dvc.yaml declares three artifacts in ml/sample, DVC addresses them as ml/sample:NAME, and
    # the one released is listed as GTO lists it (the others: see the next test).
    assert set(ours) == set(by_gto) == {"ml/sample:digits"}
    assert ours["ml/sample:digits"].model.description == "Handwritten digit classifier " \
        "(8x8 pixels, 10 classes)"  # fmt: skip
    for name, expected in by_gto.items():
        assert f"v{ours[name].latest}" == expected["version"]
        stages = {stage: f"v{v}" for stage, v in ours[name].model.aliases}
        assert stages == expected["stage"]
    (version,) = store.model_versions("ml/sample:digits")
    assert version.uri == "models/digits.joblib" and version.aliases == ("prod",)
    # The version's run is the release trained at its commit, found under the pipeline's
    # folder although evaluate's metrics.json beside dvc.yaml looks like DVCLive's output.
    runs = {(r.experiment, r.name): r for r in store.runs() if r.source_kind == "mltop"}
    assert set(runs) == {("pipeline", "train-sgd"), ("release", "digits-v1.0.0")}
    assert version.run_id == runs[("release", "digits-v1.0.0")].id


def test_a_repository_holding_the_sample_lists_no_models_until_one_is_released(
    tmp_path: Path,
) -> None:
    """mltop's own repository holds the sample in a subfolder: its dvc.yaml declares three
    models, but nothing is tagged. ``gto show`` lists nothing (GTO reads tags and
    artifacts.yaml, never dvc.yaml), and neither does mltop; in a DVC project (``.dvc/``),
    dvc.yaml's declarations are DVC's model registry, which lists a model before its first
    version, and so does mltop, under DVC's names."""
    repo = tmp_path / "repo"
    copy_project(repo / "sample_project")
    _repository(repo)
    assert _gto_show(repo) == {}
    store = open_memory_store()
    ingest(repo, store)
    assert listings(store, versions=False) == []

    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("", encoding="utf-8")
    store = open_memory_store()
    ingest(repo, store)
    declared = {x.model.name: x.latest for x in listings(store, versions=False)}
    assert declared == {
        "sample_project:digits": None,
        "sample_project:breast-cancer": None,
        "sample_project:diabetes": None,
    }

"""GTO versions linked to the runs made at their tagged commits.

The repository is the DVC fixture (a real DVC 3 project with experiments, tests/fixtures/dvc);
GTO's tags are made on it with the real ``git tag``: a version on the baseline commit, one on an
experiment's commit, one on HEAD, one on a commit DVC made no run of. Each version's run is the
run DVC's importer made of that commit, so the Models board shows its metrics against @champion.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from test_registry import _git

from mltop.core import cli
from mltop.core.compare.directions import load_directions
from mltop.core.discovery import ingest
from mltop.core.registry.board import model_board
from mltop.core.registry.resolve import listings, resolve_ref
from mltop.core.store import open_memory_store, open_store

FIXTURES = Path(__file__).parent / "fixtures" / "dvc"
BASELINE = "41e5e79fd0c4259dc377c1b168481411e2199cee"
EXPERIMENT = "1e8c8051345b2d22b573ae5f5324ab6db45f3406"  # refs/exps/.../lr-0.05
PIPELINE_ONLY = "2bb3238"  # "Add digits pipeline": DVC made no run of it


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURES / "dvc-project.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "dvc-project"
    _git(root, "tag", "-a", "digits@v1.0.0", BASELINE, "-m", "baseline", when=1_796_000_010)
    _git(root, "tag", "-a", "digits@v1.1.0", EXPERIMENT, "-m", "lr 0.05", when=1_796_000_020)
    _git(root, "tag", "-a", "digits@v1.2.0", "HEAD", "-m", "adopted", when=1_796_000_030)
    _git(root, "tag", "-a", "digits@v0.1.0", PIPELINE_ONLY, "-m", "first", when=1_796_000_040)
    _git(root, "tag", "-a", "digits#champion#1", BASELINE, "-m", "prod", when=1_796_000_050)
    return root


def test_gto_versions_link_to_the_runs_at_their_commits(repo):
    store = open_memory_store()
    ingest(repo, store)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    head = next(r for r in store.runs() if r.native_id == sha)
    versions = {v.version: v for v in store.model_versions("digits")}
    runs = store.runs_by_id([v.run_id for v in versions.values() if v.run_id])
    assert runs[versions["1.0.0"].run_id].native_id == BASELINE
    exp = runs[versions["1.1.0"].run_id]
    assert (exp.native_id, exp.name, exp.source_kind) == (EXPERIMENT, "lr-0.05", "dvc-exp")
    assert runs[versions["1.2.0"].run_id].id == head.id
    assert versions["0.1.0"].run_id is None  # no run was made at that commit
    assert versions["0.1.0"].run_native_id.startswith(PIPELINE_ONLY)
    # `mltop diff models:/digits@champion models:/digits/1.1.0` compares these runs.
    assert resolve_ref(store, "models:/digits@champion").run_id == versions["1.0.0"].run_id
    # The model filters of the runs table find them too.
    assert {r.id for r in store.runs_by_id(store.runs_of_models("digits")).values()} == {
        versions[v].run_id for v in ("1.0.0", "1.1.0", "1.2.0")
    }


def test_models_board_shows_gto_versions_runs_metrics_against_champion(repo):
    store = open_memory_store()
    ingest(repo, store)
    (listing,) = listings(store, versions=False)
    board = model_board(store, listing, load_directions(repo))
    assert board.champion == "1.0.0"
    rows = {r.version.version: r for r in board.rows}
    assert rows["1.1.0"].run_text.startswith("lr-0.05")
    assert rows["0.1.0"].run_text == f"(no run at commit {PIPELINE_ONLY})"
    keys = [k for k, _ in board.metrics]
    assert keys
    summaries = store.summaries([rows["1.1.0"].run.id, rows["1.0.0"].run.id])
    exp, base = summaries[rows["1.1.0"].run.id], summaries[rows["1.0.0"].run.id]
    for key, cell in zip(keys, rows["1.1.0"].cells, strict=True):
        assert cell.value == exp[key].last
        assert cell.delta == pytest.approx(exp[key].last - base[key].last)


def test_models_command_json_carries_the_gto_version_commit_and_run(repo, capsys):
    assert cli.cmd_models([str(repo), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    v = next(v for v in data["versions"] if v["version"] == "1.1.0")
    assert v["run_id"] == EXPERIMENT and v["mltop_run_id"]


def test_gto_version_links_to_another_trackers_run_at_its_commit(tmp_path, monkeypatch):
    from test_registry import GTO_DVC_YAML

    from mltop.core.tracking import start_run

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "dvc.yaml").write_text(GTO_DVC_YAML)
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("")
    _git(repo, "add", "dvc.yaml", ".dvc/config")
    _git(repo, "commit", "-q", "-m", "model", when=1_796_000_000)
    _git(repo, "tag", "-a", "churn@v1.0.0", "-m", "release", when=1_796_000_010)
    # mltop's own writer records the commit it ran at (git rev-parse HEAD in the working dir).
    monkeypatch.chdir(repo)
    with start_run(repo / "runs", name="train-churn") as run:
        run.log(step=0, val_auc=0.91)
    store = open_memory_store()
    ingest(repo, store)
    (version,) = store.model_versions("churn")
    linked = store.run(version.run_id)
    assert linked is not None and linked.name == "train-churn"


def test_a_folder_no_longer_a_dvc_project_keeps_its_gto_registry_but_not_dvcs_runs(
    repo: Path, tmp_path: Path
) -> None:
    """``.dvc/`` removed, ``dvc.yaml`` kept: GTO still reads the folder, DVC's importer does not,
    so its runs go as a deleted folder's runs go; ``dvc init`` again brings them back."""
    dvc_kinds = {"dvc", "dvc-exp"}
    with open_store(tmp_path / "store-home") as store:  # a DuckDB file, kept across scans
        ingest(repo, store)
        before = {r.id for r in store.runs() if r.source_kind in dvc_kinds}
        assert before and {v.run_id for v in store.model_versions("digits")} & before

        shutil.move(repo / ".dvc", tmp_path / "dvc-config")
        ingest(repo, store)
        assert [r for r in store.runs() if r.source_kind in dvc_kinds] == []
        assert [e for e in store.experiments() if e.source_kind in dvc_kinds] == []
        versions = store.model_versions("digits")
        assert {v.version for v in versions} == {"1.0.0", "1.1.0", "1.2.0", "0.1.0"}
        assert {v.source_kind for v in versions} == {"gto"}
        assert all(v.run_id is None for v in versions)  # no run made at their commits now

        shutil.move(tmp_path / "dvc-config", repo / ".dvc")
        ingest(repo, store)
        assert {r.id for r in store.runs() if r.source_kind in dvc_kinds} == before

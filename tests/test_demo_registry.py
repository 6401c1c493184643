"""`mltop demo` registers the sample project's models with GTO tags, and mltop shows them.

The demo is real: the bundled sample project copied, made a git repository, a short sweep
trained by ``train.py`` in a subprocess, then ``register.py`` releasing the best runs with the
real ``git`` (commits and annotated tags as ``gto register``/``gto assign`` make them). The
registry is read back through core functions, ``mltop models`` and the Models screen (Pilot).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_registry import GTO_DVC_YAML, _git
from test_tui_models import _cells, _pick_model, on_models

from mltop.core import cli
from mltop.core.compare.directions import load_directions
from mltop.core.demo import prepare_demo
from mltop.core.discovery import ingest
from mltop.core.registry.board import model_board
from mltop.core.registry.resolve import listings
from mltop.core.store import open_memory_store
from mltop.core.tracking import start_run

# Two digits configurations, two epochs each: register.py releases the runner-up as v1.0.0
# (@prod) and the best as v1.1.0 (@champion); the other data sets have no runs to release.
SWEEP = ["--only", "digits/sgd-lr0.1", "--only", "digits/logreg-C1", "--epochs", "2"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logged: list[str] = []
    folder = prepare_demo(
        tmp_path_factory.mktemp("demo") / "sample_project", log=logged.append, extra_args=SWEEP
    )
    assert not [line for line in logged if "exited" in line or "failed" in line], logged
    return folder


def _tags(folder: Path) -> dict[str, str]:
    fmt = "--format=%(refname:strip=2) %(objecttype) %(*objectname)"
    out = subprocess.run(
        ["git", "for-each-ref", "refs/tags", fmt], cwd=folder, check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    rows = [line.split() for line in out.splitlines()]
    assert all(kind == "tag" for _, kind, _ in rows)  # annotated, as GTO makes them
    return {name: commit for name, _, commit in rows}


def test_demo_tags_its_releases_as_gto_does(demo: Path) -> None:
    tags = _tags(demo)
    assert sorted(tags) == ["digits#champion#2", "digits#prod#1", "digits@v1.0.0", "digits@v1.1.0"]
    assert tags["digits#prod#1"] == tags["digits@v1.0.0"]
    assert tags["digits#champion#2"] == tags["digits@v1.1.0"] != tags["digits@v1.0.0"]
    release = json.loads((demo / "releases" / "digits.json").read_text(encoding="utf-8"))
    assert release["version"] == "1.1.0" and (demo / "models" / "digits.joblib").is_file()


def test_demo_versions_link_to_the_runs_trained_at_their_commits(demo: Path) -> None:
    store = open_memory_store()
    ingest(demo, store)
    versions = {v.version: v for v in store.model_versions("digits")}
    assert set(versions) == {"1.0.0", "1.1.0"}
    assert versions["1.1.0"].aliases == ("champion",) and versions["1.0.0"].aliases == ("prod",)
    runs = store.runs_by_id([v.run_id for v in versions.values() if v.run_id])
    linked = {v: runs[versions[v].run_id] for v in versions}
    # Each version's run is the release trained at its tagged commit, with the sweep's metrics.
    for version, run in linked.items():
        assert (run.experiment, run.name) == ("release", f"digits-v{version}")
        assert run.git_commit == versions[version].run_native_id
    summaries = store.summaries([r.id for r in linked.values()])
    best, runner_up = (summaries[linked[v].id]["val_acc"].last for v in ("1.1.0", "1.0.0"))
    assert best >= runner_up
    sweep = {r.name: r for r in store.runs() if r.experiment == "digits"}
    sweep_acc = {n: store.summaries([r.id])[r.id]["val_acc"].last for n, r in sweep.items()}
    assert sorted(sweep_acc.values(), reverse=True) == [best, runner_up]
    (listing,) = [x for x in listings(store, versions=False) if x.model.name == "digits"]
    assert listing.latest == "1.1.0"
    board = model_board(store, listing, load_directions(demo))
    assert board.champion == "1.1.0" and all(row.run is not None for row in board.rows)


def test_gto_itself_reads_the_demo_registry_as_mltop_does(demo: Path) -> None:
    gto = Path(sys.executable).parent / "gto"  # installed with the test extras
    shown = subprocess.run(
        [str(gto), "show", "--json"], cwd=demo, check=True, capture_output=True, text=True
    )
    by_gto = json.loads(shown.stdout)
    store = open_memory_store()
    ingest(demo, store)
    ours = {x.model.name: x for x in listings(store, versions=False)}
    # breast-cancer and diabetes are declared in dvc.yaml but never released: GTO does not read
    # dvc.yaml, and a folder without .dvc/ is GTO's registry alone, so neither lists them.
    assert set(by_gto) == set(ours) == {"digits"}
    for name, expected in by_gto.items():
        listing = ours[name]
        assert f"v{listing.latest}" == expected["version"]
        aliases = {stage: f"v{version}" for stage, version in listing.model.aliases}
        assert aliases == expected["stage"]


def test_models_command_lists_the_demo_models(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.cmd_models([str(demo), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in data["models"]}
    assert names == {"digits"}  # the one released; the others are only declared in dvc.yaml
    digits = {v["version"]: v for v in data["versions"] if v["name"] == "digits"}
    assert digits["1.1.0"]["aliases"] == ["champion"] and digits["1.1.0"]["mltop_run_id"]


async def test_models_screen_shows_the_demo_versions_and_their_runs(
    demo: Path, tmp_path: Path
) -> None:
    async with on_models(demo, tmp_path, (80, 24)) as (_app, pilot, screen):
        models = {row[0]: row for row in _cells(screen, "#models-table")}
        assert models["digits"][1:3] == ["2", "@champion v1.1.0  @prod v1.0.0"]
        await _pick_model(pilot, screen, "digits")
        versions = _cells(screen, "#versions-table")
        assert [row[1] for row in versions] == ["v1.1.0", "v1.0.0"]
        assert all(any(c.startswith("digits-v1.") for c in row) for row in versions)


def test_a_gto_registry_needs_git_but_not_dvc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GTO reads any git repository declaring artifacts: no ``.dvc/``, so no DVC run either,
    and each version links to the run the writer logged at its tagged commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "dvc.yaml").write_text(GTO_DVC_YAML)
    monkeypatch.chdir(repo)
    names = []
    for n, (when, version) in enumerate([(1_796_000_000, "1.9.0"), (1_796_000_100, "1.10.0")]):
        (repo / "train.py").write_text(f"print({n})\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"model {version}", when=when)
        with start_run(repo / "runs", name=f"train-{version}") as run:
            run.log(step=0, val_auc=0.9 + n / 100)
        names.append(run.name)
        # Both tags in one second, as a release script makes them: the semantic order decides.
        _git(repo, "tag", "-a", f"churn@v{version}", "-m", "release", when=1_796_000_500)
    store = open_memory_store()
    ingest(repo, store)
    assert {r.source_kind for r in store.runs()} == {"mltop"}
    versions = store.model_versions("churn")
    assert [v.version for v in versions] == ["1.10.0", "1.9.0"]
    assert [store.run(v.run_id).name for v in versions] == ["train-1.10.0", "train-1.9.0"]
    (listing,) = listings(store, versions=False)
    assert listing.latest == "1.10.0"


async def test_demo_without_git_trains_and_says_why_it_has_no_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # git cannot be found
    logged: list[str] = []
    folder = prepare_demo(
        tmp_path / "sample_project",
        log=logged.append,
        extra_args=["--only", "digits/sgd-lr0.1", "--epochs", "1"],
    )
    assert "mltop demo: git is not installed, so the sample's models are not registered" in logged
    assert not (folder / ".git").exists()
    assert (folder / "runs" / "digits" / "sgd-lr0.1" / "mltop-run.json").is_file()
    async with on_models(folder, tmp_path, (80, 24)) as (_app, _pilot, screen):
        empty = str(screen.query_one("#models-empty").render())
        assert "no registered models" in empty and "GTO's git tags" in empty

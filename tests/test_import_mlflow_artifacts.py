"""TensorBoard logs that MLflow's autologging keeps in a run's artifacts are that run's charts.

MLflow's TensorFlow/Keras autologging copies the run's TensorBoard log folder to the artifact
path ``tensorboard_logs/`` (``train/`` and ``validation/`` inside, as Keras's TensorBoard
callback writes them). Here the real MLflow stores of tests/fixtures/mlflow get real event files
from tests/fixtures/tensorboard laid out that way, and a run made by MLflow itself (in a
subprocess: a real ``mlflow.db`` with its ``mlruns/`` artifact root) logs them with
``mlflow.log_artifacts``. The oracles are the TensorBoard fixture's EventAccumulator dump and
MLflow's own client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FIXTURES
from helpers.fixtures import untar
from test_import_tensorboard import _scalar
from tui_pilot import SIZE, make_app, settled, until

from mltop.core.common import tfrecord
from mltop.core.discovery import ingest
from mltop.core.entities import Run
from mltop.core.store import Store, open_memory_store
from mltop.tui.screens.runs.detail import RunDetailScreen

TB = FIXTURES / "tensorboard"
LOGGED = "train/loss/train"  # an MLflow metric named as a TensorBoard scalar will be
LOGGED_HISTORY = [(0, 5.0), (1, 6.0), (2, 7.0)]


def _extract(archive: str, dest: Path) -> Path:
    return untar(FIXTURES / "mlflow" / archive, dest)


def _oracle(run: str, tag: str) -> list[tuple[int, float]]:
    rows = json.loads((TB / "expected.json").read_text())
    return sorted((r["step"], r["value"]) for r in rows if r["run"] == run and r["tag"] == tag)


def _history(store: Store, run_id: str, key: str) -> list[tuple[int, float]]:
    history = store.history(run_id, key).to_pydict()
    return sorted(zip(history["step"], history["value"], strict=True))


def _mlflow(cwd: Path, script: str) -> str:
    """Run ``script`` with MLflow's own client in ``cwd``; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        # MLflow 3 refuses to open a file store unless asked to: this one is only counted.
        env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _mlflow_run_count(project: Path, uri: str) -> int:
    out = _mlflow(
        project,
        f"""
        from mlflow.tracking import MlflowClient
        from mlflow.entities import ViewType
        client = MlflowClient({uri!r})
        exps = client.search_experiments(view_type=ViewType.ALL)
        ids = [e.experiment_id for e in exps]
        print(len(client.search_runs(ids, run_view_type=ViewType.ALL, max_results=50000)))
        """,
    )
    return int(out.strip().splitlines()[-1])


def _tracking_uri(project: Path) -> str:
    db = project / "mlflow.db"
    return f"sqlite:///{db}" if db.exists() else (project / "mlruns").as_uri()


@pytest.mark.parametrize("archive", ["small-sqlite.tar.gz", "small-filestore.tar.gz"])
def test_autologged_tensorboard_scalars_are_the_mlflow_runs_own_metrics(
    tmp_path: Path, archive: str
) -> None:
    project = _extract(archive, tmp_path)
    artifacts = sorted(project.glob("mlruns/*/*/artifacts"))[0]
    logs = artifacts / "tensorboard_logs"
    shutil.copytree(TB / "runs" / "mlp-lr0.1", logs / "train")
    shutil.copytree(TB / "runs" / "mlp-lr0.01", logs / "validation")

    store = open_memory_store()
    report = ingest(project, store)
    assert report.problems == []
    runs = store.runs()
    assert len(runs) == _mlflow_run_count(project, _tracking_uri(project))
    assert all(r.source_kind.startswith("mlflow") for r in runs)
    (owner,) = [r for r in runs if r.native_id == artifacts.parent.name]
    for folder, fixture in (("train", "mlp-lr0.1"), ("validation", "mlp-lr0.01")):
        for tag in ("loss/train", "accuracy", "lr"):
            assert _history(store, owner.id, f"{folder}/{tag}") == _oracle(fixture, tag)
    hparams = next(p.name for p in (logs / "train").iterdir() if p.is_dir())
    key = f"train/{hparams}/hparam/accuracy"
    assert _history(store, owner.id, key) == _oracle(f"mlp-lr0.1/{hparams}", "hparam/accuracy")


@pytest.fixture(scope="module")
def mlflow_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run made by MLflow in an ``mlflow.db`` project: an MLflow metric named like one of
    the TensorBoard scalars, and the TensorBoard logs logged as its ``tensorboard_logs``."""
    project = tmp_path_factory.mktemp("made") / "project"
    project.mkdir()
    tb = project.parent / "tb"
    shutil.copytree(TB / "runs" / "mlp-lr0.1", tb / "train", ignore=shutil.ignore_patterns("1*"))
    shutil.copytree(
        TB / "runs" / "mlp-lr0.01", tb / "validation", ignore=shutil.ignore_patterns("1*")
    )
    _mlflow(
        project,
        f"""
        import mlflow
        mlflow.set_tracking_uri("sqlite:///mlflow.db")
        with mlflow.start_run(run_name="keras-fit"):
            for step in range(3):
                mlflow.log_metric({LOGGED!r}, 5.0 + step, step=step)
            mlflow.log_artifacts({str(tb)!r}, "tensorboard_logs")
        """,
    )
    return project


def _copy(made: Path, tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    shutil.copytree(made, project)
    (logs,) = project.glob("mlruns/*/*/artifacts/tensorboard_logs")
    return project, logs


def _imported(made: Path, tmp_path: Path) -> tuple[Path, Path, Store, Run]:
    """A copy of the MLflow-made project, imported: its folder, its ``tensorboard_logs``, the
    store and the one run."""
    project, logs = _copy(made, tmp_path)
    store = open_memory_store()
    assert ingest(project, store).problems == []
    (run,) = store.runs()
    return project, logs, store, run


def test_a_tensorboard_scalar_named_like_an_mlflow_metric_keeps_apart(
    mlflow_project: Path, tmp_path: Path
) -> None:
    _, _, store, run = _imported(mlflow_project, tmp_path)
    assert run.name == "keras-fit" and run.source_kind == "mlflow-sqlite"
    assert _history(store, run.id, LOGGED) == LOGGED_HISTORY
    moved = f"tensorboard_logs/{LOGGED}"
    assert _history(store, run.id, moved) == _oracle("mlp-lr0.1", "loss/train")
    assert _history(store, run.id, "validation/loss/train") == _oracle("mlp-lr0.01", "loss/train")


def test_a_growing_event_file_is_read_from_where_it_was_left(
    mlflow_project: Path, tmp_path: Path
) -> None:
    project, logs, store, run = _imported(mlflow_project, tmp_path)
    before = store.summaries([run.id])[run.id]["validation/lr"]
    (events,) = (logs / "validation").glob("events.out.tfevents.*")
    with events.open("ab") as fh:
        fh.write(tfrecord.frame([_scalar(1.8e9 + s, 1000 + s, "lr", 0.5) for s in range(4)]))
    report = ingest(project, store)
    assert report.problems == [] and report.points_added == 4
    after = store.summaries([run.id])[run.id]["validation/lr"]
    assert (after.count, after.last, after.last_step) == (before.count + 4, 0.5, 1003)
    assert _history(store, run.id, LOGGED) == LOGGED_HISTORY


def test_a_deleted_event_file_takes_its_points_and_only_them(
    mlflow_project: Path, tmp_path: Path
) -> None:
    project, logs, store, run = _imported(mlflow_project, tmp_path)
    (events,) = (logs / "validation").glob("events.out.tfevents.*")
    events.unlink()
    assert ingest(project, store).problems == []
    keys = set(store.summaries([run.id])[run.id])
    assert not any(k.startswith("validation/") for k in keys)
    assert {LOGGED, f"tensorboard_logs/{LOGGED}", "train/lr"} <= keys
    shutil.rmtree(logs)
    ingest(project, store)
    assert set(store.summaries([run.id])[run.id]) == {LOGGED}
    assert _history(store, run.id, LOGGED) == LOGGED_HISTORY


def test_the_run_keeps_its_tensorboard_charts_when_mlflow_rereads_its_metrics(
    mlflow_project: Path, tmp_path: Path
) -> None:
    project, _, store, run = _imported(mlflow_project, tmp_path)
    _mlflow(
        project,
        f"""
        import mlflow
        mlflow.set_tracking_uri("sqlite:///mlflow.db")
        with mlflow.start_run(run_id={run.native_id!r}):
            mlflow.log_metric({LOGGED!r}, 8.0, step=3)
        """,
    )
    assert ingest(project, store).problems == []
    assert _history(store, run.id, LOGGED) == [(0, 5.0), (1, 6.0), (2, 7.0), (3, 8.0)]
    assert _history(store, run.id, "train/lr") == _oracle("mlp-lr0.1", "lr")
    assert store.summaries([run.id])[run.id]["validation/accuracy"].count == 20


async def test_the_run_detail_charts_the_tensorboard_scalars(
    mlflow_project: Path, tmp_path: Path
) -> None:
    project, _ = _copy(mlflow_project, tmp_path)
    app = make_app(project, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        assert screen.table.row_count == 1
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.details)
        keys = set(app.screen.details.metrics)
        assert {LOGGED, f"tensorboard_logs/{LOGGED}", "validation/accuracy"} <= keys
    assert app.return_code in (None, 0)

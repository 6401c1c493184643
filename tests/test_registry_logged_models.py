"""MLflow 3 logged models behind registered versions: their metrics and params, read from each
MLflow source and checked field by field against ``MlflowClient.get_logged_model``.

The stores are the fixture's, written by the real MLflow 3.17.2 (every version there was
registered from a ``models:/m-...`` logged model); the REST reader runs against a real
``mlflow server``. A version whose run was deleted by MLflow's own client then shows its logged
model's metrics on the Models board and in ``mltop models --format json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow_server
import pytest
from mlflow.tracking import MlflowClient
from test_registry import _extract

from mltop.core import cli
from mltop.core.compare.diff import Verdict
from mltop.core.compare.directions import load_directions
from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport, LoggedModel
from mltop.core.importers import mlflow_rest
from mltop.core.registry import fields
from mltop.core.registry import sync as registry_sync
from mltop.core.registry.board import model_board
from mltop.core.registry.resolve import listings
from mltop.core.store import Store, open_memory_store


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def assert_logged_models_match(
    store: Store, client: MlflowClient, *, every_value: bool = True
) -> None:
    """Every live version's logged model equals what ``client.get_logged_model`` returns."""
    kept = {model_id: m for (_, model_id), m in store.logged_models().items()}
    versions = [v for v in store.model_versions() if not v.deleted]
    ids = {fields.logged_model_id(v) for v in versions}
    assert None not in ids and set(kept) == ids
    for model_id in sorted(ids):
        mine: LoggedModel = kept[model_id]
        theirs = client.get_logged_model(model_id)
        assert mine.name == theirs.name, model_id
        assert mine.experiment_id == theirs.experiment_id, model_id
        assert mine.run_native_id == theirs.source_run_id, model_id
        assert mine.status == str(theirs.status), model_id
        assert _ms(mine.created) == theirs.creation_timestamp, model_id
        assert _ms(mine.updated) == theirs.last_updated_timestamp, model_id
        assert dict(mine.params) == theirs.params, model_id
        rows = {(m.key, m.value, m.step, m.timestamp, m.dataset_name) for m in theirs.metrics}
        assert theirs.metrics, model_id  # the fixture's models all carry metrics
        if every_value:
            assert sorted(mine.metrics) == sorted(rows), model_id
        else:
            # MLflow's FileStore hands back each metric's latest line only; mltop keeps them all.
            assert rows <= set(mine.metrics), model_id
        latest = LoggedModel(model_id, metrics=tuple(rows)).final_metrics()
        assert mine.final_metrics() == latest, model_id


def test_sqlite_store_logged_models_match_mlflow_client(tmp_path):
    root = _extract("sqlite-store.tar.gz", tmp_path / "mine")
    store = open_memory_store()
    assert ingest(root, store).problems == []
    # MLflow's client reads its own copy: it may write to a database it opens.
    theirs = _extract("sqlite-store.tar.gz", tmp_path / "theirs") / "sqlite" / "mlflow.db"
    assert_logged_models_match(store, MlflowClient(f"sqlite:///{theirs}"))


def test_file_store_logged_models_match_mlflow_client(tmp_path, monkeypatch):
    root = _extract("file-store.tar.gz", tmp_path)
    store = open_memory_store()
    assert ingest(root, store).problems == []
    uri = f"file://{root / 'filestore' / 'mlruns'}"
    # MLflow 3.17 refuses a file store without this, and reads it through the global URI.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert_logged_models_match(store, MlflowClient(uri), every_value=False)


def test_metric_logged_to_a_registered_logged_model_is_read_on_the_next_scan(tmp_path):
    root = _extract("file-store.tar.gz", tmp_path)
    store = open_memory_store()
    ingest(root, store)
    model = next(iter(store.logged_models().values()))
    mlruns = root / "filestore" / "mlruns"
    metric = mlruns / model.experiment_id / "models" / model.model_id / "metrics" / "test_auc"
    # The line MLflow's FileStore appends: timestamp value step run_id.
    metric.write_text(f"1796444999000 0.93 0 {model.run_native_id}\n")
    ingest(root, store)
    again = next(m for m in store.logged_models().values() if m.model_id == model.model_id)
    assert again.final_metrics()["test_auc"] == 0.93


def test_damaged_logged_model_metric_is_one_line_and_the_rest_is_read(tmp_path):
    root = _extract("file-store.tar.gz", tmp_path)
    mlruns = root / "filestore" / "mlruns"
    model = min(_kept(root).values(), key=lambda m: m.model_id)
    bad = sorted((mlruns / model.experiment_id / "models" / model.model_id / "metrics").iterdir())[
        0
    ]
    bad.write_text("1796444999000 not-a-number 0\n")
    store = open_memory_store()
    report = ingest(root, store)
    assert [p.path for p in report.problems] == [str(bad)]
    assert "line 1" in report.problems[0].message
    kept = store.logged_models()
    assert len(kept) == 6
    damaged = next(m for m in kept.values() if m.model_id == model.model_id)
    assert bad.name not in damaged.final_metrics() and damaged.final_metrics()


def _kept(root: Path) -> dict:
    store = open_memory_store()
    ingest(root, store)
    return store.logged_models()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("logged-models-server")
    root = _extract("sqlite-store.tar.gz", work)
    with mlflow_server.mlflow_server(root / "sqlite" / "mlflow.db", work) as url:
        yield url


def test_server_logged_models_match_mlflow_client(server):
    store = open_memory_store()
    report = ImportReport()
    mlflow_rest.sync_server(store, server, report, histories=False)
    registry_sync.sync_server(store, server, report)
    assert report.problems == []
    assert_logged_models_match(store, MlflowClient(server))


def test_version_whose_run_was_deleted_shows_its_logged_model_metrics(tmp_path, capsys):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    client = MlflowClient(f"sqlite:///{root / 'sqlite' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("diabetes-regressor", "champion")
    challenger = client.get_model_version_by_alias("diabetes-regressor", "challenger")
    client.delete_run(champion.run_id)
    client.delete_run(challenger.run_id)
    store = open_memory_store()
    ingest(root, store)
    listing = next(f for f in listings(store, versions=False) if f.model.name.startswith("diab"))
    board = model_board(store, listing, load_directions(root))
    rows = {r.version.version: r for r in board.rows}
    base, new = rows[str(champion.version)], rows[str(challenger.version)]
    assert base.run is None and new.run is None
    assert new.run_text == f"logged model {new.logged.model_id[:10]}…"
    assert new.no_run == "(run deleted or not imported)"
    base_metrics = client.get_logged_model(champion.model_id or _id(champion.source)).metrics
    new_metrics = client.get_logged_model(challenger.model_id or _id(challenger.source)).metrics
    expected_base = {m.key: m.value for m in base_metrics}
    expected_new = {m.key: m.value for m in new_metrics}
    keys = [k for k, _ in board.metrics]
    assert "val_rmse" in keys
    for key, cell in zip(keys, new.cells, strict=True):
        assert cell.value == expected_new[key]
        assert cell.delta == pytest.approx(expected_new[key] - expected_base[key])
    rmse = new.cells[keys.index("val_rmse")]
    # val_rmse is lower-is-better: the challenger's lower value is better.
    better = expected_new["val_rmse"] < expected_base["val_rmse"]
    assert rmse.verdict is (Verdict.BETTER if better else Verdict.WORSE)
    assert base.cells[keys.index("val_rmse")].verdict is Verdict.BASELINE
    # The command line carries the logged model's metrics and params for scripts.
    assert cli.cmd_models([str(root), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    listed = next(
        v
        for v in data["versions"]
        if v["name"] == "diabetes-regressor" and v["version"] == str(challenger.version)
    )
    logged = listed["logged_model"]
    assert logged["metrics"] == expected_new
    theirs = client.get_logged_model(logged["model_id"])
    assert logged["params"] == theirs.params
    assert logged["source_run_id"] == challenger.run_id
    # and the table names the logged model whose metrics stand in for the deleted run's
    assert cli.cmd_models([str(root), "--format", "md"]) == 0
    table = capsys.readouterr().out
    assert f"(run not imported) logged model {logged['model_id']}" in table


def _id(source: str) -> str:
    return source.removeprefix("models:/")


def test_logged_models_refused_by_the_server_is_one_line_and_versions_still_listed(server):
    # No real server can be made to refuse logged-models/search alone, so a scripted server
    # replays the real server's answers to the registry searches and refuses that one.
    from test_mlflow_rest_faults import reply, scripted_server

    api = f"{server}/api/2.0/mlflow"
    answers = {
        "registered-models/search": httpx.get(f"{api}/registered-models/search").content,
        "model-versions/search": httpx.get(f"{api}/model-versions/search").content,
        "experiments/search": httpx.post(
            f"{api}/experiments/search", json={"max_results": 1000}
        ).content,
    }
    refused = {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}
    with scripted_server() as fake:
        for endpoint, body in answers.items():
            fake.route(f"/api/2.0/mlflow/{endpoint}", reply(200, body))
        fake.route("/api/2.0/mlflow/logged-models/search", reply(403, refused))
        store = open_memory_store()
        report = ImportReport()
        registry_sync.sync_server(store, fake.url, report)
    (problem,) = report.problems
    assert problem.path == fake.url
    assert "logged models not read" in problem.message and "403" in problem.message
    assert "\n" not in problem.message
    assert len([v for v in store.model_versions() if not v.deleted]) == 6
    assert store.logged_models() == {}

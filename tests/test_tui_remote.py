"""The TUI reads an MLflow tracking server given with --mlflow, beside the folder's own runs."""

from __future__ import annotations

from pathlib import Path

import mlflow_server
import pytest
from conftest import write_run
from tui_pilot import SIZE, make_app, names, settled, until

mlflow = pytest.importorskip("mlflow", reason="mlflow is in the test extra")


def _fill(db: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("remote-exp")
    for name, lr in (("remote-a", 0.1), ("remote-b", 0.01)):
        run = client.create_run(exp, run_name=name)
        client.log_param(run.info.run_id, "lr", lr)
        for step in range(5):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1) + lr, step=step)
        client.set_terminated(run.info.run_id)


async def test_remote_runs_appear_next_to_local_ones(tmp_path: Path) -> None:
    work = tmp_path / "server"
    work.mkdir()
    db = work / "mlflow.db"
    _fill(db)
    root = tmp_path / "project"
    write_run(root / "runs", "local-run")
    with mlflow_server.mlflow_server(db, work) as url:
        app = make_app(root, tmp_path, mlflow_url=url)
        async with app.run_test(size=SIZE) as pilot:
            screen = await settled(pilot)
            await until(pilot, lambda: not app.ingesting and len(names(screen)) == 3, 60)
            assert sorted(names(screen)) == ["local-run", "remote-a", "remote-b"]
            assert app.store is not None
            (remote,) = [r for r in app.store.runs() if r.name == "remote-a"]
            assert remote.source_kind == "mlflow-server"
            assert app.store.point_count(remote.id) == 5  # histories came in the second phase


async def test_an_unreachable_server_is_one_problem_and_local_runs_still_show(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    write_run(root / "runs", "local-run")
    url = f"http://127.0.0.1:{mlflow_server.free_port()}"
    app = make_app(root, tmp_path, mlflow_url=url)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        await until(pilot, lambda: app.last_report is not None and not app.ingesting, 60)
        assert names(screen) == ["local-run"]
        problems = [str(p) for p in app.last_report.problems]
        assert len(problems) == 1 and problems[0].startswith(url)

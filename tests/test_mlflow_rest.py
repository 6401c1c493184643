"""The MLflow REST importer against a real ``mlflow server``, checked against MLflow's own client.

One server per session, over a SQLite store filled through MLflow's own client while the server
boots: several experiments (one deleted), 300 runs in every status, nested runs, a deleted run,
NaN and infinite values, a key with a slash and non-ASCII text, one metric of 30,000 points
(longer than one page of the history endpoint), and a run that keeps logging from a thread while
the tests run. The oracle is ``MlflowClient.search_runs`` / ``get_metric_history`` over REST.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow  # noqa: F401  (a test dependency: the `test` extra installs it)
import mlflow_server
import pytest
from mlflow.entities import Metric, Param, ViewType
from mlflow.tracking import MlflowClient

from mltop.core import cli
from mltop.core.entities import ImportReport, stable_id
from mltop.core.importers import mlflow_rest
from mltop.core.store import Store, open_memory_store

# MLflow's own SQL store, used in-process to fill the server's database, warns about itself.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")

BASE_MS = 1_767_225_600_000
KEYS = ("loss", "acc", "val/acc ü")
STEPS = 20
N_RUNS = 300
LONG_POINTS = 30_000
GIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Live:
    """A run that logs one point every few milliseconds until stopped."""

    client: MlflowClient
    run_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    logged: int = 0
    thread: threading.Thread | None = None

    def loop(self) -> None:
        step = 0
        while not self.stop.is_set():
            self.client.log_metric(self.run_id, "live", math.sin(step / 10), step=step)
            step += 1
            self.logged = step
            self.stop.wait(0.05)

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)


@dataclass
class Server:
    url: str
    db: Path
    rest: MlflowClient
    live: Live
    long_run: str
    nan_run: str
    deleted_run: str
    parent_run: str
    changed_run: str
    doomed_exp: str


def _fill(uri: str) -> dict[str, str]:
    """Experiments and runs through MLflow's own client (log_batch keeps it quick)."""
    client = MlflowClient(uri)
    rng = random.Random(7)
    alpha = client.create_experiment("alpha")
    beta = client.create_experiment("beta β / with spaces")
    doomed = client.create_experiment("doomed")
    out: dict[str, str] = {"doomed": doomed}
    ids: list[str] = []
    for i in range(N_RUNS):
        exp = doomed if i >= N_RUNS - 10 else (alpha if i % 2 == 0 else beta)
        start = BASE_MS + i * 1000
        tags = {"idx": str(i), "mlflow.source.git.commit": GIT, "note": "ünïcode / text"}
        if 1 <= i <= 3:
            tags["mlflow.parentRunId"] = ids[0]
        run = client.create_run(exp, start_time=start, tags=tags, run_name=f"run-{i:03d}")
        rid = run.info.run_id
        ids.append(rid)
        metrics = []
        for k, key in enumerate(KEYS):
            for step in range(STEPS):
                value = rng.random() + k
                if i == 9 and key == "loss":
                    value = [value, math.inf, -math.inf][step % 3] if step < STEPS - 1 else math.nan
                metrics.append(Metric(key, value, start + step * 10, step))
        params = [
            Param("lr", str(10 ** -rng.randint(1, 5))),
            Param("layers", str(i % 5)),
            Param("with space", "a b / c"),
        ]
        client.log_batch(rid, metrics=metrics, params=params)
        status = {3: "FAILED", 7: "KILLED"}.get(i % 10, "FINISHED")
        client.set_terminated(rid, status, end_time=start + 500)
    long_run = client.create_run(alpha, start_time=BASE_MS + N_RUNS * 1000, run_name="long")
    lid = long_run.info.run_id
    for chunk in range(LONG_POINTS // 1000):
        client.log_batch(
            lid,
            metrics=[
                Metric("long", math.cos(s / 100), BASE_MS + s, s)
                for s in range(chunk * 1000, chunk * 1000 + 1000)
            ],
        )
    client.set_terminated(lid, "FINISHED")
    client.delete_run(ids[5])
    client.delete_experiment(doomed)
    out.update(long=lid, nan=ids[9], deleted=ids[5], parent=ids[0], changed=ids[20])
    return out


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("mlflow-server")
    db = work / "mlflow.db"
    uri = f"sqlite:///{db}"
    MlflowClient(uri).search_experiments()  # creates the schema before the server opens it
    proc, url, log = mlflow_server.start(db, work)
    with mlflow_server.running(proc):
        made = _fill(uri)  # while the server boots
        mlflow_server.wait_healthy(proc, url, log)
        rest = MlflowClient(url)
        alpha = rest.get_experiment_by_name("alpha").experiment_id
        live_run = rest.create_run(alpha, run_name="live")
        live = Live(rest, live_run.info.run_id)
        live.thread = threading.Thread(target=live.loop, daemon=True)
        live.thread.start()
        try:
            yield Server(
                url=url,
                db=db,
                rest=rest,
                live=live,
                long_run=made["long"],
                nan_run=made["nan"],
                deleted_run=made["deleted"],
                parent_run=made["parent"],
                changed_run=made["changed"],
                doomed_exp=made["doomed"],
            )
        finally:
            live.halt()


def _all_runs(server: Server) -> list:
    exps = [e.experiment_id for e in server.rest.search_experiments(view_type=ViewType.ALL)]
    return list(server.rest.search_runs(exps, run_view_type=ViewType.ALL, max_results=50_000))


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _sid(server: Server, native: str) -> str:
    return stable_id(mlflow_rest.KIND, server.url, native)


@pytest.fixture(scope="session")
def imported(server: Server) -> tuple[Store, ImportReport, mlflow_rest.MlflowRestClient]:
    store = open_memory_store()
    report = ImportReport()
    client = mlflow_rest.connect(server.url, env={})
    plan = mlflow_rest.sync_runs(store, client, report)
    mlflow_rest.import_histories(store, client, plan, report)
    assert report.problems == []
    return store, report, client


def test_runs_params_tags_and_latest_metrics_match_mlflow(server, imported):
    store, _, _ = imported
    oracle = {r.info.run_id: r for r in _all_runs(server)}
    runs = {r.native_id: r for r in store.runs() if r.source_kind == "mlflow-server"}
    assert set(runs) >= set(oracle) - {server.live.run_id}
    assert set(runs) <= set(oracle)
    params = store.params_for([r.id for r in runs.values()])
    summaries = store.summaries([r.id for r in runs.values()])
    for native, expected in oracle.items():
        if native in (server.live.run_id, server.changed_run):
            continue  # still logging, or changed by the re-sync test
        run = runs[native]
        assert run.status == expected.info.status
        assert run.name == expected.info.run_name
        assert run.start_time == expected.info.start_time / 1000
        assert run.end_time == (expected.info.end_time / 1000 if expected.info.end_time else None)
        assert params[run.id] == expected.data.params
        assert store.tags(run.id) == expected.data.tags
        latest = {k: s.last for k, s in summaries[run.id].items()}
        assert latest.keys() == expected.data.metrics.keys()
        assert all(_same(latest[k], v) for k, v in expected.data.metrics.items()), native
        assert (
            run.location
            == f"{server.url}/#/experiments/{expected.info.experiment_id}/runs/{native}"
        )
        assert run.git_commit == (GIT if native != server.long_run else None)


def test_lifecycle_parents_and_experiments(server, imported):
    store, _, _ = imported
    runs = {r.native_id: r for r in store.runs() if r.source_kind == "mlflow-server"}
    deleted = {n for n, r in runs.items() if r.lifecycle == "deleted"}
    in_doomed = {
        r.info.run_id for r in _all_runs(server) if r.info.experiment_id == server.doomed_exp
    }
    assert len(in_doomed) == 10
    assert deleted == in_doomed | {server.deleted_run}
    children = {r.native_id for r in store.children(_sid(server, server.parent_run))}
    assert len(children) == 3
    names = {e.name for e in store.experiments() if e.source_kind == "mlflow-server"}
    assert names >= {"Default", "alpha", "beta β / with spaces", "doomed"}


def test_full_histories_match_get_metric_history(server, imported):
    store, _, _ = imported
    rng = random.Random(3)
    skip = (server.live.run_id, server.changed_run)
    natives = [r.info.run_id for r in _all_runs(server) if r.info.run_id not in skip]
    sample = {server.nan_run, server.long_run, *rng.sample(natives, 12)}
    for native in sample:
        run = server.rest.get_run(native)
        for key in run.data.metrics:
            expected = sorted(
                (m.step, m.timestamp / 1000, m.value)
                for m in server.rest.get_metric_history(native, key)
            )
            got = store.history(_sid(server, native), key).to_pylist()
            got = sorted((p["step"], p["ts"], p["value"]) for p in got)
            assert len(got) == len(expected), (native, key)
            for g, e in zip(got, expected, strict=True):
                assert g[:2] == e[:2] and _same(g[2], e[2]), (native, key, g, e)
    long_history = store.history(_sid(server, server.long_run), "long")
    assert long_history.num_rows == LONG_POINTS
    values = long_history.column("value").to_pylist()
    for step in (0, 1, 12_345, 24_999, 25_000, LONG_POINTS - 1):
        assert values[step] == math.cos(step / 100)
    nan = [p["value"] for p in store.history(_sid(server, server.nan_run), "loss").to_pylist()]
    # MLflow's SQL store keeps NaN but clamps infinities to the largest finite double.
    assert math.isnan(nan[-1]) and max(nan[:-1]) == sys.float_info.max
    assert min(nan[:-1]) == -sys.float_info.max


def test_every_history_length_matches_mlflow_store(server, imported):
    store, _, _ = imported
    con = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT run_uuid, key, count(*) FROM metrics WHERE run_uuid NOT IN (?, ?) "
            "GROUP BY 1, 2",
            [server.live.run_id, server.changed_run],
        ).fetchall()
    finally:
        con.close()
    ids = {_sid(server, native): native for native, _, _ in rows}
    summaries = store.summaries(list(ids))
    got = {(ids[rid], k): s.count for rid, keys in summaries.items() for k, s in keys.items()}
    assert got == {(native, key): n for native, key, n in rows}


def test_public_history_endpoint_pages_through_a_long_history(server):
    client = mlflow_rest.connect(server.url, env={}, use_bulk=False)
    points = client.metric_history(server.long_run, "long")
    assert len(points) == LONG_POINTS
    assert client.http.requests == 2  # 25,000 + 5,000


def test_table_lands_before_histories(server):
    store = open_memory_store()
    report = ImportReport()
    client = mlflow_rest.connect(server.url, env={})
    plan = mlflow_rest.sync_runs(store, client, report)
    long_id = _sid(server, server.long_run)
    summary = store.summaries([long_id])[long_id]["long"]
    assert summary.count == 1 and summary.last == math.cos((LONG_POINTS - 1) / 100)
    assert {j.native_id for j in plan.jobs} >= {server.long_run, server.nan_run}
    requests = client.http.requests
    assert requests == 2  # experiments/search and one runs/search page
    mlflow_rest.import_histories(store, client, plan, report)
    assert store.summaries([long_id])[long_id]["long"].count == LONG_POINTS
    assert report.problems == []


def test_resync_fetches_only_what_changed(server):
    store = open_memory_store()
    client = mlflow_rest.connect(server.url, env={})
    mlflow_rest.sync_server(store, server.url, ImportReport(), client=client)
    before = client.http.requests
    report = ImportReport()
    plan = mlflow_rest.sync_runs(store, client, report, now=time.time() + 1)
    assert {j.native_id for j in plan.jobs} <= {server.live.run_id}
    assert plan.runs_written <= 1  # the live run, when it logged meanwhile
    mlflow_rest.import_histories(store, client, plan, report)
    assert client.http.requests - before <= 2 + 1

    server.rest.set_tag(server.changed_run, "reviewed", "yes")
    server.rest.log_metric(server.changed_run, "acc", 0.5, step=STEPS, timestamp=BASE_MS)
    plan = mlflow_rest.sync_runs(store, client, report)
    assert {j.native_id for j in plan.jobs} - {server.live.run_id} == {server.changed_run}
    mlflow_rest.import_histories(store, client, plan, report)
    changed = _sid(server, server.changed_run)
    assert store.tags(changed)["reviewed"] == "yes"
    assert store.summaries([changed])[changed]["acc"].count == STEPS + 1
    assert store.summaries([changed])[changed]["acc"].last == 0.5
    assert report.problems == []


def test_running_run_charts_grow_without_duplicates(server):
    store = open_memory_store()
    client = mlflow_rest.connect(server.url, env={})
    live = _sid(server, server.live.run_id)
    counts = []
    for _ in range(3):
        mlflow_rest.sync_server(store, server.url, ImportReport(), client=client)
        counts.append(store.summaries([live])[live]["live"].count)
        time.sleep(0.6)
    assert counts[0] < counts[1] < counts[2]
    points = store.history(live, "live").to_pylist()
    assert len({(p["step"], p["ts"]) for p in points}) == len(points)
    server_points = {
        (m.step, m.timestamp / 1000, m.value)
        for m in server.rest.get_metric_history(server.live.run_id, "live")
    }
    assert {(p["step"], p["ts"], p["value"]) for p in points} <= server_points
    assert store.run(live).status == "RUNNING"


def test_cli_ingest_and_runs_keep_credentials_out(server, tmp_path, capsys, monkeypatch):
    token, password = "tok-S3cr3t-0f-mltop", "pw-S3cr3t-0f-mltop"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with_creds = server.url.replace("http://", f"http://alice:{password}@")
    store_file = tmp_path / "store.duckdb"
    args = ["--store", str(store_file), "--mlflow", with_creds]
    assert cli.main(["ingest", str(tmp_path), *args]) == 0
    ingest_out, ingest_err = capsys.readouterr()
    assert "mlflow-server" in ingest_out
    monkeypatch.setenv("MLFLOW_TRACKING_URI", with_creds)
    code = cli.main(["runs", str(tmp_path), "--store", str(store_file), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert {r["source"] for r in rows} == {"mlflow-server"}
    assert all(r["location"].startswith(server.url + "/#/") for r in rows)
    assert len(rows) >= N_RUNS + 1
    for secret in (token, password):
        assert all(secret not in text for text in (ingest_out, ingest_err, out, err))
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_filter_and_diff_work_on_remote_runs(server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store_file = tmp_path / "store.duckdb"
    args = ["--store", str(store_file), "--mlflow", server.url]
    code = cli.main(["runs", str(tmp_path), *args, "--json", "--filter", "params.layers = 3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(r["params"]["layers"] == "3" for r in rows)
    code = cli.main(["diff", "run-003", "run-008", "-C", str(tmp_path), "--store", str(store_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "loss" in out and "lr" in out


def test_mlflow_own_status_names_survive(server, imported):
    store, _, _ = imported
    statuses = {r.status for r in store.runs() if r.source_kind == "mlflow-server"}
    assert {"FINISHED", "FAILED", "KILLED", "RUNNING"} <= statuses

"""The MLflow REST client against a local scripted HTTP server: faults, retries, replayed bytes.

The scripted server answers each path from a list of actions (a status, a body, a delay, a
dropped connection, a truncated body), so every failure a real network or a wrong URL produces
can be staged: each must end as the right one-line message, or a successful retry, and never as
a traceback. Replayed answers are the exact bytes a real MLflow 3.17 server sent
(tests/fixtures/mlflow/rest/, see its README.md).
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest
from helpers.http import QuietHandler, serving
from helpers.mlflow_oracle import assert_run_matches_oracle

from mltop.core import cli
from mltop.core.common.httpclient import RemoteError, RetryPolicy, redact_url, retry_after_seconds
from mltop.core.entities import ImportReport, stable_id
from mltop.core.importers import mlflow_rest, mlflow_rest_client
from mltop.core.store import open_memory_store, open_store

FIXTURES = Path(__file__).parent / "fixtures" / "mlflow"
REST = FIXTURES / "rest"
API = "/api/2.0/mlflow"
BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"


def fixture_bytes(name: str) -> bytes:
    return (REST / f"{name}.json").read_bytes()


# -- the scripted server ---------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


Action = Callable[[BaseHTTPRequestHandler], None]


def reply(
    status: int = 200,
    body: bytes | Any = b"{}",
    ctype: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Action:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def act(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    return act


def hang_up() -> Action:
    """Close the connection without answering."""

    def act(h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return act


def cut_short(data: bytes) -> Action:
    """Promise more bytes than are sent, then close."""

    def act(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data) * 2))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return act


def slowly(seconds: float, then: Action) -> Action:
    def act(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        then(h)

    return act


Route = list[Action] | Callable[[Request], Action]


@dataclass
class FakeServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        # A real server's registry is on by default, and empty until a model is registered: it
        # answers its searches with {} (tests of a server without one route these to 404).
        for endpoint in ("registered-models/search", "model-versions/search"):
            self.routes.setdefault(f"{API}/{endpoint}", [reply(200, {})])

    def route(self, path: str, *actions: Action) -> None:
        """Answer ``path`` with these actions in turn, the last one from then on."""
        self.routes[path] = list(actions)

    def serve(self, path: str, answer: Callable[[Request], Action]) -> None:
        """Answer ``path`` by looking at each request."""
        self.routes[path] = answer

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        request = Request(h.command, parts.path, parse_qs(parts.query), body, dict(h.headers))
        self.requests.append(request)
        route = self.routes.get(parts.path)
        if route is None:
            reply(404, fixture_bytes("error-unknown-endpoint"), "text/html; charset=utf-8")(h)
        elif callable(route):
            route(request)(h)
        else:
            (route.pop(0) if len(route) > 1 else route[0])(h)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


@contextlib.contextmanager
def scripted_server() -> Iterator[FakeServer]:
    """A :class:`FakeServer` listening on 127.0.0.1 (a free port) until the block ends."""
    state = FakeServer()

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.handle(self)

        do_POST = do_GET

    with serving(Handler, poll=0.05) as state.url:
        yield state


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with scripted_server() as state:
        yield state


def _mltop(
    capsys: pytest.CaptureFixture[str],
    command: str,
    folder: Path,
    store: Path | str,
    url: str,
    *options: str,
) -> tuple[int, str, str]:
    """``mltop COMMAND FOLDER --store STORE --mlflow URL [OPTIONS]`` run in this process, as
    the console script runs it: its exit code, stdout and stderr."""
    code = cli.main([command, str(folder), "--store", str(store), "--mlflow", url, *options])
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class Sleeps:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(
    fake: FakeServer, *, attempts: int = 3, timeout: float = 2.0, env: dict[str, str] | None = None
) -> tuple[mlflow_rest.MlflowRestClient, Sleeps]:
    sleeps = Sleeps()
    client = mlflow_rest.connect(
        fake.url,
        env=env or {},
        retry=RetryPolicy(attempts=attempts, backoff=0.01, jitter=0.0),
        timeout=timeout,
        sleep=sleeps,
    )
    return client, sleeps


def error_of(call: Callable[[], Any]) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return info.value


EXPERIMENTS = f"{API}/experiments/search"
RUNS = f"{API}/runs/search"
HISTORY = f"{API}/metrics/get-history"


# -- retries and one-line errors -------------------------------------------------------------------


def test_server_error_then_success_is_retried(fake):
    fake.route(EXPERIMENTS, reply(500, {"error_code": "INTERNAL_ERROR"}), reply(200, {}))
    client, sleeps = client_for(fake)
    assert client.experiments() == []
    assert fake.hits(EXPERIMENTS) == 2 and len(sleeps.waits) == 1


def test_server_errors_until_the_last_attempt_give_one_line(fake):
    fake.route(EXPERIMENTS, reply(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "db"}))
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert str(error) == (
        "experiments/search: HTTP 503 Service Unavailable: TEMPORARILY_UNAVAILABLE: db "
        "after 3 attempts"
    )
    assert fake.hits(EXPERIMENTS) == 3


def test_rate_limit_waits_as_long_as_retry_after_says(fake):
    fake.route(EXPERIMENTS, reply(429, b"", headers={"Retry-After": "2"}), reply(200, {}))
    client, sleeps = client_for(fake, timeout=5.0)
    assert client.experiments() == []
    assert sleeps.waits == [2.0]


def test_rate_limit_longer_than_we_wait_is_reported_at_once(fake):
    fake.route(EXPERIMENTS, reply(429, b"", headers={"Retry-After": "3600"}))
    client, sleeps = client_for(fake)
    error = error_of(client.experiments)
    assert "rate limiting" in str(error) and "3600 s" in str(error)
    assert fake.hits(EXPERIMENTS) == 1 and sleeps.waits == []


def test_retry_after_as_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None


def test_slow_server_times_out_with_one_line_and_no_retry_past_the_deadline(fake):
    fake.route(EXPERIMENTS, slowly(1.5, reply(200, {})))
    client, _ = client_for(fake, attempts=2, timeout=0.3)
    error = error_of(client.experiments)
    assert str(error) == "experiments/search: timed out waiting for an answer (after 0.3 s)"
    assert error.fatal and fake.hits(EXPERIMENTS) == 1


def test_dropped_connection_is_retried(fake):
    fake.route(EXPERIMENTS, hang_up(), reply(200, {"experiments": []}))
    client, _ = client_for(fake)
    assert client.experiments() == []


def test_connection_always_dropped_gives_one_line(fake):
    fake.route(EXPERIMENTS, hang_up())
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert "the server closed the connection before a complete answer" in str(error)
    assert str(error).endswith("after 3 attempts")


def test_body_cut_short_gives_one_line(fake):
    fake.route(EXPERIMENTS, cut_short(fixture_bytes("small-experiments-search")[:500]))
    client, _ = client_for(fake, attempts=2)
    error = error_of(client.experiments)
    assert "closed the connection before a complete answer" in str(error)


def test_truncated_json_is_malformed_json(fake):
    fake.route(EXPERIMENTS, reply(200, fixture_bytes("small-experiments-search")[:700]))
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert str(error).startswith("experiments/search: malformed JSON in the answer (")
    assert error.kind == "bad-json" and fake.hits(EXPERIMENTS) == 1


def test_html_page_is_not_an_mlflow_server(fake):
    page = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
    fake.route(EXPERIMENTS, reply(200, page, "text/html"))
    client, _ = client_for(fake)
    assert str(error_of(client.experiments)) == (
        "experiments/search: answered with an HTML page, not MLflow's JSON "
        "(is this the MLflow tracking server's URL?)"
    )


def test_plain_text_is_not_an_mlflow_server(fake):
    fake.route(EXPERIMENTS, reply(200, b"hello world", "text/plain"))
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert "answered text/plain ('hello world'), not MLflow's JSON" in str(error)


def test_other_json_is_not_an_mlflow_answer(fake):
    fake.route(EXPERIMENTS, reply(200, {"status": "ok", "items": [1, 2]}))
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert str(error) == "experiments/search: not an MLflow answer (unexpected field 'items')"
    fake.route(EXPERIMENTS, reply(200, [1, 2, 3]))
    assert "a JSON list instead of an object" in str(error_of(client.experiments))


def test_unknown_endpoint_404_says_no_mlflow_api_here(fake):
    client, _ = client_for(fake)  # every path is the real server's HTML 404
    error = error_of(client.experiments)
    assert str(error) == (
        "experiments/search: HTTP 404 Not Found: no MLflow REST API at this URL (is it the "
        "tracking server's address, with its path prefix if it has one?)"
    )


def test_mlflow_error_json_is_quoted(fake):
    fake.route(f"{API}/runs/get", reply(404, fixture_bytes("error-runs-get-unknown-id")))
    client, _ = client_for(fake)
    error = error_of(lambda: client.get_run("0123456789abcdef0123456789abcdef"))
    assert str(error) == (
        "runs/get: HTTP 404 Not Found: RESOURCE_DOES_NOT_EXIST: Run with "
        "id=0123456789abcdef0123456789abcdef not found"
    )
    assert not error.fatal


def test_unauthorized_and_forbidden(fake):
    fake.route(EXPERIMENTS, reply(401, b"You are not authenticated.", "text/plain"))
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert "HTTP 401 Unauthorized: the server wants credentials: set MLFLOW_TRACKING_TOKEN" in str(
        error
    )
    client, _ = client_for(fake, env={"MLFLOW_TRACKING_TOKEN": "t0ken"})
    error = error_of(client.experiments)
    assert "the server refused the credentials" in str(error) and "t0ken" not in str(error)
    fake.route(EXPERIMENTS, reply(403, {"error_code": "PERMISSION_DENIED", "message": "no"}))
    error = error_of(client.experiments)
    assert str(error) == (
        "experiments/search: HTTP 403 Forbidden: these credentials may not read this server "
        "(PERMISSION_DENIED: no)"
    )
    assert error.fatal and fake.hits(EXPERIMENTS) == 3  # never retried


def test_connection_refused_gives_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = mlflow_rest.connect(
        f"http://127.0.0.1:{port}", env={}, retry=RetryPolicy(2, 0, 0), sleep=lambda s: None
    )
    error = error_of(client.experiments)
    assert str(error) == "experiments/search: cannot connect (connection refused) after 2 attempts"


# -- auth and settings -----------------------------------------------------------------------------


def test_auth_headers_follow_mlflow(fake):
    fake.route(EXPERIMENTS, reply(200, {}))
    client, _ = client_for(fake, env={"MLFLOW_TRACKING_TOKEN": "tok"})
    client.experiments()
    assert fake.requests[-1].headers["Authorization"] == "Bearer tok"
    env = {"MLFLOW_TRACKING_TOKEN": "tok", "MLFLOW_TRACKING_USERNAME": "u"}
    env["MLFLOW_TRACKING_PASSWORD"] = "p"
    client, _ = client_for(fake, env=env)
    client.experiments()
    assert fake.requests[-1].headers["Authorization"] == "Basic dTpw"  # basic wins, as in MLflow
    url = fake.url.replace("http://", "http://alice:s%40cret@")
    client = mlflow_rest.connect(url, env={})
    client.experiments()
    assert fake.requests[-1].headers["Authorization"] == "Basic YWxpY2U6c0BjcmV0"
    assert client.url == fake.url and "s@cret" not in repr(client.settings)


def test_credentials_file_is_read_like_mlflow(tmp_path):
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = pw\n"
    )
    settings = mlflow_rest.settings_from_env("http://h:5000", {"HOME": str(tmp_path)})
    assert settings.credentials.username == "bob" and settings.credentials.password == "pw"


def test_tls_and_transport_settings_from_mlflow_variables():
    env = {
        "MLFLOW_TRACKING_INSECURE_TLS": "true",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "7",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    }
    settings = mlflow_rest.settings_from_env("https://h/", env)
    assert settings.verify is False and settings.timeout == 7 and settings.retry.attempts == 2
    settings = mlflow_rest.settings_from_env(
        "https://h/", {"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}
    )
    assert settings.verify == "/ca.pem"
    both = {"MLFLOW_TRACKING_INSECURE_TLS": "1", "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"}
    assert error_of(lambda: mlflow_rest.settings_from_env("https://h", both)).kind == "config"


def test_urls_are_canonical_and_without_credentials():
    assert mlflow_rest.normalize_url("HTTPS://u:p@Example.COM:8443/mlflow/?x=1#f") == (
        "https://example.com:8443/mlflow",
        "u",
        "p",
    )
    assert redact_url("http://u:p@h:1/x") == "http://h:1/x"
    assert mlflow_rest.urls_from_env({"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}) == []
    assert mlflow_rest.urls_from_env({"MLFLOW_TRACKING_URI": "http://h:5000"}) == ["http://h:5000"]
    assert error_of(lambda: mlflow_rest.normalize_url("file:///tmp/mlruns")).kind == "config"
    assert mlflow_rest.scrub("git+https://oauth2:tok@gitlab.com/x.git") == (
        "git+https://gitlab.com/x.git"
    )


# -- replayed real answers -------------------------------------------------------------------------


def _history_route(pages: dict[tuple[str, str], list[bytes]]) -> Callable[[Request], Action]:
    def route(request: Request) -> Action:
        key = (request.query["run_id"][0], request.query["metric_key"][0])
        assert request.query["max_results"] == [str(mlflow_rest.HISTORY_PAGE)]
        token = request.query.get("page_token", [None])[0]
        index = 0 if token is None else int(token)
        body = pages[key][index]
        if index + 1 < len(pages[key]):  # the real pages carry the server's own tokens
            data = json.loads(body)
            data["next_page_token"] = str(index + 1)
            body = json.dumps(data).encode()
        return reply(200, body)

    return route


@pytest.fixture
def small(fake: FakeServer) -> FakeServer:
    """A server replaying the small corpus: real search answers, real histories for two runs."""
    fake.route(EXPERIMENTS, reply(200, fixture_bytes("small-experiments-search")))
    fake.route(RUNS, reply(200, fixture_bytes("small-runs-search-all")))
    fake.serve(HISTORY, _history_route({
        ("a7cd2f0f8d2b4940a78dc2297d1dae68", "train_mse"):
            [fixture_bytes("small-metrics-get-history-nan")],
        ("b62c9f74c3d8472c9ffef730744534d4", "val_accuracy"):
            [fixture_bytes("small-metrics-get-history-model-linked")],
    }))  # fmt: skip
    return fake


def _oracle() -> dict[str, Any]:
    return json.loads((FIXTURES / "small-expected.json").read_text())["stores"]["sqlite"]


def _same(a: float | None, b: Any) -> bool:
    b = float(b) if isinstance(b, str) else b
    return (a is not None and b is not None and math.isnan(a) and math.isnan(b)) or a == b


def test_replayed_small_corpus_matches_mlflow_oracle(small):
    oracle = _oracle()
    store = open_memory_store()
    report = ImportReport()
    client, _ = client_for(small)
    plan = mlflow_rest.sync_runs(store, client, report)
    assert report.problems == []
    runs = {r.native_id: r for r in store.runs()}
    assert set(runs) == {r["run_id"] for r in oracle["runs"]}
    summaries = store.summaries([r.id for r in runs.values()])
    for expected in oracle["runs"]:
        run = runs[expected["run_id"]]
        assert_run_matches_oracle(run, expected)
        assert store.params(run.id) == expected["params"]
        assert store.tags(run.id) == expected["tags"] | expected["mlflow_tags"]
        parent = expected["parent_run_id"]
        assert run.parent_id == (stable_id("mlflow-server", client.url, parent) if parent else None)
        last = {k: s.last for k, s in summaries[run.id].items()}
        assert last.keys() == expected["metrics_final"].keys()
        assert all(_same(last[k], v) for k, v in expected["metrics_final"].items())
    assert len(plan.jobs) == sum(1 for r in oracle["runs"] if r["metrics_final"])

    # Histories: the two runs whose real get-history answers are stored (no bulk endpoint here).
    wanted = {
        "a7cd2f0f8d2b4940a78dc2297d1dae68": ("train_mse",),
        "b62c9f74c3d8472c9ffef730744534d4": ("val_accuracy",),
    }
    plan.jobs = [replace(j, keys=wanted[j.native_id]) for j in plan.jobs if j.native_id in wanted]
    mlflow_rest.import_histories(store, client, plan, report)
    assert report.problems == []
    assert client.bulk is False and small.hits(BULK) >= 1
    by_id = {r["run_id"]: r for r in oracle["runs"]}
    for native, (key,) in wanted.items():
        got = store.history(stable_id("mlflow-server", client.url, native), key).to_pylist()
        expected = by_id[native]["metric_history"][key]
        assert len(got) == len(expected) == by_id[native]["metric_history_len"][key]
        for g, (step, ts, value) in zip(got, expected, strict=True):
            assert (g["step"], g["ts"]) == (step, ts / 1000) and _same(g["value"], value)


def test_runs_get_answer_reads_like_its_search_row(small):
    native = "71d3ef499959470da622156c1091bd9e"
    small.route(f"{API}/runs/get", reply(200, fixture_bytes("small-runs-get-logreg-wine")))
    client, _ = client_for(small)
    row = next(
        r
        for r in json.loads(fixture_bytes("small-runs-search-all"))["runs"]
        if r["info"]["run_id"] == native
    )
    assert mlflow_rest.parse_run(client.get_run(native)) == mlflow_rest.parse_run(row)
    assert small.requests[-1].query["run_id"] == [native]


def test_pages_of_runs_and_history_follow_tokens_to_an_empty_page(fake):
    pages = {
        None: fixture_bytes("runs-search-page1"),
        json.loads(fixture_bytes("runs-search-page1"))["next_page_token"]: fixture_bytes(
            "runs-search-page2"
        ),
    }

    def runs_route(request: Request) -> Action:
        assert request.body["max_results"] == 50_000 and request.body["run_view_type"] == "ALL"
        return reply(200, pages.get(request.body.get("page_token"), b"{}"))

    fake.route(EXPERIMENTS, reply(200, fixture_bytes("experiments-search")))
    fake.serve(RUNS, runs_route)
    full = json.loads(fixture_bytes("metrics-get-history-full"))["metrics"]
    run_id = "16f5e8ed035048f799dbb740a8c7d59e"
    fake.serve(HISTORY, _history_route({
        (run_id, "m0"): [
            fixture_bytes("metrics-get-history-page1"),
            fixture_bytes("metrics-get-history-page2"),
            json.dumps({"metrics": full[8:]}).encode(),
        ]
    }))  # fmt: skip
    client, _ = client_for(fake)
    store = open_memory_store()
    report = ImportReport()
    plan = mlflow_rest.sync_runs(store, client, report)
    assert plan.runs_seen == 6 and fake.hits(RUNS) == 3
    assert client.metric_history(run_id, "m0") == full


def test_nan_and_infinity_strings_and_empty_pages(fake):
    run = {
        "info": {"run_id": "r1", "experiment_id": "0", "status": "FINISHED", "start_time": "5"},
        "data": {
            "metrics": [{"key": "loss", "value": "NaN", "timestamp": 9, "step": 2}],
            "params": [{"key": "p", "value": ""}],
        },
    }
    fake.route(EXPERIMENTS, reply(200, {"experiments": [{"experiment_id": "0", "name": "D"}]}))
    fake.route(RUNS, reply(200, {"runs": [run]}))
    values = ["Infinity", "-Infinity", "NaN", 1.5]
    fake.route(BULK, reply(200, {"metrics": [
        {"key": "loss", "value": v, "timestamp": 9, "step": i, "run_id": "r1"}
        for i, v in enumerate(values)
    ]}))  # fmt: skip
    store = open_memory_store()
    report = ImportReport()
    client, _ = client_for(fake)
    mlflow_rest.sync_server(store, fake.url, report, client=client)
    assert report.problems == []
    rid = stable_id("mlflow-server", fake.url, "r1")
    got = store.history(rid, "loss").column("value").to_pylist()
    assert got[:2] == [math.inf, -math.inf] and math.isnan(got[2]) and got[3] == 1.5
    assert store.params(rid) == {"p": ""} and store.run(rid).start_time == 0.005


@pytest.mark.parametrize(
    ("our_cap", "bulk_status"),
    [(5, 200), (25_000, 200), (25_000, 500)],
    ids=["cut-at-the-cap", "server-with-a-smaller-cap", "bulk-fails"],
)
def test_bulk_answer_cut_short_is_completed_run_by_run(fake, monkeypatch, our_cap, bulk_status):
    monkeypatch.setattr(mlflow_rest_client, "BULK_POINTS", our_cap)
    runs = [
        {
            "info": {"run_id": f"r{i}", "experiment_id": "0", "status": "FINISHED"},
            "data": {"metrics": [{"key": "m", "value": 3.0, "timestamp": 1, "step": 3}]},
        }
        for i in range(3)
    ]
    history = {f"r{i}": [{"key": "m", "value": float(s), "timestamp": 1, "step": s} for s in
                         range(4)] for i in range(3)}  # fmt: skip

    def bulk(request: Request) -> Action:
        points = [p | {"run_id": r} for r in sorted(request.query["run_id"]) for p in history[r]]
        if bulk_status != 200:
            return reply(bulk_status, {"error_code": "INTERNAL_ERROR"})
        return reply(200, {"metrics": points[:5]})  # the server's own cap: 5 points

    def one(request: Request) -> Action:
        return reply(200, {"metrics": history[request.query["run_id"][0]]})

    fake.route(EXPERIMENTS, reply(200, {"experiments": [{"experiment_id": "0", "name": "D"}]}))
    fake.route(RUNS, reply(200, {"runs": runs}))
    fake.serve(BULK, bulk)
    fake.serve(HISTORY, one)
    store = open_memory_store()
    report = ImportReport()
    client, _ = client_for(fake, attempts=1)
    mlflow_rest.sync_server(store, fake.url, report, client=client)
    assert report.problems == []
    # Each answer completes the runs it holds whole; the rest are asked again.
    if bulk_status == 200:
        assert (fake.hits(BULK), fake.hits(HISTORY)) == (3, 0)
    else:
        assert (fake.hits(BULK), fake.hits(HISTORY)) == (1, 3)
    for i in range(3):
        rid = stable_id("mlflow-server", fake.url, f"r{i}")
        assert store.history(rid, "m").column("step").to_pylist() == [0, 1, 2, 3]


def test_bad_rows_are_skipped_and_gone_runs_removed(fake):
    good = json.loads(fixture_bytes("small-runs-search-all"))["runs"]
    fake.route(EXPERIMENTS, reply(200, fixture_bytes("small-experiments-search")))
    fake.route(RUNS, reply(200, {"runs": [{"info": {}}, {"data": 5}, *good]}))
    store = open_memory_store()
    report = ImportReport()
    client, _ = client_for(fake, attempts=1)
    plan = mlflow_rest.sync_runs(store, client, report)
    assert plan.runs_seen == 16 and store.count_runs() == 16
    assert [str(p) for p in report.problems] == [
        f"{fake.url}: runs/search: skipped a run (no run id)",
        f"{fake.url}: runs/search: skipped a run (no info object)",
    ]
    fake.route(RUNS, reply(200, {"runs": good[:10]}))
    plan = mlflow_rest.sync_runs(store, client, ImportReport())
    assert plan.runs_removed == 6 and store.count_runs() == 10
    assert plan.runs_written == 0 and len(store.file_states(client.url)) == 10


def test_failing_histories_keep_complete_runs_and_cap_problem_lines(fake):
    runs = [
        {
            "info": {"run_id": f"r{i}", "experiment_id": "0", "status": "FINISHED"},
            "data": {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 1}]},
        }
        for i in range(40)
    ]
    served = 0

    def one(request: Request) -> Action:
        nonlocal served
        served += 1
        if request.query["run_id"][0] >= "r2":
            return reply(503, b"")
        return reply(200, {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 1}]})

    fake.route(EXPERIMENTS, reply(200, {"experiments": [{"experiment_id": "0", "name": "D"}]}))
    fake.route(RUNS, reply(200, {"runs": runs}))
    fake.serve(HISTORY, one)
    client, _ = client_for(fake, attempts=1)
    client.bulk = False
    client.concurrency = 1
    store = open_memory_store()
    report = ImportReport()
    mlflow_rest.sync_server(store, fake.url, report, client=client)
    assert len(report.problems) <= mlflow_rest.MAX_RUN_PROBLEMS + 1
    assert all("\n" not in str(p) for p in report.problems)
    # r0, r1, r10..r19 sort before r2: their histories are complete and recorded as fetched.
    done = [s for s in store.file_states(client.url).values() if "hist:" in s.head and s.mtime]
    assert len(done) == 12


# -- the command line ------------------------------------------------------------------------------


def test_cli_reports_a_broken_server_in_one_line_without_traceback(fake, tmp_path, capsys):
    fake.route(EXPERIMENTS, reply(200, b"<html>login</html>", "text/html"))
    store = str(tmp_path / "s.duckdb")
    code, out, err = _mltop(capsys, "ingest", tmp_path, store, fake.url)
    assert code == 1
    assert "Traceback" not in out + err
    assert err.strip().splitlines() == [
        f"{fake.url}: experiments/search: answered with an HTML page, not MLflow's JSON "
        "(is this the MLflow tracking server's URL?)"
    ]


def test_cli_bad_url_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["runs", str(tmp_path), "--mlflow", "ftp://x/"]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err


def test_cli_server_gone_while_local_runs_still_list(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    store = str(tmp_path / "s.duckdb")
    code, out, err = _mltop(capsys, "runs", tmp_path, store, url, "--json")
    assert code == 1
    assert err.strip().splitlines() == [
        f"{url}: experiments/search: cannot connect (connection refused) after 4 attempts"
    ]
    assert len(json.loads(out)) == 1


def test_store_add_new_points_keeps_repeats_one_to_one(tmp_path):
    with open_store(tmp_path) as store:
        table = pa.table(
            {
                "run_id": ["a"] * 3,
                "key": ["k"] * 3,
                "step": [1, 1, 2],
                "ts": [None, None, 2.0],
                "value": [math.nan, math.nan, 1.0],
            }
        )
        assert store.add_new_points(table) == 3
        assert store.add_new_points(table) == 0
        assert store.add_new_points(table.slice(0, 1)) == 0
        more = pa.concat_tables([table, table.slice(2, 1)])
        assert store.add_new_points(more) == 1
        assert store.point_count("a") == 4


# -- hostile servers -------------------------------------------------------------------------------

BEYOND_INT64 = 1180591620717411303424  # 2**70: valid JSON, no int64 column can hold it


def _one_experiment(fake: FakeServer) -> None:
    fake.route(EXPERIMENTS, reply(200, {"experiments": [{"experiment_id": "0", "name": "D"}]}))


def _run(native: str, step: int, key: str = "m") -> dict[str, Any]:
    return {
        "info": {"run_id": native, "experiment_id": "0", "status": "FINISHED"},
        "data": {"metrics": [{"key": key, "value": 1.0, "timestamp": 1, "step": step}]},
    }


@pytest.mark.parametrize("command", ["runs", "ingest"])
def test_step_beyond_int64_is_a_problem_line_and_the_rest_is_imported(
    fake, tmp_path, capsys, command
):
    _one_experiment(fake)
    fake.route(RUNS, reply(200, {"runs": [_run("r1", BEYOND_INT64), _run("r2", 3)]}))
    fake.route(BULK, reply(200, {"metrics": [
        {"key": "m", "value": 0.5, "timestamp": 1, "step": 2, "run_id": "r1"},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": BEYOND_INT64, "run_id": "r1"},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": 3, "run_id": "r2"},
    ]}))  # fmt: skip
    store_path = tmp_path / "s.duckdb"
    code, out, err = _mltop(capsys, command, tmp_path, store_path, fake.url)
    assert code == 1 and "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert lines[0] == (
        f"{fake.url}: run r1 (r1): metric 'm': latest value skipped (step "
        f"{BEYOND_INT64} is beyond the 64-bit range)"
    )
    if command == "ingest":
        assert lines[1:] == [
            f"{fake.url}: run r1 (r1): metric 'm': skipped 1 point(s) whose step is beyond "
            "the 64-bit range"
        ]
    with open_store(tmp_path, store_path) as store:
        runs = {r.native_id: r for r in store.runs()}
        assert set(runs) == {"r1", "r2"}
        assert store.history(runs["r2"].id, "m").column("step").to_pylist() == [3]
        r1_steps = store.history(runs["r1"].id, "m").column("step").to_pylist()
        assert r1_steps == ([2] if command == "ingest" else [])


TOKEN = "s3cr3t-t0ken-4711"


def test_secrets_echoed_by_the_server_are_masked_in_output_and_store(
    fake, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    experiments = {"experiments": [{"experiment_id": "0", "name": f"exp-{TOKEN}"}]}
    fake.route(EXPERIMENTS, reply(200, experiments))
    run = _run("r1", 1)
    run["info"]["run_name"] = f"job-{TOKEN}"
    run["data"]["tags"] = [
        {"key": "auth", "value": f"Bearer {TOKEN}"},
        {"key": f"seen-{TOKEN}", "value": "1"},
    ]
    run["data"]["params"] = [{"key": "header", "value": f"Authorization: Bearer {TOKEN}"}]
    fake.route(RUNS, reply(200, {"runs": [run]}))
    echo = {
        "error_code": "BAD_REQUEST",
        "message": f"rejected header Authorization: Bearer {TOKEN}",
    }
    fake.route(BULK, reply(404, b"no"))
    fake.route(HISTORY, reply(400, echo))
    store_path = tmp_path / "s.duckdb"
    code, out, err = _mltop(capsys, "ingest", tmp_path, store_path, fake.url)
    assert code == 1
    assert TOKEN not in out + err
    assert "rejected header Authorization: Bearer ***" in err
    with open_store(tmp_path, store_path) as store:
        (stored,) = store.runs()
        assert stored.name == "job-***"
        assert store.tags(stored.id) == {"auth": "Bearer ***", "seen-***": "1"}
        assert stored.experiment == "exp-***"
        assert store.params(stored.id) == {"header": "Authorization: Bearer ***"}
    code = cli.main(["runs", str(tmp_path), "--store", str(store_path), "--json"])
    assert TOKEN not in "".join(capsys.readouterr())


def test_basic_credentials_are_masked_as_sent_too():
    from mltop.core.common.httpclient import Credentials

    credentials = Credentials(username="alice", password="pw")
    header = credentials.headers()["Authorization"]
    assert credentials.mask(f"got {header}; user alice password=pw; pwd stays") == (
        "got Basic ***; user alice password=***; pwd stays"
    )


def test_redirect_to_another_host_says_why_credentials_were_refused(fake, tmp_path, capsys):
    with scripted_server() as other:
        fake.route(EXPERIMENTS, reply(307, b"", headers={"Location": other.url + EXPERIMENTS}))

        def wants_auth(request: Request) -> Action:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return reply(401, b"unauthorized", "text/plain")
            return reply(200, {})

        other.serve(EXPERIMENTS, wants_auth)
        client, _ = client_for(fake, env={"MLFLOW_TRACKING_TOKEN": TOKEN})
        error = error_of(client.experiments)
        assert other.hits(EXPERIMENTS) == 1 and "Authorization" not in other.requests[0].headers
    assert str(error) == (
        f"experiments/search: HTTP 401 Unauthorized from {other.url}{EXPERIMENTS}: the server "
        "redirected there, to another host, and credentials are never sent to another host "
        "(use that address as the tracking URI if it is the right server)"
    )
    assert error.kind == "auth"


@pytest.mark.parametrize("body", [b"", b"  \n"], ids=["empty", "blank"])
def test_empty_answer_is_a_server_error_not_zero_runs(fake, tmp_path, capsys, body):
    _one_experiment(fake)
    fake.route(RUNS, reply(200, body))
    code, out, err = _mltop(capsys, "runs", tmp_path, tmp_path / "s.db", fake.url)
    assert "r1" not in out
    assert code == 1
    assert err.strip().splitlines() == [
        f"{fake.url}: runs/search: HTTP 200 with an empty body (MLflow always answers JSON): "
        "the server or a proxy in front of it failed"
    ]


def trickle(data: bytes, every: float) -> Action:
    """Send the headers, then the body one byte every ``every`` seconds (until the client goes)."""

    def act(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(len(data)):
            try:
                h.wfile.write(data[i : i + 1])
                h.wfile.flush()
            except OSError:
                return
            time.sleep(every)

    return act


def bounded(answer: Callable[[int], Action], limit: int = 50) -> Callable[[Request], Action]:
    """A route answering request number n (1-based) with ``answer(n)``, failing past ``limit``.

    A client whose paging never stops then fails the test instead of looping for ever.
    """
    served = 0

    def route(request: Request) -> Action:
        nonlocal served
        served += 1
        assert served < limit, "paging never stopped"
        return answer(served)

    return route


def _timed_cli(*argv: str) -> tuple[int, float]:
    started = time.monotonic()
    code = cli.main(list(argv))
    return code, time.monotonic() - started


def test_a_body_trickled_a_byte_at_a_time_ends_at_the_deadline(fake, tmp_path, capsys):
    # 40 bytes at 0.25 s each would take 10 s; the whole request may take 1 s.
    fake.route(
        EXPERIMENTS, trickle(json.dumps({"experiments": [{"experiment_id": "0"}]}).encode(), 0.25)
    )
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    store = str(tmp_path / "s.duckdb")
    code, took = _timed_cli(
        "runs", str(tmp_path), "--store", store, "--mlflow", fake.url, "--timeout", "1", "--json"
    )
    out, err = capsys.readouterr()
    assert code == 1 and took < 4, took
    assert err.strip().splitlines() == [
        f"{fake.url}: experiments/search: no complete answer within 1 s "
        "(the server sends too slowly)"
    ]
    assert len(json.loads(out)) == 1  # the local run still listed


def test_a_silent_history_endpoint_ends_the_import_at_the_deadline(fake, tmp_path, capsys):
    _one_experiment(fake)
    fake.route(RUNS, reply(200, {"runs": [_run("r1", 1), _run("r2", 1)]}))
    fake.route(BULK, slowly(8, reply(200, {})))
    store = str(tmp_path / "s.duckdb")
    code, took = _timed_cli(
        "ingest", str(tmp_path), "--store", store, "--mlflow", fake.url, "--timeout", "1"
    )
    _, err = capsys.readouterr()
    assert code == 1 and took < 4, took
    assert err.strip().splitlines() == [
        f"{fake.url}: histories not fetched: metrics/get-history-bulk: timed out waiting for "
        "an answer (after 1 s)"
    ]
    with open_store(tmp_path, Path(store)) as s:
        assert s.count_runs() == 2  # the runs with their latest values stay


def test_timeout_must_be_a_positive_number(tmp_path, capsys):
    assert cli.main(["ingest", str(tmp_path), "--timeout", "0"]) == 2
    assert "--timeout: must be more than 0 seconds" in capsys.readouterr().err


def test_a_repeated_page_token_stops_paging_with_a_line_and_keeps_what_was_read(
    fake, tmp_path, capsys
):
    fake.serve(
        EXPERIMENTS,
        bounded(
            lambda n: reply(
                200, {"experiments": [{"experiment_id": "0"}], "next_page_token": "again"}
            )
        ),
    )
    fake.route(RUNS, reply(200, {"runs": [_run("r1", 1)]}))
    store = str(tmp_path / "s.duckdb")
    code, out, err = _mltop(capsys, "runs", tmp_path, store, fake.url, "--json")
    assert code == 1
    assert err.strip().splitlines() == [
        f"{fake.url}: experiments/search: the server sent a next_page_token it had sent "
        "before; paging stopped after 2 pages"
    ]
    assert fake.hits(EXPERIMENTS) == 2
    assert [r["name"] for r in json.loads(out)] == ["r1"]


def test_an_endless_page_token_stops_when_pages_bring_nothing_new(fake, tmp_path, capsys):
    _one_experiment(fake)
    fake.serve(
        RUNS, bounded(lambda n: reply(200, {"runs": [_run("r1", 1)], "next_page_token": f"t{n}"}))
    )
    store_path = tmp_path / "s.duckdb"
    code, _, err = _mltop(capsys, "runs", tmp_path, store_path, fake.url)
    assert code == 1
    assert err.strip().splitlines() == [
        f"{fake.url}: runs/search: 3 pages in a row brought nothing new yet the server sent "
        "another next_page_token; paging stopped after 4 pages"
    ]
    assert fake.hits(RUNS) == 4
    with open_store(tmp_path, store_path) as s:
        assert [r.native_id for r in s.runs()] == ["r1"]


def test_a_cut_listing_removes_no_runs(fake):
    _one_experiment(fake)
    fake.route(RUNS, reply(200, {"runs": [_run("r1", 1), _run("r2", 1)]}))
    store = open_memory_store()
    client, _ = client_for(fake, attempts=1)
    mlflow_rest.sync_runs(store, client, ImportReport())
    fake.serve(
        RUNS, bounded(lambda n: reply(200, {"runs": [_run("r1", 1)], "next_page_token": "x"}))
    )
    report = ImportReport()
    plan = mlflow_rest.sync_runs(store, client, report)
    assert plan.runs_removed == 0 and store.count_runs() == 2
    assert "paging stopped" in str(report.problems[0])


def test_an_endless_history_fails_that_run_only(fake):
    page = {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 1}]}
    fake.serve(HISTORY, bounded(lambda n: reply(200, page | {"next_page_token": "more"})))
    client, _ = client_for(fake, attempts=1)
    error = error_of(lambda: client.metric_history("r1", "m"))
    assert str(error) == (
        "metrics/get-history: the server sent a next_page_token it had sent before; paging "
        "stopped after 2 pages"
    )
    assert not error.fatal and fake.hits(HISTORY) == 2


def test_a_redirect_to_a_login_page_names_where_it_led(fake):
    page = b"<!doctype html><html><body><form>Sign in</form></body></html>"
    fake.route(EXPERIMENTS, reply(302, b"", headers={"Location": "/sso/login?next=%2Fapi&s=x"}))
    fake.route("/sso/login", reply(200, page, "text/html"))
    client, _ = client_for(fake)
    error = error_of(client.experiments)
    assert str(error) == (
        f"experiments/search: redirected to {fake.url}/sso/login, which answered with an HTML "
        "page, not MLflow's JSON (a login page? give the tracking server's own address, or "
        "MLflow's credentials the proxy accepts)"
    )
    assert error.kind == "not-tracker" and fake.hits("/sso/login") == 1

"""An MLflow tracking server, read over its REST API into the same store as local runs.

``mltop --mlflow URL`` (or ``MLFLOW_TRACKING_URI=http(s)://...``) imports a server's runs with
source kind ``mlflow-server``, so filters, compare and diff treat them like local runs. The import
has two phases because a server can hold tens of thousands of runs and millions of points:

1. :func:`sync_runs` lists experiments and runs (``experiments/search``, ``runs/search`` with the
   largest page the server allows). A search page carries each run's params, tags and the latest
   value of each metric, which is all the runs table needs: those land at once, in batches of
   whole runs, the latest values as one point per metric so the summaries are right.
2. :func:`import_histories` fetches full metric histories in the background with bounded
   concurrency and fills them in, run by run. ``mltop ingest`` runs both; the TUI runs phase 2 in
   a worker so the table shows before any history arrives.

Histories come from the MLflow UI's bulk endpoint (``get-history-bulk``: one metric of up to 100
runs per request) when the server has it, which is an order of magnitude faster than one request
per (run, metric); otherwise, and for any run the bulk answer cut short, from the public
``metrics/get-history`` endpoint, paginated. The bulk answer is sorted by run id and capped at
25,000 points: every run before the last one it mentions is complete, the rest are asked again.

Re-syncing is incremental. MLflow cannot search runs by last update, so every sync lists all runs
again, but it rewrites only runs whose search row changed and re-fetches histories only for runs
whose status, end time or latest metrics changed since their histories were last fetched (and,
at most once a minute, for RUNNING runs: a point logged below the latest step changes no latest
value). MLflow histories are append-only, and the API can only send a whole history, so the store
keeps only the points it does not hold yet (:meth:`Store.add_new_points`): a training run's charts
grow without rewriting what is there. What was last synced is kept per run as a file state keyed
``mlflow+URL#run/RUN_ID``, written in the same transaction as the run.

Transport and auth follow MLflow's own client (:func:`settings_from_env`): ``MLFLOW_TRACKING_TOKEN``
(bearer), ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic; also read from
``~/.mlflow/credentials``), user and password in the URL, ``MLFLOW_TRACKING_INSECURE_TLS``,
``MLFLOW_TRACKING_SERVER_CERT_PATH``, ``MLFLOW_TRACKING_CLIENT_CERT_PATH``, and
``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``_MAX_RETRIES`` / ``_BACKOFF_FACTOR``. Credentials are
never stored nor shown: the server's URL is kept without userinfo, URLs in tags and artifact
locations lose theirs too, and the secrets themselves are masked wherever a server sends them
back (run names, params, tags, error bodies; see :meth:`Credentials.mask`).
"""

from __future__ import annotations

import configparser
import hashlib
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa

from mltop.core.common.httpclient import (
    Credentials,
    HttpClient,
    HttpSettings,
    RemoteError,
    RetryPolicy,
    split_userinfo,
)
from mltop.core.entities import FileState, ImportReport, RunRecord, Status
from mltop.core.importers import mlflow_common as common
from mltop.core.store import POINTS_SCHEMA, Store

KIND = "mlflow-server"
API = "/api/2.0/mlflow"
AJAX_API = "/ajax-api/2.0/mlflow"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

EXPERIMENTS_PAGE = 1_000
# The server's ceiling; one big page is much faster than several (offset paging re-reads).
RUNS_PAGE = 50_000
HISTORY_PAGE = 25_000
BULK_RUNS = 100  # the bulk endpoint's limit of run ids per request
BULK_POINTS = 25_000  # ... and of points per answer
DEFAULT_CONCURRENCY = 8
WRITE_BATCH_RUNS = 2_000
# Histories are written when this many points wait, or this many seconds passed, whichever first.
FLUSH_POINTS = 250_000
FLUSH_SECONDS = 1.0
RUNNING_RECHECK = 60.0
MAX_RUN_PROBLEMS = 20
# MLflow stores steps as int64; JSON can carry any integer, which no int64 column can hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# MLflow's own defaults are 120 s per read and 7 retries (minutes of waiting); fewer attempts and
# one 30 s deadline per request, retries included, suit an interactive tool: a command against a
# server that stopped answering ends within a minute. --timeout and the MLflow variables override.
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_TIMEOUT = 30.0

Progress = Callable[[str, int, int], None]

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


# -- URLs, settings, client ------------------------------------------------------------------------


def normalize_url(url: str) -> tuple[str, str | None, str | None]:
    """(canonical server URL, user, password) of a tracking URI.

    The canonical form (lower-case scheme and host, no userinfo, query, fragment or trailing
    slash; a path prefix kept) is what runs are keyed and stored by, so the same server reached
    as ``HTTP://Host:5000/`` and ``http://host:5000`` is one source.
    """
    text = url.strip()
    clean, user, password = split_userinfo(text)
    try:
        parts = urlsplit(clean)
        port = parts.port
    except ValueError as exc:
        raise RemoteError(f"bad URL {clean!r} ({exc})", "config") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RemoteError(
            f"{clean!r} is not an http(s) URL of an MLflow tracking server", "config"
        ) from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    canonical = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    return canonical, user, password


def is_server_uri(uri: str | None) -> bool:
    """True for an http(s) tracking URI (MLflow also accepts sqlite:, file:, databricks)."""
    return bool(uri) and str(uri).strip().lower().startswith(("http://", "https://"))


def urls_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The server ``MLFLOW_TRACKING_URI`` names, when it names one over http(s)."""
    env = os.environ if env is None else env
    uri = env.get(TRACKING_URI_ENV, "")
    return [uri.strip()] if is_server_uri(uri) else []


def _flag(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _env_number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    value = env.get(name)
    if value is None or not value.strip():
        return default
    try:
        return kind(value)
    except ValueError:
        raise RemoteError(f"{name}={value!r} is not a number", "config") from None


def _credentials_file(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """User and password from ``~/.mlflow/credentials`` ([mlflow] section), as MLflow reads it."""
    home = env.get("HOME")
    path = Path(home) / ".mlflow" / "credentials" if home else Path("~/.mlflow/credentials")
    path = path.expanduser()
    if not path.is_file():
        return None, None
    config = configparser.ConfigParser()
    try:
        config.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None, None
    if "mlflow" not in config:
        return None, None
    section = config["mlflow"]
    return section.get("mlflow_tracking_username"), section.get("mlflow_tracking_password")


def settings_from_env(
    url: str,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
) -> HttpSettings:
    """Connection settings for ``url`` from MLflow's environment variables.

    User and password in the URL win over the environment; otherwise basic credentials win
    over a token, as in MLflow's client.
    """
    env = os.environ if env is None else env
    base, url_user, url_password = normalize_url(url)
    user = env.get("MLFLOW_TRACKING_USERNAME") or None
    password = env.get("MLFLOW_TRACKING_PASSWORD") or None
    if not (user and password):
        file_user, file_password = _credentials_file(env)
        user = user or file_user
        password = password or file_password
    if url_user:
        user, password = url_user, url_password
    credentials = Credentials(
        token=env.get("MLFLOW_TRACKING_TOKEN") or None, username=user, password=password
    )
    insecure = _flag(env.get("MLFLOW_TRACKING_INSECURE_TLS"))
    ca_path = env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
    if insecure and ca_path:
        raise RemoteError(
            "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set; "
            "set one of them",
            "config",
        )
    verify: bool | str = False if insecure else (ca_path or True)
    if retry is None:
        retries = _env_number(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", int, DEFAULT_ATTEMPTS - 1)
        backoff = _env_number(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", float, DEFAULT_BACKOFF)
        retry = RetryPolicy(attempts=max(0, retries) + 1, backoff=max(0.0, backoff))
    if timeout is None:
        timeout = _env_number(env, "MLFLOW_HTTP_REQUEST_TIMEOUT", float, DEFAULT_TIMEOUT)
    return HttpSettings(
        base_url=base,
        credentials=credentials,
        verify=verify,
        client_cert=env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None,
        timeout=float(timeout),
        connect_timeout=min(10.0, float(timeout)),
        retry=retry,
    )


def _shape_error(what: str, detail: str) -> RemoteError:
    return RemoteError(f"{what}: not an MLflow answer ({detail})", "not-tracker")


def _object(data: Any, what: str, allowed: Iterable[str]) -> dict[str, Any]:
    """The answer as a JSON object whose keys MLflow could have sent (empty fields omitted)."""
    if not isinstance(data, dict):
        raise _shape_error(what, f"a JSON {type(data).__name__} instead of an object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _shape_error(what, f"unexpected field {unknown[0]!r}")
    return data


def _list(data: dict[str, Any], key: str, what: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise _shape_error(what, f"{key!r} is not a list")
    return value


# Pages in a row that bring nothing new, while the server still sends a next_page_token, before
# paging is called endless (a real server's pages each bring new rows; an empty page ends it).
STALE_PAGES = 3


def _next_page(
    paging: _Paging, data: dict[str, Any], what: str, new: bool, cut: list[str] | None
) -> str | None:
    """The next page's token, or None at the end; when paging stopped early, the reason goes
    to ``cut`` (a listing read in part) or is raised (without ``cut``)."""
    try:
        return paging.next(_token(data, what), new)
    except RemoteError as exc:
        if cut is None:
            raise
        cut.append(str(exc))
        return None


class _Paging:
    """Guards one paged listing against a server whose ``next_page_token`` never ends.

    Paging stops when a token comes back a second time, or when :data:`STALE_PAGES` pages in a
    row bring nothing new: either would otherwise loop for as long as the server plays along.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.pages = 0
        self._tokens: set[str] = set()
        self._stale = 0

    def next(self, token: str | None, new: bool) -> str | None:
        """The token to ask the next page with (None: done); raises when paging must stop."""
        self.pages += 1
        if token is None:
            return None
        if token in self._tokens:
            raise RemoteError(
                f"{self.what}: the server sent a next_page_token it had sent before; paging "
                f"stopped after {self.pages:,} pages",
                "paging",
            )
        self._stale = 0 if new else self._stale + 1
        if self._stale >= STALE_PAGES:
            raise RemoteError(
                f"{self.what}: {STALE_PAGES} pages in a row brought nothing new yet the server "
                f"sent another next_page_token; paging stopped after {self.pages:,} pages",
                "paging",
            )
        self._tokens.add(token)
        return token


def _token(data: dict[str, Any], what: str) -> str | None:
    token = data.get("next_page_token")
    if token in (None, ""):
        return None
    if not isinstance(token, str):
        raise _shape_error(what, "next_page_token is not a string")
    return token


def _run_id(row: Mapping[str, Any]) -> object:
    info = row.get("info")
    return info.get("run_id") or info.get("run_uuid") if isinstance(info, dict) else None


class MlflowRestClient:
    """The few MLflow REST calls mltop makes, over :class:`HttpClient`; thread-safe.

    ``bulk`` is None until the bulk history endpoint was tried, then whether the server has it.
    """

    def __init__(
        self,
        url: str,
        *,
        env: Mapping[str, str] | None = None,
        settings: HttpSettings | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        use_bulk: bool = True,
        transport: Any = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or settings_from_env(url, env, timeout=timeout, retry=retry)
        self.url = self.settings.base_url
        self.concurrency = max(1, int(concurrency))
        self.bulk: bool | None = None if use_bulk else False
        self.http = HttpClient(
            self.settings,
            max_connections=self.concurrency + 2,
            transport=transport,
            sleep=sleep,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MlflowRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def experiments(self, cut: list[str] | None = None) -> list[dict[str, Any]]:
        """Every experiment, deleted ones included (their runs are imported as deleted).

        When paging must stop (see :class:`_Paging`), the reason is appended to ``cut`` and the
        experiments read so far are returned; without ``cut`` the error is raised.
        """
        out: list[dict[str, Any]] = []
        seen: set[object] = set()
        token: str | None = None
        what = "experiments/search"
        paging = _Paging(what)
        while True:
            body: dict[str, Any] = {"max_results": EXPERIMENTS_PAGE, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            data = _object(
                self.http.post_json(f"{API}/experiments/search", body, what=what),
                what,
                ("experiments", "next_page_token"),
            )
            page = [e for e in _list(data, "experiments", what) if isinstance(e, dict)]
            out.extend(page)
            ids = {str(e.get("experiment_id")) for e in page} - seen
            seen |= ids
            token = _next_page(paging, data, what, bool(ids), cut)
            if token is None:
                return out

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        page_size: int = RUNS_PAGE,
        cut: list[str] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of runs of these experiments, deleted runs included, oldest first.

        Oldest first keeps offset paging stable while new runs are being created: they sort
        after every page already read. ``cut`` works as in :meth:`experiments`.
        """
        token: str | None = None
        what = "runs/search"
        paging = _Paging(what)
        seen: set[object] = set()
        while True:
            body: dict[str, Any] = {
                "experiment_ids": list(experiment_ids),
                "max_results": page_size,
                "run_view_type": "ALL",
                "order_by": ["attributes.start_time ASC"],
            }
            if token:
                body["page_token"] = token
            data = _object(
                self.http.post_json(f"{API}/runs/search", body, what=what),
                what,
                ("runs", "next_page_token"),
            )
            page = [r for r in _list(data, "runs", what) if isinstance(r, dict)]
            yield page
            ids = {str(_run_id(r)) for r in page} - seen
            seen |= ids
            token = _next_page(paging, data, what, bool(ids), cut)
            if token is None:
                return

    def get_run(self, run_id: str) -> dict[str, Any]:
        what = "runs/get"
        data = _object(
            self.http.get_json(f"{API}/runs/get", {"run_id": run_id}, what=what), what, ("run",)
        )
        run = data.get("run")
        if not isinstance(run, dict):
            raise _shape_error(what, "no run")
        return run

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """One metric's full history, page by page (the public, paginated endpoint)."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        what = "metrics/get-history"
        paging = _Paging(what)
        previous: list[dict[str, Any]] | None = None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
            if token:
                params["page_token"] = token
            data = _object(
                self.http.get_json(f"{API}/metrics/get-history", params, what=what),
                what,
                ("metrics", "next_page_token"),
            )
            page = [m for m in _list(data, "metrics", what) if isinstance(m, dict)]
            out.extend(page)
            token = paging.next(_token(data, what), bool(page) and page != previous)
            previous = page
            if token is None:
                return out

    def metric_history_bulk(self, run_ids: Sequence[str], key: str) -> list[dict[str, Any]] | None:
        """One metric of several runs from the UI's bulk endpoint; None if the server lacks it."""
        what = "metrics/get-history-bulk"
        params = [("run_id", r) for r in run_ids] + [
            ("metric_key", key),
            ("max_results", str(BULK_POINTS)),
        ]
        try:
            data = self.http.get_json(f"{AJAX_API}/metrics/get-history-bulk", params, what=what)  # type: ignore[arg-type]
            data = _object(data, what, ("metrics",))
        except RemoteError as exc:
            if exc.kind in ("not-tracker", "not-found", "request", "bad-json"):
                self.bulk = False
                return None
            raise
        self.bulk = True
        return [m for m in _list(data, "metrics", what) if isinstance(m, dict)]


def connect(url: str, **kwargs: Any) -> MlflowRestClient:
    """A client for ``url`` configured from the environment (see :func:`settings_from_env`)."""
    return MlflowRestClient(url, **kwargs)


# -- parsing ---------------------------------------------------------------------------------------


def as_float(value: object) -> float | None:
    """A metric value as MLflow's JSON sends it: a number, or "NaN"/"Infinity"/"-Infinity"."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return common.metric_value(float(value))
    if isinstance(value, str):
        try:
            return common.metric_value(float(value.strip()))
        except ValueError:
            return None
    return None


def as_int(value: object) -> int | None:
    """An int64 field, which proto JSON may send as a number or a string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def scrub(text: str) -> str:
    """``text`` with the user and password taken out of any URL in it."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


@dataclass(frozen=True)
class RemoteRun:
    """One run of a search page, checked and converted."""

    native_id: str
    experiment_id: str | None
    name: str | None
    status: str | None
    lifecycle: str | None
    start_ms: int | None
    end_ms: int | None
    artifact_uri: str | None
    params: tuple[tuple[str, str], ...]
    tags: dict[str, str]
    # (key, step, timestamp ms or None, value): MLflow's latest value of each metric
    latest: tuple[tuple[str, int, int | None, float], ...]
    # (key, why) of latest values that cannot be stored, e.g. a step beyond int64
    unusable: tuple[tuple[str, str], ...] = ()

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Every metric the run has, usable latest value or not (their histories are read)."""
        keys = [k for k, *_ in self.latest]
        return tuple(keys + [k for k, _ in self.unusable if k not in keys])


class BadRun(ValueError):
    """A search row that is not a run; the message names what is wrong."""


def _pairs(data: object, what: str) -> list[tuple[str, str]]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise BadRun(f"{what} is not a list")
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise BadRun(f"a {what} entry has no key")
        value = item.get("value", "")
        out.append((item["key"], value if isinstance(value, str) else str(value)))
    return out


def parse_run(obj: Mapping[str, Any]) -> RemoteRun:
    """A ``runs/search`` or ``runs/get`` run object as a :class:`RemoteRun`."""
    info = obj.get("info")
    data = obj.get("data") or {}
    if not isinstance(info, dict) or not isinstance(data, dict):
        raise BadRun("no info object")
    native = info.get("run_id") or info.get("run_uuid")
    if not isinstance(native, str) or not native:
        raise BadRun("no run id")
    latest: list[tuple[str, int, int | None, float]] = []
    unusable: list[tuple[str, str]] = []
    metrics = data.get("metrics") or []
    if not isinstance(metrics, list):
        raise BadRun("metrics is not a list")
    for m in metrics:
        if not isinstance(m, dict) or not isinstance(m.get("key"), str):
            raise BadRun("a metric has no key")
        value = as_float(m.get("value", 0.0))
        if value is None:
            raise BadRun(f"metric {m['key']!r} has no numeric value")
        step = as_int(m.get("step")) or 0
        if not INT64_MIN <= step <= INT64_MAX:
            unusable.append((m["key"], f"step {step} is beyond the 64-bit range"))
            continue
        latest.append((m["key"], step, as_int(m.get("timestamp")), value))
    exp = info.get("experiment_id")

    def text(value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    return RemoteRun(
        native_id=native,
        experiment_id=str(exp) if exp not in (None, "") else None,
        name=text(info.get("run_name")),
        status=text(info.get("status")),
        lifecycle=text(info.get("lifecycle_stage")),
        start_ms=as_int(info.get("start_time")),
        end_ms=as_int(info.get("end_time")),
        artifact_uri=text(info.get("artifact_uri")),
        params=tuple(_pairs(data.get("params"), "param")),
        tags=dict(_pairs(data.get("tags"), "tag")),
        latest=tuple(sorted(latest)),
        unusable=tuple(sorted(set(unusable))),
    )


class Points(NamedTuple):
    """One metric's parsed history, and how many points had a step no int64 can hold."""

    steps: np.ndarray  # int64
    times: np.ndarray  # float64 seconds, NaN when absent
    values: np.ndarray  # float64
    beyond_int64: int = 0


def parse_points(metrics: Sequence[Mapping[str, Any]]) -> Points:
    """The history points of one metric, as arrays.

    Values may be numbers or MLflow's "NaN"/"Infinity" strings; numpy parses both at C speed.
    A point without a usable value is dropped (counted by the caller from the lengths); a point
    whose step is beyond int64 is dropped and counted in ``beyond_int64`` for a problem line.
    """
    n = len(metrics)
    raw_steps = [as_int(m.get("step")) or 0 for m in metrics]
    try:
        steps = np.array(raw_steps, dtype=np.int64).reshape(n)
        in_range = None
    except OverflowError:
        in_range = np.array([INT64_MIN <= s <= INT64_MAX for s in raw_steps], dtype=bool)
        steps = np.array([s if ok else 0 for s, ok in zip(raw_steps, in_range, strict=True)])
        steps = steps.astype(np.int64).reshape(n)
    times = np.fromiter(
        ((t if (t := as_int(m.get("timestamp"))) is not None else np.nan) for m in metrics),
        np.float64,
        n,
    )
    raw = [m.get("value", 0.0) for m in metrics]
    try:
        values = np.array(raw, dtype=np.float64).reshape(n)
        keep = None
    except (TypeError, ValueError):
        parsed = [as_float(v) for v in raw]
        keep = np.array([v is not None for v in parsed], dtype=bool)
        values = np.array([v if v is not None else np.nan for v in parsed], dtype=np.float64)
    if in_range is not None:
        keep = in_range if keep is None else keep & in_range
    if keep is not None:
        steps, times, values = steps[keep], times[keep], values[keep]
    beyond = 0 if in_range is None else int(n - np.count_nonzero(in_range))
    return Points(steps, times / 1000.0, values, beyond)


# -- phase 1: runs ---------------------------------------------------------------------------------


def _masked(run: RemoteRun, credentials: Credentials) -> RemoteRun:
    """``run`` without the client's secrets in its name, params or tags (a server echoing them).

    Metric keys stay as sent: they name the histories to ask the server for.
    """
    if not credentials.present:
        return run
    mask = credentials.mask
    return replace(
        run,
        name=mask(run.name) if run.name else run.name,
        params=tuple((mask(k), mask(v)) for k, v in run.params),
        tags={mask(k): mask(v) for k, v in run.tags.items()},
        artifact_uri=mask(run.artifact_uri) if run.artifact_uri else run.artifact_uri,
    )


def state_path(url: str, native_id: str) -> str:
    """The pseudo-path a run's sync state is kept under in the store's file states."""
    return f"mlflow+{url}#run/{native_id}"


def _head(meta: str, hist: str) -> str:
    return f"meta:{meta} hist:{hist}"


def _parse_head(head: str) -> tuple[str, str]:
    meta = hist = ""
    for part in head.split():
        name, _, value = part.partition(":")
        if name == "meta":
            meta = value
        elif name == "hist":
            hist = value
    return meta, hist


def _digest(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:20]


def run_link(url: str, experiment_id: str | None, native_id: str) -> str:
    """The run's page in the MLflow UI: where it lives, and a link a terminal can open."""
    if experiment_id is None:
        return f"{url}/#/runs/{native_id}"
    return f"{url}/#/experiments/{experiment_id}/runs/{native_id}"


def to_record(url: str, run: RemoteRun, deleted_experiments: set[str]) -> RunRecord:
    """A remote run as a RunRecord, through the mapping shared with MLflow's local stores."""
    times = [t for _, _, t, _ in run.latest if t is not None]
    record = common.make_record(
        kind=KIND,
        source=url,
        native_id=run.native_id,
        experiment_native_id=run.experiment_id,
        name=run.name,
        status=run.status,
        lifecycle=common.lifecycle_of(run.lifecycle, run.experiment_id in deleted_experiments),
        start_ms=run.start_ms,
        end_ms=run.end_ms,
        artifact_uri=scrub(run.artifact_uri) if run.artifact_uri else None,
        tags=run.tags,
        updated=common.ms_to_s(max(times)) if times else None,
    )
    return replace(record, location=run_link(url, run.experiment_id, run.native_id), source=url)


@dataclass(frozen=True)
class HistoryJob:
    """One run whose histories phase 2 must fetch."""

    run_id: str
    native_id: str
    name: str
    keys: tuple[str, ...]
    meta: str
    hist: str
    # (key, step, timestamp ms) of each latest value: a history without it is incomplete
    latest: tuple[tuple[str, int, int | None], ...] = ()


@dataclass
class SyncPlan:
    """What :func:`sync_runs` found: the histories still to fetch, and counts."""

    url: str
    jobs: list[HistoryJob] = field(default_factory=list)
    runs_seen: int = 0
    runs_written: int = 0
    runs_removed: int = 0


@dataclass
class _Pending:
    run: RemoteRun
    record: RunRecord
    meta: str
    hist: str  # what the state records as fetched (old digest, or new when nothing to fetch)
    fetched_at: float


def _write_runs(store: Store, url: str, batch: list[_Pending], experiments: list[Any]) -> int:
    """One transaction: runs with params, tags, latest values and their sync states."""
    ids = [p.record.id for p in batch]
    # (run id, key, step, timestamp ms, value) of each latest value
    rows = [(p.record.id, *latest) for p in batch for latest in p.run.latest]
    points = pa.table(
        {
            "run_id": pa.array([r[0] for r in rows], pa.string()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "step": pa.array([r[2] for r in rows], pa.int64()),
            "ts": pa.array(
                [r[3] / 1000.0 if r[3] is not None else None for r in rows], pa.float64()
            ),
            "value": pa.array([r[4] for r in rows], pa.float64()),
        },
        schema=POINTS_SCHEMA,
    )
    states = [
        FileState(
            path=state_path(url, p.run.native_id),
            size=len(p.run.latest),
            mtime=p.fetched_at,
            inode=0,
            offset=0,
            head=_head(p.meta, p.hist),
            run_id=p.record.id,
            source=url,
        )
        for p in batch
    ]
    with store.transaction():
        if experiments:
            store.put_experiments(experiments)
        store.put_runs(
            url,
            [p.record for p in batch],
            params=[(p.record.id, k, v) for p in batch for k, v in p.run.params],
            tags=[(p.record.id, k, scrub(v)) for p in batch for k, v in p.run.tags.items()],
        )
        added = store.add_new_points(points)
        store.refresh_summaries(ids)
        store.put_files(url, states)
    return added


def sync_runs(
    store: Store,
    client: MlflowRestClient,
    report: ImportReport,
    *,
    progress: Progress | None = None,
    now: float | None = None,
) -> SyncPlan:
    """Phase 1: bring the server's runs (with latest metric values) into the store.

    Raises :class:`RemoteError` when the server cannot be read; runs already written stay (each
    batch is whole). Returns the histories phase 2 must fetch.
    """
    url = client.url
    now = time.time() if now is None else now
    plan = SyncPlan(url)
    cut: list[str] = []  # why a listing stopped early (a server whose paging never ends)
    exps = client.experiments(cut)
    exp_rows: list[common.ExperimentRow] = []
    deleted: set[str] = set()
    for e in exps:
        native = e.get("experiment_id")
        if native in (None, ""):
            continue
        native = str(native)
        exp_rows.append(
            (
                common.experiment_id(KIND, url, native),
                KIND,
                url,
                native,
                client.settings.credentials.mask(str(e.get("name") or native)),
            )
        )
        if str(e.get("lifecycle_stage", "")).lower() == common.DELETED:
            deleted.add(native)
    known = {x.id: x.name for x in store.experiments()}
    new_exps = [row for row in exp_rows if known.get(row[0]) != row[4]]

    states = store.file_states(url)
    prefix = f"mlflow+{url}#run/"
    by_native = {p[len(prefix) :]: s for p, s in states.items() if p.startswith(prefix)}
    seen: set[str] = set()
    pending: list[_Pending] = []
    bad = 0
    unusable = 0
    if progress:
        progress("mlflow runs", 0, 0)

    def flush() -> None:
        nonlocal new_exps
        if not pending and not new_exps:
            return
        added = _write_runs(store, url, pending, new_exps)
        report.add(KIND, runs=len(pending), points=added)
        plan.runs_written += len(pending)
        new_exps = []
        pending.clear()

    exp_ids = [row[3] for row in exp_rows]
    pages = client.search_runs(exp_ids, cut=cut) if exp_ids else iter(())
    for page in pages:
        for obj in page:
            try:
                run = parse_run(obj)
            except BadRun as exc:
                bad += 1
                if bad <= 3:
                    report.problem(url, f"runs/search: skipped a run ({exc})")
                continue
            if run.native_id in seen:
                continue
            seen.add(run.native_id)
            run = _masked(run, client.settings.credentials)
            record = to_record(url, run, deleted)
            for key, why in run.unusable:
                unusable += 1
                if unusable <= MAX_RUN_PROBLEMS:
                    report.problem(
                        url,
                        f"run {record.name} ({run.native_id}): metric {key!r}: latest value "
                        f"skipped ({why})",
                    )
            # ``unusable`` joins the digests only when present, so existing states stay valid.
            odd = (run.unusable,) if run.unusable else ()
            meta = _digest(record, run.params, sorted(run.tags.items()), run.latest, *odd)
            hist = _digest(record.status, run.end_ms, run.latest, *odd)
            state = by_native.get(run.native_id)
            old_meta, old_hist = _parse_head(state.head) if state else ("", "")
            fetched_at = state.mtime if state else 0.0
            if not run.metric_keys:
                # Nothing to fetch: the run's histories are complete as they are (empty).
                recorded_hist, fetch = hist, False
            else:
                recorded_hist = old_hist
                fetch = hist != old_hist or (
                    Status.parse(record.status) is Status.RUNNING
                    and now - fetched_at >= RUNNING_RECHECK
                )
            if fetch:
                plan.jobs.append(
                    HistoryJob(
                        record.id,
                        run.native_id,
                        record.name,
                        run.metric_keys,
                        meta,
                        hist,
                        tuple((k, step, ts) for k, step, ts, _ in run.latest),
                    )
                )
            if meta != old_meta or recorded_hist != old_hist:
                pending.append(_Pending(run, record, meta, recorded_hist, fetched_at))
                if len(pending) >= WRITE_BATCH_RUNS:
                    flush()
            plan.runs_seen += 1
        if progress:
            progress("mlflow runs", plan.runs_seen, plan.runs_seen)
    flush()
    if bad > 3:
        report.problem(url, f"runs/search: skipped {bad} runs in all")
    if unusable > MAX_RUN_PROBLEMS:
        report.problem(url, f"runs/search: skipped {unusable} latest values in all")
    for reason in cut:
        report.problem(url, reason)
    # A listing cut short says nothing of the runs it did not reach: none counts as gone.
    gone = [] if cut else [s for native, s in by_native.items() if native not in seen]
    if gone:
        with store.transaction():
            store.delete_runs([s.run_id for s in gone if s.run_id])
            store.delete_files([s.path for s in gone])
        plan.runs_removed = len(gone)
        report.removed_runs += len(gone)
    store.touch_sources([(KIND, url)])
    return plan


# -- phase 2: histories ----------------------------------------------------------------------------


@dataclass
class _JobState:
    job: HistoryJob
    waiting: set[str]
    parts: list[tuple[str, Points]] = field(default_factory=list)
    failed: bool = False


class _Stop(Exception):
    """A fatal remote error ended phase 2."""


def import_histories(
    store: Store,
    client: MlflowRestClient,
    plan: SyncPlan,
    report: ImportReport,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Phase 2: fetch the planned histories with bounded concurrency and fill them in.

    Runs are written whole (all their metrics in one transaction, with their sync state), as
    they complete. A run whose history cannot be read is reported and left to the next sync; a
    fatal error (server gone, credentials refused) stops the phase with one problem line.
    Returns the number of points added.
    """
    url = client.url
    jobs = [_JobState(j, set(j.keys)) for j in plan.jobs if j.keys]
    if not jobs:
        return 0
    total = len(jobs)
    done = 0
    added = 0
    failed_runs: list[str] = []
    ready: list[_JobState] = []
    ready_points = 0
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal ready_points, last_flush, added
        last_flush = time.monotonic()
        if not ready:
            return
        tables = []
        for state in ready:
            for key, (steps, times, values, _) in state.parts:
                n = len(values)
                tables.append(
                    pa.table(
                        {
                            "run_id": pa.array([state.job.run_id] * n, pa.string()),
                            "key": pa.array([key] * n, pa.string()),
                            "step": pa.array(steps, pa.int64()),
                            "ts": pa.array(times, pa.float64(), from_pandas=True),
                            "value": pa.array(values, pa.float64()),
                        },
                        schema=POINTS_SCHEMA,
                    )
                )
        points = pa.concat_tables(tables) if tables else POINTS_SCHEMA.empty_table()
        at = now()
        states = [
            FileState(
                path=state_path(url, s.job.native_id),
                size=len(s.job.keys),
                mtime=at,
                inode=0,
                offset=0,
                head=_head(s.job.meta, s.job.hist),
                run_id=s.job.run_id,
                source=url,
            )
            for s in ready
        ]
        with store.transaction():
            n_added = store.add_new_points(points)
            store.refresh_summaries([s.job.run_id for s in ready])
            store.put_files(url, states)
        added += n_added
        report.add(KIND, points=n_added)
        ready.clear()
        ready_points = 0

    def deliver(state: _JobState, key: str, points: Points) -> None:
        nonlocal done, ready_points
        if state.failed or key not in state.waiting:
            return
        if points.beyond_int64:
            report.problem(
                url,
                f"run {state.job.name} ({state.job.native_id}): metric {key!r}: skipped "
                f"{points.beyond_int64:,} point(s) whose step is beyond the 64-bit range",
            )
        state.waiting.discard(key)
        state.parts.append((key, points))
        if not state.waiting:
            done += 1
            ready.append(state)
            ready_points += sum(len(p[1][2]) for p in state.parts)
            if progress:
                progress("mlflow histories", done, total)

    def fail(state: _JobState, exc: RemoteError) -> None:
        nonlocal done
        if state.failed:
            return
        state.failed = True
        done += 1
        failed_runs.append(state.job.name)
        if len(failed_runs) <= MAX_RUN_PROBLEMS:
            report.problem(url, f"run {state.job.name} ({state.job.native_id}): {exc}")

    # Tasks: ("bulk", key, [states]) or ("one", key, state)
    queue: deque[tuple[str, str, Any]] = deque()
    if client.bulk is not False:
        by_key: dict[str, list[_JobState]] = {}
        for state in jobs:
            for key in state.job.keys:
                by_key.setdefault(key, []).append(state)
        for key, states in by_key.items():
            states.sort(key=lambda s: s.job.native_id)
            for i in range(0, len(states), BULK_RUNS):
                queue.append(("bulk", key, states[i : i + BULK_RUNS]))
    else:
        for state in jobs:
            for key in state.job.keys:
                queue.append(("one", key, state))

    def run_task(task: tuple[str, str, Any]) -> Any:
        """In a worker thread: fetch and parse, so JSON decoding overlaps other requests."""
        kind, key, target = task
        if kind == "one":
            return parse_points(client.metric_history(target.job.native_id, key))
        if client.bulk is False:
            return None
        metrics = client.metric_history_bulk([s.job.native_id for s in target], key)
        if metrics is None:
            return None
        complete, rest = _split_bulk(target, key, metrics)
        return [(state, parse_points(points)) for state, points in complete], rest

    def handle(task: tuple[str, str, Any], result: Any) -> None:
        kind, key, target = task
        if kind == "one":
            deliver(target, key, result)
            return
        if result is None:  # no bulk endpoint: one request per run instead
            queue.extend(("one", key, s) for s in target)
            return
        complete, rest = result
        for state, points in complete:
            deliver(state, key, points)
        if rest and len(rest) < len(target):
            queue.append(("bulk", key, rest))
        else:  # not one run fit in the answer, or the answer skipped some: ask one by one
            queue.extend(("one", key, s) for s in rest)

    executor = ThreadPoolExecutor(max_workers=client.concurrency, thread_name_prefix="mlflow-rest")
    running: dict[Future[Any], tuple[str, str, Any]] = {}
    try:
        while queue or running:
            if should_stop and should_stop():
                break
            while queue and len(running) < client.concurrency * 2:
                task = queue.popleft()
                running[executor.submit(run_task, task)] = task
            finished, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    result = future.result()
                except RemoteError as exc:
                    if exc.fatal:
                        raise _Stop(str(exc)) from None
                    kind, key, target = task
                    if kind == "bulk":  # a busy server may still answer smaller requests
                        queue.extend(("one", key, s) for s in target)
                    else:
                        fail(target, exc)
                    continue
                handle(task, result)
            if ready and (
                ready_points >= FLUSH_POINTS or time.monotonic() - last_flush >= FLUSH_SECONDS
            ):
                flush()
        flush()
    except _Stop as stop:
        flush()
        report.problem(url, f"histories not fetched: {stop}")
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    if len(failed_runs) > MAX_RUN_PROBLEMS:
        report.problem(url, f"histories of {len(failed_runs)} runs could not be read in all")
    return added


def _split_bulk(
    states: list[_JobState], key: str, metrics: list[dict[str, Any]]
) -> tuple[list[tuple[_JobState, list[dict[str, Any]]]], list[_JobState]]:
    """(runs the bulk answer holds completely with their points, runs to ask again).

    The answer is sorted by run id and cut at :data:`BULK_POINTS`: when it is full, only runs
    before the last one it mentions can be complete. A run is taken only if its points include
    the latest value the search reported, so a cut this code does not expect (a server with a
    smaller cap) costs a second request, never a silently short history.
    """
    by_run: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for m in metrics:
        run = m.get("run_id")
        if not isinstance(run, str):
            continue
        if run not in by_run:
            by_run[run] = []
            order.append(run)
        by_run[run].append(m)
    if len(metrics) >= BULK_POINTS:
        if order != sorted(order):
            return [], list(states)  # not sorted as expected: trust nothing of a cut answer
        last = order[-1] if order else ""
        by_run = {run: points for run, points in by_run.items() if run < last}
    complete: list[tuple[_JobState, list[dict[str, Any]]]] = []
    rest: list[_JobState] = []
    for state in states:
        points = by_run.get(state.job.native_id)
        if points is not None and _holds_latest(state.job, key, points):
            complete.append((state, points))
        else:
            rest.append(state)
    return complete, rest


def _holds_latest(job: HistoryJob, key: str, points: list[dict[str, Any]]) -> bool:
    wanted = [(step, ts) for k, step, ts in job.latest if k == key]
    if not wanted:
        return True
    step, ts = wanted[0]
    return any(as_int(p.get("step")) == step and as_int(p.get("timestamp")) == ts for p in points)


# -- both phases -----------------------------------------------------------------------------------


def sync_server(
    store: Store,
    url: str,
    report: ImportReport,
    *,
    histories: bool = True,
    progress: Progress | None = None,
    client: MlflowRestClient | None = None,
    **client_options: Any,
) -> SyncPlan | None:
    """Import one server (phase 1, then phase 2 when ``histories``), never raising on it.

    A failure becomes one problem line ``URL: what went wrong``; None when phase 1 failed.
    """
    own = client is None
    shown = url
    report.sources_seen += 1
    first_problem = len(report.problems)
    try:
        shown = normalize_url(url)[0]
        if client is None:
            client = MlflowRestClient(url, **client_options)
        plan = sync_runs(store, client, report, progress=progress)
        if histories:
            import_histories(store, client, plan, report, progress=progress)
        return plan
    except RemoteError as exc:
        report.problem(shown, str(exc))
        return None
    finally:
        if client is not None:
            # Every line about this server, whatever raised it, without the secrets.
            mask = client.settings.credentials.mask
            for i in range(first_problem, len(report.problems)):
                problem = report.problems[i]
                report.problems[i] = replace(problem, message=mask(problem.message))
        if own and client is not None:
            client.close()

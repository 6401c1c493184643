"""Talking to an MLflow tracking server: URLs and settings as MLflow's client reads them, answers
checked for shape, paging guarded against endless tokens, and the few REST calls mltop makes.

Every request has one deadline with its retries (:class:`~mltop.core.common.httpclient.HttpClient`);
an answer that is not MLflow's is a one-line :class:`RemoteError`. Apart from the run mapping and
the sync so that other readers of the same server (registered models, say) page and check
answers the same way: :func:`pages` (with :func:`unseen`), :class:`Paging`, :func:`json_object`
and :func:`json_list` are for them too.
"""

from __future__ import annotations

import configparser
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mltop.core.common.httpclient import (
    Credentials,
    HttpClient,
    HttpSettings,
    RemoteError,
    RetryPolicy,
    split_userinfo,
)

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

# MLflow's own defaults are 120 s per read and 7 retries (minutes of waiting); fewer attempts and
# one 30 s deadline per request, retries included, suit an interactive tool: a command against a
# server that stopped answering ends within a minute. --timeout and the MLflow variables override.
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_TIMEOUT = 30.0


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


def shape_error(what: str, detail: str) -> RemoteError:
    return RemoteError(f"{what}: not an MLflow answer ({detail})", "not-tracker")


def json_object(data: Any, what: str, allowed: Iterable[str]) -> dict[str, Any]:
    """The answer as a JSON object whose keys MLflow could have sent (empty fields omitted)."""
    if not isinstance(data, dict):
        raise shape_error(what, f"a JSON {type(data).__name__} instead of an object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise shape_error(what, f"unexpected field {unknown[0]!r}")
    return data


def json_list(data: dict[str, Any], key: str, what: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise shape_error(what, f"{key!r} is not a list")
    return value


# Pages in a row that bring nothing new, while the server still sends a next_page_token, before
# paging is called endless (a real server's pages each bring new rows; an empty page ends it).
STALE_PAGES = 3


def next_page(
    paging: Paging, data: dict[str, Any], what: str, new: bool, cut: list[str] | None
) -> str | None:
    """The next page's token, or None at the end; when paging stopped early, the reason goes
    to ``cut`` (a listing read in part) or is raised (without ``cut``)."""
    try:
        return paging.next(page_token(data, what), new)
    except RemoteError as exc:
        if cut is None:
            raise
        cut.append(str(exc))
        return None


class Paging:
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


def page_token(data: dict[str, Any], what: str) -> str | None:
    token = data.get("next_page_token")
    if token in (None, ""):
        return None
    if not isinstance(token, str):
        raise shape_error(what, "next_page_token is not a string")
    return token


def pages(
    fetch: Callable[[str | None], Any],
    what: str,
    key: str,
    fresh: Callable[[list[dict[str, Any]]], bool],
    cut: list[str] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The pages of one paged listing: ``fetch(token)`` asks for a page, ``key`` names its list.

    Each page is the list's JSON objects (anything else is dropped); ``fresh(page)`` says
    whether it brought something new, for :class:`Paging` to notice a server that pages forever.
    Paging stopped early goes to ``cut``, or is raised without it (see :func:`next_page`).
    """
    paging = Paging(what)
    token: str | None = None
    while True:
        data = json_object(fetch(token), what, (key, "next_page_token"))
        page = [row for row in json_list(data, key, what) if isinstance(row, dict)]
        yield page
        token = next_page(paging, data, what, fresh(page), cut)
        if token is None:
            return


def unseen(identity: Callable[[dict[str, Any]], object]) -> Callable[[list[dict[str, Any]]], bool]:
    """A :func:`pages` ``fresh`` test: does a page hold a row whose identity was not seen?"""
    seen: set[str] = set()

    def fresh(page: list[dict[str, Any]]) -> bool:
        ids = {str(identity(row)) for row in page} - seen
        seen.update(ids)
        return bool(ids)

    return fresh


def row_run_id(row: Mapping[str, Any]) -> object:
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

        When paging must stop (see :class:`Paging`), the reason is appended to ``cut`` and the
        experiments read so far are returned; without ``cut`` the error is raised.
        """
        what = "experiments/search"

        def fetch(token: str | None) -> Any:
            body: dict[str, Any] = {"max_results": EXPERIMENTS_PAGE, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            return self.http.post_json(f"{API}/experiments/search", body, what=what)

        fresh = unseen(lambda e: e.get("experiment_id"))
        return [e for page in pages(fetch, what, "experiments", fresh, cut) for e in page]

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
        what = "runs/search"

        def fetch(token: str | None) -> Any:
            body: dict[str, Any] = {
                "experiment_ids": list(experiment_ids),
                "max_results": page_size,
                "run_view_type": "ALL",
                "order_by": ["attributes.start_time ASC"],
            }
            if token:
                body["page_token"] = token
            return self.http.post_json(f"{API}/runs/search", body, what=what)

        yield from pages(fetch, what, "runs", unseen(row_run_id), cut)

    def get_run(self, run_id: str) -> dict[str, Any]:
        what = "runs/get"
        data = json_object(
            self.http.get_json(f"{API}/runs/get", {"run_id": run_id}, what=what), what, ("run",)
        )
        run = data.get("run")
        if not isinstance(run, dict):
            raise shape_error(what, "no run")
        return run

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """One metric's full history, page by page (the public, paginated endpoint)."""
        what = "metrics/get-history"
        previous: list[dict[str, Any]] | None = None

        def fetch(token: str | None) -> Any:
            params = {"run_id": run_id, "metric_key": key, "max_results": HISTORY_PAGE}
            if token:
                params["page_token"] = token
            return self.http.get_json(f"{API}/metrics/get-history", params, what=what)

        def fresh(page: list[dict[str, Any]]) -> bool:  # points carry no id: not the last page
            nonlocal previous
            new, previous = bool(page) and page != previous, page
            return new

        return [m for page in pages(fetch, what, "metrics", fresh) for m in page]

    def metric_history_bulk(self, run_ids: Sequence[str], key: str) -> list[dict[str, Any]] | None:
        """One metric of several runs from the UI's bulk endpoint; None if the server lacks it."""
        what = "metrics/get-history-bulk"
        params = [("run_id", r) for r in run_ids] + [
            ("metric_key", key),
            ("max_results", str(BULK_POINTS)),
        ]
        try:
            data = self.http.get_json(f"{AJAX_API}/metrics/get-history-bulk", params, what=what)  # type: ignore[arg-type]
            data = json_object(data, what, ("metrics",))
        except RemoteError as exc:
            if exc.kind in ("not-tracker", "not-found", "request", "bad-json"):
                self.bulk = False
                return None
            raise
        self.bulk = True
        return [m for m in json_list(data, "metrics", what) if isinstance(m, dict)]


def connect(url: str, **kwargs: Any) -> MlflowRestClient:
    """A client for ``url`` configured from the environment (see :func:`settings_from_env`)."""
    return MlflowRestClient(url, **kwargs)

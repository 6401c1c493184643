"""The HTTP transport for remote trackers: timeouts, bounded retries, auth, one-line errors.

A remote tracker is read from the CLI and from background workers of the TUI; in both places a
failure must end as one readable line (``cannot connect (connection refused) after 4
attempts``), never as a traceback, and a flaky server must not end the import at the first 503.
So every request here has a deadline for its whole answer, retries included (``timeout``: a
server trickling its body a byte at a time, or never answering, costs that long and no more),
transient failures (connection errors, 408, 429, 5xx) are
retried a bounded number of times with exponential backoff and jitter (``Retry-After`` wins when
the server sends one), and every other failure becomes a :class:`RemoteError` whose message names
what went wrong in the user's terms (credentials refused, not an MLflow server, malformed JSON).

Credentials never leave this module in text: URLs are shown without their userinfo,
:class:`Credentials` hides its secrets from ``repr``, and every error message is passed through
:meth:`Credentials.mask`, because a misconfigured server or proxy may echo the Authorization
header it received in its error body.
"""

from __future__ import annotations

import base64
import email.utils
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

# Status codes worth another attempt: the server (or a proxy in front of it) is busy or restarting.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "mltop"


class _TooSlow(Exception):
    """The request's deadline passed before its answer was complete."""


class RemoteError(Exception):
    """A request failed for good; ``str()`` is one line fit for ``report.problem``.

    ``kind`` lets callers tell a dead server (stop everything) from a failure of one resource
    (skip it): unreachable, timeout, tls, auth, not-found, not-tracker, bad-json, rate-limited,
    server, request, config.
    """

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.kind = kind
        self.status = status

    @property
    def fatal(self) -> bool:
        """True when no further request to this server can succeed either."""
        return self.kind in {
            "unreachable", "timeout", "tls", "auth", "not-tracker", "rate-limited", "config"
        }  # fmt: skip


def redact_url(url: str) -> str:
    """``url`` without user and password, for anything shown or stored."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(url without userinfo, user, password) of a URL such as ``https://u:p@host/``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if password else None


@dataclass(frozen=True)
class Credentials:
    """Bearer token or basic user/password; ``repr`` never shows the secrets."""

    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        """The Authorization header, chosen as MLflow's client does: basic auth wins."""
        if self.username and self.password:
            pair = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    @property
    def present(self) -> bool:
        return bool(self.token or (self.username and self.password))

    def secrets(self) -> list[str]:
        """The secret strings, as sent too (a basic header's base64 gives the pair away)."""
        found = [s for s in (self.token, self.password) if s]
        if self.username and self.password:
            found.append(self.headers()["Authorization"].removeprefix("Basic "))
        return found

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        return mask_secrets(text, self.secrets())


MASK = "***"


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by :data:`MASK`.

    A secret shorter than four characters is masked only as a whole word: masking every ``p``
    of a one-letter password would garble the message and point at the password all the same.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret not in text:
            continue
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
        else:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
    return text


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff: ``backoff * 2**n`` (capped) plus jitter."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 10.0
    jitter: float = 0.25
    # A Retry-After beyond this is not waited for: the error says how long the server asked.
    max_retry_after: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return base + random.uniform(0, self.jitter)


@dataclass(frozen=True)
class HttpSettings:
    """Where and how to connect. ``base_url`` never carries credentials."""

    base_url: str
    credentials: Credentials = Credentials()
    verify: bool | str = True
    client_cert: str | None = None
    timeout: float = 30.0  # seconds for a whole request, its body and retries included
    connect_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date); None if absent."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reason(exc: BaseException) -> str:
    """The most specific readable cause of a transport error, without a URL in it."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    if "temporary failure in name resolution" in lowered:
        return "host name does not resolve"
    if "network is unreachable" in lowered:
        return "network is unreachable"
    if "no route to host" in lowered:
        return "no route to host"
    return text or type(exc).__name__


def _is_tls_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(w in text for w in ("certificate", "ssl", "tls", "wrong version number"))


def _excerpt(body: bytes, limit: int = 80) -> str:
    text = " ".join(body[:400].decode("utf-8", "replace").split())
    return text[:limit] + ("..." if len(text) > limit else "")


class HttpClient:
    """A JSON-over-HTTP client with the retry and error rules above; safe to share across threads.

    ``transport`` replaces the network (tests); ``sleep`` replaces waiting (tests of backoff).
    ``requests`` and ``retries`` count what was sent, for tests and for ``--verbose`` output.
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._sleep = sleep
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        headers.update(settings.credentials.headers())
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            verify=settings.verify,
            cert=settings.client_cert,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=True,
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, what: str) -> Any:
        return self.request_json("GET", path, params=params, what=what)

    def post_json(self, path: str, body: Mapping[str, Any], *, what: str) -> Any:
        return self.request_json("POST", path, body=body, what=what)

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        what: str,
    ) -> Any:
        """Send one request (retrying transient failures) and decode its JSON answer.

        ``what`` names the request in error messages (``runs/search``), which never hold a
        secret (see :meth:`Credentials.mask`).
        """
        try:
            return self._request_json(method, path, params=params, body=body, what=what)
        except RemoteError as exc:
            masked = self.settings.credentials.mask(str(exc))
            if masked == str(exc):
                raise
            raise RemoteError(masked, exc.kind, exc.status) from None

    def _request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        what: str,
    ) -> Any:
        url = self.base_url + path
        policy = self.settings.retry
        attempts = max(1, policy.attempts)
        limit = self.settings.timeout
        # One deadline for the request and all its retries: httpx's timeout bounds each read,
        # so a body trickled a byte at a time would otherwise never time out.
        deadline = time.monotonic() + limit
        last: RemoteError | None = None
        attempt = 0
        while attempt < attempts:
            attempt += 1
            wait: float | None = None
            try:
                with self._lock:
                    self.requests += 1
                response, content = self._send(method, url, params, body, deadline)
            except _TooSlow:
                last = RemoteError(
                    f"{what}: no complete answer within {limit:g} s (the server sends too slowly)",
                    "timeout",
                )
            except httpx.TimeoutException as exc:
                connect = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                doing = "connecting" if connect else "waiting for an answer"
                after = min(self.settings.connect_timeout, limit) if connect else limit
                last = RemoteError(f"{what}: timed out {doing} (after {after:g} s)", "timeout")
            except httpx.ConnectError as exc:
                if _is_tls_error(exc):
                    raise RemoteError(
                        f"{what}: TLS handshake failed ({_reason(exc)}); set "
                        "MLFLOW_TRACKING_SERVER_CERT_PATH to the server's CA bundle, or "
                        "MLFLOW_TRACKING_INSECURE_TLS=true to skip verification",
                        "tls",
                    ) from None
                last = RemoteError(f"{what}: cannot connect ({_reason(exc)})", "unreachable")
            except httpx.RemoteProtocolError as exc:
                detail = _reason(exc)
                last = RemoteError(
                    f"{what}: the server closed the connection before a complete answer ({detail})",
                    "unreachable",
                )
            except (httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
                last = RemoteError(f"{what}: connection failed ({_reason(exc)})", "unreachable")
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise RemoteError(f"{what}: bad URL ({_reason(exc)})", "config") from None
            except httpx.HTTPError as exc:
                last = RemoteError(f"{what}: request failed ({_reason(exc)})", "unreachable")
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._decode(response, content, what)
                last = self._status_error(response, content, what)
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is not None and (
                    wait > policy.max_retry_after or wait > deadline - time.monotonic()
                ):
                    past = (
                        "" if wait > policy.max_retry_after else f", past the {limit:g} s deadline"
                    )
                    raise RemoteError(
                        f"{what}: the server is rate limiting (HTTP {response.status_code}) and "
                        f"asks to retry after {wait:.0f} s{past}",
                        "rate-limited",
                        response.status_code,
                    )
            if attempt == attempts or last.kind == "timeout":
                break
            pause = wait if wait is not None else policy.delay(attempt)
            if time.monotonic() + pause >= deadline:
                break  # no time left for another attempt
            with self._lock:
                self.retries += 1
            self._sleep(pause)
        assert last is not None
        if attempt > 1:
            raise RemoteError(f"{last} after {attempt} attempts", last.kind, last.status)
        raise last

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        deadline: float,
    ) -> tuple[httpx.Response, bytes]:
        """One attempt: the response and its whole body, read before ``deadline`` or never."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TooSlow
        timeout = httpx.Timeout(remaining, connect=min(self.settings.connect_timeout, remaining))
        request = self._client.build_request(method, url, params=params, json=body, timeout=timeout)
        response = self._client.send(request, stream=True)
        try:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _TooSlow
            return response, b"".join(chunks)
        finally:
            response.close()

    # -- answers ----------------------------------------------------------------------------------

    def _status_error(self, response: httpx.Response, content: bytes, what: str) -> RemoteError:
        """A non-2xx answer as a one-line error; MLflow's own error JSON supplies the detail."""
        status = response.status_code
        phrase = response.reason_phrase or ""
        head = f"HTTP {status}" + (f" {phrase}" if phrase else "")
        detail = _mlflow_error(content)
        dropped = self._dropped_credentials(response)
        if status in (401, 403) and dropped:
            return RemoteError(
                f"{what}: {head} from {dropped}: the server redirected there, to another host, "
                "and credentials are never sent to another host (use that address as the "
                "tracking URI if it is the right server)",
                "auth",
                status,
            )
        if status == 401:
            hint = (
                "the server refused the credentials"
                if self.settings.credentials.present
                else "the server wants credentials: set MLFLOW_TRACKING_TOKEN, or "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )
            return RemoteError(f"{what}: {head}: {hint}", "auth", status)
        if status == 403:
            return RemoteError(
                f"{what}: {head}: these credentials may not read this server"
                + (f" ({detail})" if detail else ""),
                "auth",
                status,
            )
        if status == 404 and detail is None:
            return RemoteError(
                f"{what}: {head}: no MLflow REST API at this URL (is it the tracking server's "
                "address, with its path prefix if it has one?)",
                "not-tracker",
                status,
            )
        if status == 404:
            return RemoteError(f"{what}: {head}: {detail}", "not-found", status)
        if status == 429:
            return RemoteError(
                f"{what}: {head}: the server is rate limiting", "rate-limited", status
            )
        if status >= 500:
            return RemoteError(
                f"{what}: {head}" + (f": {detail}" if detail else ""), "server", status
            )
        return RemoteError(
            f"{what}: {head}" + (f": {detail}" if detail else f": {_excerpt(content)}"),
            "request",
            status,
        )

    def _dropped_credentials(self, response: httpx.Response) -> str | None:
        """Where a redirect led when it cost the credentials (httpx drops them across hosts)."""
        if not response.history or not self.settings.credentials.present:
            return None
        if "Authorization" in response.request.headers:
            return None
        target = response.request.url
        return redact_url(str(target.copy_with(query=None)))

    def _decode(self, response: httpx.Response, content: bytes, what: str) -> Any:
        if not 200 <= response.status_code < 300:
            raise self._status_error(response, content, what)
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        stripped = content.lstrip()
        if not stripped:
            # MLflow answers an empty result as "{}", never as nothing: an empty body is a server
            # or proxy that failed, and reading it as "no runs" would hide that.
            raise RemoteError(
                f"{what}: HTTP {response.status_code} with an empty body (MLflow always "
                "answers JSON): the server or a proxy in front of it failed",
                "server",
                response.status_code,
            )
        if "html" in ctype or stripped[:1] == b"<":
            if response.history:  # typically a single sign-on proxy's login page
                where = redact_url(str(response.request.url.copy_with(query=None)))
                raise RemoteError(
                    f"{what}: redirected to {where}, which answered with an HTML page, not "
                    "MLflow's JSON (a login page? give the tracking server's own address, or "
                    "MLflow's credentials the proxy accepts)",
                    "not-tracker",
                    response.status_code,
                )
            raise RemoteError(
                f"{what}: answered with an HTML page, not MLflow's JSON (is this the MLflow "
                "tracking server's URL?)",
                "not-tracker",
                response.status_code,
            )
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            if "json" not in ctype:
                raise RemoteError(
                    f"{what}: answered {ctype or 'without a content type'} "
                    f"({_excerpt(content, 40)!r}), not MLflow's JSON",
                    "not-tracker",
                    response.status_code,
                ) from None
            raise RemoteError(
                f"{what}: malformed JSON in the answer ({' '.join(str(exc).split())}; "
                f"{len(content):,} bytes)",
                "bad-json",
                response.status_code,
            ) from None


def _mlflow_error(content: bytes) -> str | None:
    """``CODE: message`` from MLflow's error JSON; None when the body is not one."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not ("error_code" in data or "message" in data):
        return None
    code = str(data.get("error_code") or "").strip()
    message = " ".join(str(data.get("message") or "").split())
    if len(message) > 200:
        message = message[:197] + "..."
    return ": ".join(p for p in (code, message) if p) or None

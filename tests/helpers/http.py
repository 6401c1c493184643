"""Small HTTP servers on 127.0.0.1 for the clients that talk to GitHub and MLflow.

A test that checks how a client reads a server's answers (paging, rate limits, errors, hostile
text) needs a server that answers exactly so; these run a real ``http.server`` on a free port
in a thread, so the client under test goes through its real sockets and HTTP parsing."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test's output clean and answers JSON in one call."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_json(
        self, body: object, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer ``body`` as JSON with ``status`` and extra ``headers``."""
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], poll: float = 0.5) -> Iterator[str]:
    """``handler`` answering on 127.0.0.1 (a free port) until the block ends; yields the URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(poll,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

"""Start a real ``mlflow server`` on a free local port for tests, and always stop it.

The server runs in its own process group (it starts a uvicorn worker of its own), so stopping
it terminates the whole group, then kills it if it has not exited in time. MLflow's background
job runner is switched off: it is not needed to serve the tracking API and costs processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 150.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(db: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start a server over the SQLite store ``db``; returns (process, URL, log file)."""
    port = free_port()
    log = workdir / f"mlflow-server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{db}",
        "--default-artifact-root", str(workdir / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env, start_new_session=True
        )
    return proc, f"http://127.0.0.1:{port}", log


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{_log_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    _stop(proc)
    raise RuntimeError(
        f"mlflow server not healthy after {STARTUP_TIMEOUT:.0f} s:\n{_log_tail(log)}"
    )


@contextlib.contextmanager
def running(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Stop ``proc`` (and its process group) on leaving, whatever happened."""
    try:
        yield
    finally:
        _stop(proc)


@contextlib.contextmanager
def mlflow_server(db: Path, workdir: Path) -> Iterator[str]:
    """A healthy server over ``db`` for the duration of the block; yields its URL."""
    proc, url, log = start(db, workdir)
    with running(proc):
        wait_healthy(proc, url, log)
        yield url

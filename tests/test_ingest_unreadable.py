"""Files and folders the user may not read: each is a problem line, the rest still imported.

The fixtures are copied into one tree, a file or folder of each format is made mode 000, and the
ingest runs as a user that mode 000 applies to. Tests run as root here, and root reads mode 000
files, so the ingest runs in a forked child that switches to ``nobody`` (the interpreter itself
lives under /root, which ``nobody`` cannot exec, so a fresh subprocess as ``nobody`` is not
possible; a fork keeps the loaded interpreter). Run as another user, the ingest runs in-process.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, write_run

from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store

NOBODY = 65534
DEADLINE = 60.0


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


@pytest.fixture
def tree() -> Iterator[Path]:
    """A folder outside pytest's 0700 tmp root, so that ``nobody`` can walk it."""
    root = Path(tempfile.mkdtemp(prefix="mltop-unreadable-"))
    try:
        _extract(FIXTURES / "mlflow" / "small-sqlite.tar.gz", root / "ml")
        shutil.copytree(FIXTURES / "trackio" / "trackio_dir", root / "trackio")
        shutil.copytree(FIXTURES / "training-logs" / "python-logging", root / "logs")
        shutil.copytree(FIXTURES / "training-logs" / "keras-csvlogger", root / "keras")
        shutil.copytree(FIXTURES / "lightning-csvlogger" / "lightning_logs", root / "lightning")
        for name in ("a", "b", "c"):
            write_run(root / "runs", name, steps=3)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root)


def _ingest_summary(root: Path) -> dict[str, object]:
    store = open_memory_store()
    report = ingest(root, store)
    return {
        "problems": {str(Path(p.path).relative_to(root)): p.message for p in report.problems},
        "runs": sorted(f"{run.source_kind}:{run.name}" for run in store.runs()),
    }


def ingest_unprivileged(root: Path) -> dict[str, object]:
    """Ingest ``root`` as a user that mode 000 applies to; problems and runs as plain data."""
    if os.geteuid() != 0:
        return _ingest_summary(root)
    _ingest_summary(root)  # load every module while /root is still readable
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 0
        try:
            os.close(rd)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = _ingest_summary(root)
        except BaseException as exc:
            out, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        os.write(wr, json.dumps(out).encode())
        os._exit(code)
    os.close(wr)
    data = b""
    deadline = time.monotonic() + DEADLINE
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([rd], [], [], max(left, 0))
            if not ready:
                pytest.fail(f"the unprivileged ingest took longer than {DEADLINE:.0f} s")
            chunk = os.read(rd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rd)
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    out = json.loads(data)
    if out.get("error", "").startswith("PermissionError") and "setuid" in out["error"]:
        pytest.skip(f"cannot switch to an unprivileged user here: {out['error']}")
    assert "error" not in out, out["error"]
    return out


def test_unreadable_source_files_are_problem_lines_and_the_rest_is_imported(tree: Path) -> None:
    unreadable = [
        "ml/small-sqlite/mlflow.db",
        "trackio/corpus-digits.db",
        "logs/run-a.metrics.jsonl",
        "keras/keras-adam-1e-2.csv",
        "lightning/version_0/metrics.csv",
        "runs/a/metrics.jsonl",
    ]
    run_b = tree / "runs" / "b"
    for rel in unreadable:
        (tree / rel).chmod(0)
    run_b.chmod(0)
    out = ingest_unprivileged(tree)
    problems = out["problems"]
    assert isinstance(problems, dict)
    assert set(problems) == {*unreadable, str(run_b.relative_to(tree))}
    assert problems[str(run_b.relative_to(tree))] == "cannot list folder (Permission denied)"
    for rel in unreadable:
        assert "Permission denied" in problems[rel], rel
    runs = out["runs"]
    assert isinstance(runs, list)
    # Every source left readable still gives its runs.
    for expected in (
        "jsonl:run-b",
        "jsonl:run-crash",
        "keras:keras-adam-1e-3",
        "keras:keras-resumed",
        "mltop:c",
    ):
        assert expected in runs, expected
    # version_1 untouched; version_0 keeps its hparams.yaml while its metrics are the problem.
    assert sum(r.startswith("lightning:") for r in runs) == 2
    assert not any(r.startswith(("mlflow-sqlite:", "trackio:", "mltop:b")) for r in runs)

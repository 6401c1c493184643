"""Files and folders the user may not read: each is a problem line, the rest still imported.

The fixtures are copied into one tree, a file or folder of each format is made mode 000, and the
ingest runs as a user that mode 000 applies to. Tests run as root here, and root reads mode 000
files, so the ingest runs in a fresh interpreter that first loads every module (the interpreter
lives under /root, which ``nobody`` cannot read) and then switches itself to ``nobody``. Run as
another user, that interpreter simply ingests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, write_run

from mltop.core.discovery import ingest
from mltop.core.store import open_store

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


_SUMMARY = """
import json, os, sys
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store, open_store

def summary(root, store_path=None):
    store = open_store(root, store_path) if store_path else open_memory_store()
    report = ingest(root, store)
    return {
        "problems": {str(Path(p.path).relative_to(root)): p.message for p in report.problems},
        "runs": sorted(f"{run.source_kind}:{run.name}" for run in store.runs()),
    }

root = Path(sys.argv[1])
if os.geteuid() == 0:
    summary(root)  # every module loaded while the interpreter's own folder is still readable
    try:
        os.setgid(int(sys.argv[2]))
        os.setuid(int(sys.argv[2]))
    except OSError as exc:
        print(json.dumps({"skip": f"cannot switch to an unprivileged user here: {exc}"}))
        sys.exit(0)
print(json.dumps(summary(root, Path(sys.argv[3]) if len(sys.argv) > 3 else None)))
"""


def ingest_unprivileged(root: Path, store: Path | None = None) -> dict[str, object]:
    """Ingest ``root`` as a user that mode 000 applies to; problems and runs as plain data.

    A fresh interpreter (started as this user) switches to ``nobody`` itself when this user is
    root: forking this test process instead would copy its threads' locks mid-flight.
    """
    done = subprocess.run(
        [sys.executable, "-c", _SUMMARY, str(root), str(NOBODY), *([str(store)] if store else [])],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    out = json.loads(done.stdout)
    if "skip" in out:
        pytest.skip(out["skip"])
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


def test_a_folder_that_cannot_be_listed_keeps_the_runs_the_store_has_of_it(tree: Path) -> None:
    # Permissions taken away for a while (or a flaky mount) are not a deleted run folder.
    state = Path(tempfile.mkdtemp(prefix="mltop-unreadable-store-"))
    try:
        state.chmod(0o777)  # the unprivileged ingest writes the store and its scratch here
        store_path = state / "store.duckdb"
        store = open_store(tree, store_path)
        ingest(tree, store)
        store.close()
        store_path.chmod(0o666)
        (tree / "runs").chmod(0)  # the folder holding the run folders, not a run folder itself
        out = ingest_unprivileged(tree, store_path)
        assert out["problems"] == {"runs": "cannot list folder (Permission denied)"}
        assert {"mltop:a", "mltop:b", "mltop:c"} <= set(out["runs"])  # type: ignore[arg-type]
    finally:
        shutil.rmtree(state)

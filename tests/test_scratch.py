"""Temporary files live beside the store, and what a killed process left is swept at the next start.

Real ingest processes are killed with SIGKILL. The child reports each temporary file it makes
and then waits (a wrapper around the real ``bytes_to_tempfile``), so the kill lands while the
file exists instead of whenever the timing allows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import write_run

from mltop.core.discovery import ingest
from mltop.core.importers import linefiles
from mltop.core.store import open_store, scratch_base

KILLED_IMPORTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mltop.core import discovery, tabular
    from mltop.core.store import open_store

    real = tabular.bytes_to_tempfile

    def reporting(data, suffix):
        name = real(data, suffix)
        print("temp", name, flush=True)
        time.sleep(60)  # killed here, with the file on disk
        return name

    tabular.bytes_to_tempfile = reporting
    root = Path(sys.argv[1])
    discovery.ingest(root, open_store(root))
    """
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mltop.core.common import scratch
    from mltop.core.store import open_store

    open_store(Path(sys.argv[1])).close()  # the folder stays this process's; the store is free
    print("folder", scratch.folder(), flush=True)
    time.sleep(60)
    """
)


def _live_run(root: Path) -> None:
    """A run whose last line is still being written: its complete lines go through a temp file
    (when there are more than a small file's, which are parsed from memory)."""
    folder = write_run(root / "runs", "live", steps=3)
    with open(folder / "metrics.jsonl", "a") as fh:
        lines = linefiles.TOGETHER_BYTES // 20
        fh.write("".join(f'{{"step": {s}, "loss": 0.25}}\n' for s in range(3, 3 + lines)))
        fh.write('{"step": 0, "loss": 0.2')


def _kill_mid_ingest(root: Path, tmpdir: Path) -> Path:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_IMPORTER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split(" ", 1)
        assert line[0] == "temp", line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return Path(line[1].strip())


def test_a_killed_ingest_leaves_its_temporary_file_beside_the_store_and_a_new_start_removes_it(
    tmp_path: Path,
) -> None:
    root, tmpdir = tmp_path / "project", tmp_path / "system-tmp"
    tmpdir.mkdir()
    _live_run(root)
    base = scratch_base(root / ".mltop" / "store.duckdb")
    left: list[Path] = []
    for _ in range(3):
        left.append(_kill_mid_ingest(root, tmpdir))
        assert left[-1].is_file()
        assert left[-1].parent.parent == base  # inside the store's folder, not the system's
        # The start of this ingest swept what the one killed before it had left.
        assert [path.exists() for path in left[:-1]] == [False] * (len(left) - 1)
    assert list(tmpdir.iterdir()) == []

    with open_store(root) as store:
        report = ingest(root, store)
    assert report.runs_added == 1
    assert not left[-1].parent.exists()
    assert len(list(base.iterdir())) <= 1  # this process's own folder at most


def test_a_live_processes_temporary_folder_is_never_swept(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_run(root / "runs", "one")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        word, folder = proc.stdout.readline().split(" ", 1)
        assert word == "folder"
        held = Path(folder.strip())
        # A second mltop on the same store: its start sweeps the scratch folders of dead owners.
        with open_store(root) as store:
            ingest(root, store)
        assert held.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with open_store(root):
        pass
    assert not held.exists()


def test_a_shared_scratch_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    planted = tmp_path / f"mltop-scratch-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)  # as another user could have left it in /tmp
    result = subprocess.run(
        [sys.executable, "-c", "from mltop.core.common import scratch; print(scratch.folder())"],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        check=True,
    )
    used = Path(result.stdout.strip())
    assert used.parent.parent == tmp_path and used.parent != planted
    assert list(planted.iterdir()) == []


def test_a_private_store_in_use_keeps_its_folder_when_another_store_opens(
    tmp_path: Path,
) -> None:
    held, other = tmp_path / "held", tmp_path / "other"
    write_run(held / "runs", "one")
    write_run(other / "runs", "two")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDS_STORE, str(held)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with open_store(held) as private:  # the file is locked: a private temporary store
            assert private.note is not None
            with open_store(other) as store:  # this process's temporary files move here
                ingest(other, store)
            assert private.path is not None and private.path.parent.is_dir()
            report = ingest(held, private)
            assert report.runs_added == 1 and not report.problems
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


HOLDS_STORE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mltop.core.store import open_store

    store = open_store(Path(sys.argv[1]))
    print("holding", flush=True)
    time.sleep(60)
    """
)

"""``mltop demo``: training shows progress as it goes, and the live trainer it starts in the
background ends when mltop does (real subprocesses of the bundled sample project)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mltop.core.demo import (
    IGNORE,
    prepare_demo,
    sample_project_dir,
    start_live,
    stop_live,
    wait_for_live_run,
)
from mltop.core.tracking import META_FILE

LIVE_DEMO = (
    "import sys; from pathlib import Path; from mltop.core.cli import demo, output; "
    "sys.exit(demo._demo_live(Path(sys.argv[1]), True, output.stderr_console()))"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_training_reports_each_run_as_it_starts(tmp_path: Path) -> None:
    lines: list[str] = []
    folder = prepare_demo(
        tmp_path / "sample_project",
        log=lambda _: None,
        extra_args=["--only", "digits/sgd-lr0.1", "--only", "digits/logreg-C1", "--epochs", "2"],
        progress=lines.append,
    )
    started = [line for line in lines if line.startswith("training ")]
    # The sweep, then the two releases register.py trains at their tagged commits.
    assert [line.split(":")[0] for line in started] == [
        "training digits/sgd-lr0.1",
        "training digits/logreg-C1",
        "training release/digits-v1.0.0",
        "training release/digits-v1.1.0",
    ]
    assert (folder / "runs" / "digits" / "sgd-lr0.1" / META_FILE).exists()


def test_stopping_the_live_trainer_ends_it_and_marks_its_run_killed(tmp_path: Path) -> None:
    folder = tmp_path / "sample_project"
    shutil.copytree(sample_project_dir(), folder, ignore=IGNORE)
    proc = start_live(folder, log=lambda _: None)
    try:
        # Deadlines are generous: on a loaded machine the trainer's start (Python, scikit-learn,
        # the data) and its shutdown take many times what they take on an idle one.
        run_folder = wait_for_live_run(folder, proc, timeout=300)
        assert run_folder is not None
        # Its folder exists as the run writer starts: interrupted before its `with` block runs,
        # there is no run to mark yet. Its first line in output.log says it is inside.
        output = run_folder / "output.log"
        deadline = time.monotonic() + 300
        while not (output.exists() and "training " in output.read_text(encoding="utf-8")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert _alive(proc.pid)
        assert stop_live(proc, timeout=120) is True
        assert proc.returncode is not None and not _alive(proc.pid)
        meta = json.loads((run_folder / META_FILE).read_text(encoding="utf-8"))
        assert meta["status"] == "KILLED"
        assert stop_live(proc) is False  # already over: nothing to stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_live_stops_its_trainer_when_mltop_is_ended_and_says_where_the_folder_is(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "demo" / "sample_project"
    shutil.copytree(sample_project_dir(), folder, ignore=IGNORE)
    # `mltop demo --live --no-tui` after its training step (the sweep is tested above and takes
    # half a minute here): the same function, in a process of its own, as the command runs it.
    mltop = subprocess.Popen(
        [sys.executable, "-c", LIVE_DEMO, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    trainer = 0
    try:
        assert mltop.stderr is not None and mltop.stdout is not None
        for line in mltop.stderr:
            found = re.search(r"training in the background \(pid (\d+)\)", line)
            if found:
                trainer = int(found.group(1))
                break
        assert trainer and _alive(trainer)
        mltop.stdout.readline()  # the live run's log is being followed
        mltop.send_signal(signal.SIGTERM)  # as a closed session or `kill` would end it
        rest = mltop.stderr.read()
        mltop.wait(30)
        assert f"stopped the live run (pid {trainer})" in rest
        assert f"the demo folder is {folder}" in rest
        deadline = time.monotonic() + 10
        while _alive(trainer) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(trainer)
    finally:
        for pid in (mltop.pid, trainer):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        mltop.wait()

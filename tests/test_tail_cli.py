"""``mltop tail``: a run's logs for shells and pipes, inert, and followed across rotation."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from mltop.core.cli import main
from mltop.core.logs.cursor import FileEvent
from mltop.core.logs.logmodel import LineMatcher
from mltop.core.logs.logtail import TailOptions, tail_files
from mltop.core.tracking import start_run

HOSTILE_LINES = [
    "2024-05-01 12:00:00,001 INFO epoch 1 \x1b[32mok\x1b[0m",
    "2024-05-01 12:00:01,002 WARNING title \x1b]0;pwned\x07 clipboard \x1b]52;c;AAAA\x07",
    "2024-05-01 12:00:02,003 ERROR [bold]boom[/] \x1b[2J\x1b[H",
    " 10%|#   |\r 60%|######|\r100%|##########|",
]


def _mltop(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "tail", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    with start_run(root / "runs", name="noisy", capture_output=True) as run:
        for line in HOSTILE_LINES:
            print(line)
        run.log(step=0, loss=1.0)
    with start_run(root / "runs", name="quiet") as run:
        run.log(step=0, loss=1.0)
    return root


def test_tail_prints_a_run_log_inert_without_colour_in_a_pipe(project: Path) -> None:
    result = _mltop("noisy", "-C", str(project))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out and "\x07" not in out
    lines = out.splitlines()
    assert lines[0] == "2024-05-01 12:00:00,001 INFO epoch 1 ok"
    assert "␛]0;pwned␇" in lines[1] and "␛]52;c;AAAA␇" in lines[1]
    assert lines[2] == "2024-05-01 12:00:02,003 ERROR [bold]boom[/] "
    assert lines[3] == "100%|##########|"  # the progress bar's last state only


def _tail(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["tail", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tail_greps_inverts_and_counts_lines(project: Path, capsys) -> None:
    root = str(project)
    assert _tail(capsys, "noisy", "-C", root, "--grep", "error|warn")[1].count("\n") == 2
    inverted = _tail(capsys, "noisy", "-C", root, "--grep", "error|warn", "-v")[1]
    assert [line[:4] for line in inverted.splitlines()] == ["2024", "100%"]
    assert _tail(capsys, "noisy", "-C", root, "-n", "1")[1] == "100%|##########|\n"
    hidden = _tail(capsys, "noisy", "-C", root, "-n", "3", "--no-timestamps")[1]
    assert hidden.splitlines()[0].startswith("WARNING title")


def test_tail_a_file_by_path(project: Path) -> None:
    log = next(project.glob("runs/noisy*/output.log"))
    result = _mltop(str(log), "--grep", "INFO")
    assert result.returncode == 0
    assert result.stdout == "2024-05-01 12:00:00,001 INFO epoch 1 ok\n"


def test_tail_exit_codes(project: Path, capsys) -> None:
    code, _, err = _tail(capsys, "no-such-run", "-C", str(project))
    assert code == 2 and "no run named 'no-such-run'" in err
    assert _tail(capsys, "noisy", "-C", str(project), "--grep", "(")[0] == 2
    code, _, err = _tail(capsys, "quiet", "-C", str(project))
    assert code == 1 and "has no log files" in err


def test_colour_output_holds_only_style_escapes(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("\n".join(HOSTILE_LINES) + "\n")
    out, err = io.StringIO(), io.StringIO()
    tail_files([log], out, err, TailOptions(colour=True))
    text = out.getvalue()
    assert "\x1b[" in text  # coloured
    assert not re.sub(r"\x1b\[[0-9;]*m", "", text).count("\x1b")
    assert "\x07" not in text and "[bold]boom[/]" in text


def test_no_color_turns_colour_off(project: Path) -> None:
    from mltop.core.logs.logtail import use_colour

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_colour(Tty())
    os.environ["NO_COLOR"] = "1"
    try:
        assert not use_colour(Tty())
    finally:
        del os.environ["NO_COLOR"]


class _Passes(io.StringIO):
    """The follower's output; it flushes once per pass over its files (and before a notice
    of rotation or truncation, none of which happens while it is counted), so the flushes
    count the passes: a pass that began after a write has seen that write."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


#: Seconds a follow test waits for what it expects: generous, as a loaded machine can stall a
#: process for many seconds; a passing test never waits that long.
DEADLINE = 120


def test_follow_prints_new_lines_across_truncation_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("before 1\nbefore 2\n")
    out, err = _Passes(), io.StringIO()
    stop = threading.Event()
    options = TailOptions(follow=True, last=1, matcher=LineMatcher("e"), poll=0.05)
    thread = threading.Thread(target=tail_files, args=([log], out, err, options, stop))
    thread.start()

    def wait_for(text: str, stream: io.StringIO) -> None:
        deadline = time.monotonic() + DEADLINE
        while text not in stream.getvalue():
            assert time.monotonic() < deadline, (text, stream.getvalue())
            time.sleep(0.01)

    try:
        wait_for("before 2\n", out)
        with open(log, "a") as fh:  # a real writer appends, half a line first
            fh.write("half ")
            fh.flush()
            # Two more passes: the second began after the write, and printed nothing of it.
            passes, deadline = out.flushes, time.monotonic() + DEADLINE
            while out.flushes < passes + 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert "half" not in out.getvalue()
            fh.write("done\n")
        wait_for("half done\n", out)
        os.truncate(log, 0)
        with open(log, "a") as fh:
            fh.write("new start\n")
        wait_for("new start\n", out)
        wait_for(FileEvent.TRUNCATED.value, err)
        os.rename(log, tmp_path / "train.log.1")
        log.write_text("rotated file\n")
        wait_for("rotated file\n", out)
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert not thread.is_alive()
    assert out.getvalue() == "before 2\nhalf done\nnew start\nrotated file\n"
    assert "before 1" not in out.getvalue()


@contextlib.contextmanager
def following(log: Path) -> Iterator[tuple[subprocess.Popen[str], IO[str]]]:
    """``mltop tail -f log`` in a real process, and its output; stopped with ctrl+c (SIGINT)
    when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltop.core.cli", "tail", "-f", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=DEADLINE)


def test_follow_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("first\n")
    with following(log) as (proc, out):
        assert out.readline() == "first\n"
        with open(log, "a") as fh:
            fh.write("second\n")
        assert out.readline() == "second\n"
    assert proc.returncode == 0


def test_a_log_file_on_the_command_line_opens_the_logs_screen(tmp_path: Path, monkeypatch) -> None:
    import mltop.tui.screens.logs.standalone as logs_screen

    opened: list[list[Path]] = []
    monkeypatch.setattr(logs_screen, "run_logs_app", lambda paths: opened.append(paths) or 0)
    log = tmp_path / "job.out"
    log.write_text("hello\n")
    assert main([str(log)]) == 0
    assert opened == [[log.resolve()]]


LIVE_TRAIN = """
import sys, time
from mltop.core.tracking import start_run
assert sys.argv[1:] == ["--live"]
with start_run("runs/digits", name="sgd-live", capture_output=True) as run:
    for step in range(3):
        print(f"epoch {step}", flush=True)
        run.log(step=step, loss=1.0)
        time.sleep(0.2)
"""


def test_demo_live_starts_a_detached_run_and_finds_its_folder(tmp_path: Path) -> None:
    from mltop.core.demo import start_live, wait_for_live_run

    (tmp_path / "train.py").write_text(LIVE_TRAIN)
    proc = start_live(tmp_path, log=lambda m: None)
    try:
        folder = wait_for_live_run(tmp_path, proc, timeout=DEADLINE)
        assert folder is not None and folder.name == "sgd-live"
        assert os.getsid(proc.pid) != os.getsid(0)  # its own session: no terminal of ours
        assert proc.wait(timeout=DEADLINE) == 0
        assert (folder / "output.log").read_text().splitlines() == ["epoch 0", "epoch 1", "epoch 2"]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_help_says_follow_starts_at_the_last_ten_lines(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["tail", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: all; with --follow, the last 10" in help_text
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)))
    with following(log) as (_, out):
        assert [out.readline() for _ in range(10)] == [f"line {i}\n" for i in range(20, 30)]


def test_a_ten_megabyte_line_is_shown_by_its_head_and_says_what_was_cut(tmp_path: Path) -> None:
    from mltop.core.logs.cursor import MAX_LINE_READ

    size = 10 * 1024 * 1024
    line = b"HEAD" + b"m" * (size - 8) + b"TAIL"
    log = tmp_path / "huge.log"
    log.write_bytes(b"before\n" + line + b"\nafter\n")
    out, err = io.StringIO(), io.StringIO()
    assert tail_files([log], out, err, TailOptions()) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "before" and lines[2] == "after"
    assert (
        lines[1] == "HEAD" + "m" * (MAX_LINE_READ - 4) + f" … [{size - MAX_LINE_READ:,} more bytes]"
    )


def test_an_unfinished_long_line_says_what_was_cut_when_printed(tmp_path: Path) -> None:
    log = tmp_path / "partial.log"
    log.write_bytes(b"x" * (5 * 1024 * 1024))  # no newline yet
    out, err = io.StringIO(), io.StringIO()
    tail_files([log], out, err, TailOptions())
    assert out.getvalue().endswith(f" … [{5 * 1024 * 1024 - 256 * 1024:,} more bytes]\n")


WRITER = Path(__file__).parent / "log_writer.py"


def _poll_until(tailer, done, got: list[bytes], timeout: float = 30.0) -> None:
    from mltop.core.logs.cursor import FileEvent as Event

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, got[-5:]
        got.extend(i for i in tailer.poll().items if not isinstance(i, Event))
        time.sleep(0.005)


def test_a_writer_still_appending_to_the_renamed_file_loses_nothing(tmp_path: Path) -> None:
    from mltop.core.logs.tailer import Tailer

    path = tmp_path / "train.log"
    path.write_text("")
    count = 1620
    # A plain logger keeps its descriptor: after the rename it writes on into train.log.1.
    proc = subprocess.Popen([sys.executable, str(WRITER), "lines", str(path), str(count), "0.001"])
    got: list[bytes] = []
    try:
        with Tailer(path) as tailer:
            _poll_until(tailer, lambda: len(got) >= 100, got)
            os.rename(path, tmp_path / "train.log.1")
            path.write_text("fresh\n")  # logrotate's create
            _poll_until(tailer, lambda: proc.poll() is not None and len(got) >= count + 1, got)
            time.sleep(0.05)
            got.extend(tailer.poll().lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert [g for g in got if g != b"fresh"] == [f"line {i}".encode() for i in range(count)]
    assert got.count(b"fresh") == 1


def test_a_file_renamed_away_between_two_looks_is_read_in_between(tmp_path: Path) -> None:
    from mltop.core.logs.tailer import Tailer

    path = tmp_path / "train.log"
    ancient = tmp_path / "train.log.2"
    ancient.write_text("ancient, rotated before tail started\n")
    os.utime(ancient, (time.time() - 3600, time.time() - 3600))
    path.write_text("a1\n")
    with Tailer(path) as tailer:
        assert tailer.poll().lines == [b"a1"]
        # Two rotations before the next look: a -> .1, b written; .2 -> .3, .1 -> .2, b -> .1.
        os.rename(path, tmp_path / "train.log.1")
        path.write_text("b1\nb2\n")
        os.rename(ancient, tmp_path / "train.log.3")
        os.rename(tmp_path / "train.log.1", ancient)
        os.rename(path, tmp_path / "train.log.1")
        path.write_text("c1\n")
        batch = tailer.poll()
    assert batch.lines == [b"b1", b"b2", b"c1"]
    assert batch.items.index(FileEvent.ROTATED) == 2


def test_lines_written_just_before_a_copytruncate_are_read_from_the_copy(tmp_path: Path) -> None:
    import shutil

    from mltop.core.logs.tailer import Tailer

    log = tmp_path / "train.log"
    log.write_text("".join(f"old {i}\n" for i in range(5)))
    with Tailer(log) as tailer:
        assert len(tailer.poll().lines) == 5
        # 15 lines and a partial one, then logrotate's copytruncate, between two looks.
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, "".join(f"late {i}\n" for i in range(15)).encode() + b"half")
            shutil.copy(log, tmp_path / "train.log.1")
            os.ftruncate(fd, 0)
            os.write(fd, b"after\n")
        finally:
            os.close(fd)
        batch = tailer.poll()
    late = [f"late {i}".encode() for i in range(15)]
    assert batch.items == [*late, b"half", FileEvent.TRUNCATED, b"after"]
    assert batch.notes == {16: "the 15 lines written before it were read from its copy train.log.1"}


def test_a_partial_line_read_before_a_copytruncate_is_kept(tmp_path: Path) -> None:
    import shutil

    from mltop.core.logs.tailer import Tailer

    log = tmp_path / "train.log"
    log.write_text("whole\nhalf")
    with Tailer(log) as tailer:
        assert tailer.poll().lines == [b"whole"]
        shutil.copy(log, tmp_path / "train.log.1")
        os.truncate(log, 0)
        log.write_text("after\n")
        batch = tailer.poll()
    assert batch.items == [b"half", FileEvent.TRUNCATED, b"after"] and batch.notes == {}


def test_the_truncation_notice_carries_its_note(tmp_path: Path) -> None:
    from mltop.core.logs.logtail import _Printer

    err = io.StringIO()
    _Printer(io.StringIO(), err, TailOptions(), many=False).notice(
        tmp_path / "a.log", FileEvent.TRUNCATED, "the 3 lines \x1b[2J were read"
    )
    assert err.getvalue() == (
        f"mltop tail: {tmp_path / 'a.log'}: truncated; reading it again from the start "
        "(the 3 lines ␛[2J were read)\n"
    )


def test_an_in_place_truncation_without_a_copy_says_unread_lines_are_lost(tmp_path: Path) -> None:
    from mltop.core.logs.tailer import Tailer

    log = tmp_path / "train.log"
    log.write_text("one\n")
    with Tailer(log) as tailer:
        assert tailer.poll().lines == [b"one"]
        with open(log, "a") as fh:
            fh.write("unread\n")
        os.truncate(log, 0)
        log.write_text("two\n")
        batch = tailer.poll()
    assert batch.items == [FileEvent.TRUNCATED, b"two"]
    assert batch.notes == {0: "what was written since the last line shown, if anything, is lost"}


def test_a_fifo_named_like_a_rotated_copy_never_blocks_the_follower(tmp_path: Path) -> None:
    from mltop.core.logs.tailer import Tailer

    log = tmp_path / "train.log"
    log.write_text("one\n")
    os.mkfifo(tmp_path / "train.log.1")
    batches: list[object] = []

    def follow() -> None:
        with Tailer(log) as tailer:
            tailer.poll()
            os.truncate(log, 0)  # a truncation looks for a copy among the rotated names
            log.write_text("two\n")
            batches.append(tailer.poll())
            os.rename(log, tmp_path / "train.log.2")  # a rotation looks for a middle file
            log.write_text("three\n")
            batches.append(tailer.poll())

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the follower blocked opening a FIFO"
    assert [b.lines for b in batches] == [[b"two"], [b"three"]]

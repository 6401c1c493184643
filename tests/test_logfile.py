"""Log files: the line index, lazy reads, and following a file written by a real process."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mltop.core.logs.cursor import MAX_LINE_READ, FileEvent, last_lines_offset
from mltop.core.logs.filewatch import FileWatch
from mltop.core.logs.logfile import LONG_LINE, LogFile
from mltop.core.logs.logmodel import LineMatcher, LogModel
from mltop.core.logs.tailer import Tailer

WRITER = Path(__file__).parent / "log_writer.py"
FIXTURE_LOG = Path(__file__).parent / "fixtures" / "training-logs" / "python-logging" / "run-a.log"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


class Interactive:
    """A writer process that appends exactly what it is told, and says when it has."""

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(WRITER), "interactive", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def write(self, text: str) -> None:
        assert self.proc.stdin and self.proc.stdout
        escaped = text.replace("\n", "\\n").replace("\r", "\\r")
        self.proc.stdin.write(f"w {escaped}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.write("q\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def writer(tmp_path: Path):
    made: list[Interactive] = []

    def make(path: Path) -> Interactive:
        made.append(Interactive(path))
        return made[-1]

    yield make
    for w in made:  # a writer the test left running is told to quit, or killed if it will not
        if w.proc.poll() is None:
            try:
                w.close()
            finally:
                if w.proc.poll() is None:
                    w.proc.kill()


@contextlib.contextmanager
def followed(path: Path) -> Iterator[tuple[Tailer, LogFile]]:
    """A Tailer and an indexed LogFile over ``path``, both closed when the block ends."""
    with Tailer(path) as tail, LogFile(path) as log:
        yield tail, log


def read_all(log: LogFile) -> list[bytes]:
    while log.refresh(budget=1 << 16).more:
        pass
    return log.lines(0, log.count)


# -- the index ---------------------------------------------------------------------------------


def random_log(rng: random.Random, lines: int) -> bytes:
    parts = []
    for _ in range(lines):
        if rng.random() < 0.02:
            n = rng.randint(LONG_LINE - 10, 3 * MAX_LINE_READ)  # around and past the long-line cut
        else:
            n = rng.randint(0, 300)
        unit = bytes(rng.choice(b"abc \t\x1b\r\xff") for _ in range(min(n, 50)))
        parts.append(unit * (n // 50 + 1))
    return b"\n".join(parts)


@pytest.mark.parametrize("seed", range(6))
def test_index_gives_every_line_back_whatever_the_read_sizes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = random_log(rng, rng.randint(0, 1500))
    if rng.random() < 0.5:
        data += b"\n"
    path = tmp_path / "a.log"
    path.write_bytes(data)
    with LogFile(path) as log:
        while log.refresh(budget=rng.randint(1, 200_000)).more:
            pass
        expected = data.split(b"\n")
        complete, unfinished = expected[:-1], expected[-1]
        assert log.count == len(complete)
        for i in rng.sample(range(len(complete)), min(300, len(complete))):
            got = log.line(i)
            if len(complete[i]) <= MAX_LINE_READ:
                assert got == complete[i]
            else:  # a very long line is read by its ends
                assert len(got) < len(complete[i])
        assert log.has_partial == bool(unfinished)
        # Chunked reading (filters, searches) sees the same lines in order.
        seen = 0
        for first, chunk in log.span(0, log.count):
            for j, part in enumerate(chunk.split(b"\n")[:-1]):
                if len(complete[first + j]) <= MAX_LINE_READ:
                    assert part == complete[first + j]
            seen = first + chunk.count(b"\n")
        assert seen == log.count


def test_index_memory_is_per_page_not_per_line(tmp_path: Path) -> None:
    path = tmp_path / "many.log"
    path.write_bytes(b"x\n" * 2_000_000)  # 2 million lines in 4 MB
    with LogFile(path) as log:
        log.refresh()
        assert log.count == 2_000_000
        assert log.index_bytes < 4_000  # a checkpoint per 64 KiB, 16 bytes each
        assert log.line(1_999_999) == b"x"


def test_a_real_training_log_reads_back_exactly(tmp_path: Path) -> None:
    copy = tmp_path / "run-a.log"
    shutil.copy(FIXTURE_LOG, copy)
    with LogFile(copy) as log:
        lines = read_all(log)
    assert lines == FIXTURE_LOG.read_bytes().split(b"\n")[:-1]
    assert lines[-1].endswith(b"finished: best val_acc=0.9556 in 4.9s")


def test_last_lines_offset_starts_at_the_last_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    path.write_bytes(b"a\nbb\nccc\npartial")
    fd = os.open(path, os.O_RDONLY)
    try:
        size = path.stat().st_size
        assert last_lines_offset(fd, size, 2) == 2
        assert last_lines_offset(fd, size, 0) == 9
        assert last_lines_offset(fd, size, 10) == 0
    finally:
        os.close(fd)


# -- following a real writer -------------------------------------------------------------------


def test_a_half_written_line_waits_until_it_is_complete(tmp_path: Path, writer) -> None:
    path = tmp_path / "train.log"
    w = writer(path)
    w.write("epoch 1 done\nepoch 2 lo")
    with followed(path) as (tail, log):
        assert tail.poll().lines == [b"epoch 1 done"]
        log.refresh()
        assert log.count == 1 and log.has_partial and log.partial() == b"epoch 2 lo"
        w.write("ss=0.3\n")
        assert tail.poll().lines == [b"epoch 2 loss=0.3"]
        assert log.refresh().lines == 1
        assert log.lines(0, 5) == [b"epoch 1 done", b"epoch 2 loss=0.3"]
        assert not log.has_partial


def test_copytruncate_is_read_again_from_the_start(tmp_path: Path, writer) -> None:
    path = tmp_path / "train.log"
    w = writer(path)
    w.write("old 1\nold 2\nold 3\n")
    with followed(path) as (tail, log):
        assert tail.poll().lines == [b"old 1", b"old 2", b"old 3"]
        log.refresh()
        # logrotate's copytruncate: copy the file away, cut it to zero in place.
        shutil.copy(path, tmp_path / "train.log.1")
        os.truncate(path, 0)
        w.write("new 1\n")
        batch = tail.poll()
        assert batch.items == [FileEvent.TRUNCATED, b"new 1"]
        change = log.refresh()
        assert change.truncated and log.generation == 1
        assert log.lines(0, 10) == [b"new 1"]


def test_truncated_and_rewritten_past_the_old_size_is_still_noticed(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    path.write_bytes(b"first run\n")
    tail = Tailer(path)
    assert tail.poll().lines == [b"first run"]
    path.write_bytes(b"second run, a longer first line\nand more\n")  # truncates and rewrites
    assert tail.poll().items == [
        FileEvent.TRUNCATED,
        b"second run, a longer first line",
        b"and more",
    ]
    tail.close()


def test_rotation_is_followed_without_losing_or_repeating_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    path.write_text("")
    count = 3000
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), "watched", str(path), str(count), "0.0005"],
    )
    got: list[bytes] = []
    events: list[FileEvent] = []
    rotated = 0
    with followed(path) as (tail, log):
        while True:
            running = proc.poll() is None
            for item in tail.poll().items:
                (events if isinstance(item, FileEvent) else got).append(item)
            log.refresh()
            # Rotate twice while the writer is busy, as logrotate (create mode) does.
            if rotated < 2 and len(got) > (rotated + 1) * count // 3:
                rotated += 1
                os.rename(path, tmp_path / f"train.log.{rotated}")
            if not running:
                time.sleep(0.05)  # the last bytes, and the switch to the newest file
                for _ in range(3):
                    for item in tail.poll().items:
                        (events if isinstance(item, FileEvent) else got).append(item)
                    log.refresh()
                break
            time.sleep(0.001)
        assert proc.returncode == 0
        expected = [f"seq {i}".encode() for i in range(count)]
        assert got == expected
        assert events.count(FileEvent.ROTATED) == 2
        # The indexed file keeps the rotated files' lines readable, in order.
        assert log.rotations == 2
        assert log.lines(0, log.count) == expected


def test_a_deleted_file_says_so(tmp_path: Path, writer) -> None:
    path = tmp_path / "train.log"
    w = writer(path)
    w.write("only line\n")
    with followed(path) as (tail, log):
        assert tail.poll().lines == [b"only line"]
        log.refresh()
        path.unlink()
        w.write("written after the unlink\n")  # the writer still holds the file open
        wait_until(lambda: FileEvent.DELETED in tail.poll().items or tail.deleted, timeout=5)
        wait_until(lambda: log.refresh().deleted or log.deleted, timeout=5)
        assert log.deleted
        assert log.lines(0, 5) == [b"only line", b"written after the unlink"]


def test_a_missing_file_is_followed_once_it_appears(tmp_path: Path, writer) -> None:
    path = tmp_path / "later.log"
    log = LogFile(path)
    assert log.missing and log.count == 0
    w = writer(path)
    w.write("hello\n")
    change = log.refresh()
    assert change.appeared and log.lines(0, 5) == [b"hello"]
    log.close()
    w.close()


def test_file_watch_wakes_on_a_write_by_another_process(tmp_path: Path, writer) -> None:
    path = tmp_path / "train.log"
    path.write_text("")
    with FileWatch([path]) as watch:
        time.sleep(0.2)  # the watch is set up
        watch.wait(0)  # forget setup noise
        w = writer(path)
        w.write("line\n")
        assert watch.wait(5.0)
        w.close()


# -- the view model ----------------------------------------------------------------------------


def test_model_filter_keeps_up_with_a_growing_file(tmp_path: Path, writer) -> None:
    path = tmp_path / "train.log"
    w = writer(path)
    w.write("INFO a\nERROR b\nINFO c\n")
    model = LogModel(path)
    try:
        model.set_filter(LineMatcher("error"))
        model.refresh()
        assert [model.plain(r) for r in range(model.rows)] == ["ERROR b"]
        w.write("ERROR d\nINFO e\n")
        model.refresh()
        assert [model.plain(r) for r in range(model.rows)] == ["ERROR b", "ERROR d"]
        model.set_filter(LineMatcher("error", invert=True))
        model.refresh()
        assert [model.plain(r) for r in range(model.rows)] == ["INFO a", "INFO c", "INFO e"]
    finally:
        model.close()
        w.close()


def test_model_search_finds_next_and_previous_and_wraps(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    marks = {5, 50, 500}
    path.write_text("".join(f"step {i} {'nan' if i in marks else 'ok'}\n" for i in range(800)))
    model = LogModel(path)
    model.refresh(budget=None)
    nan = LineMatcher("nan")
    assert model.find(nan, -1) == (5, False)
    assert model.find(nan, 5) == (50, False)
    assert model.find(nan, 500) == (5, True)
    assert model.find(nan, 50, forward=False) == (5, False)
    assert model.find(nan, 5, forward=False) == (500, True)
    assert model.find(LineMatcher("absent"), 0) is None
    model.close()


def test_filter_fast_path_agrees_with_line_by_line_matching() -> None:
    rng = random.Random(7)
    words = ["loss", "ERROR", "Warn", "a", "B", " ", "\t", "x=1", "[z]", "\x07", "\x0b", "\x7f"]
    patterns = ["loss", "^a", "a$", "error|warn", r"\s", r"\S", "x=\\d", "^$", r"\bb\b", "[^a-z ]"]
    for _ in range(200):
        lines = ["".join(rng.choice(words) for _ in range(rng.randint(0, 6))) for _ in range(20)]
        data = ("\n".join(lines) + "\n").encode()
        for pattern in patterns:
            for invert in (False, True):
                matcher = LineMatcher(pattern, invert=invert)
                raws = data.split(b"\n")[:-1]
                expected = [10 + i for i, raw in enumerate(raws) if matcher.matches_raw(raw)]
                assert list(matcher.scan(10, data)) == expected, (pattern, invert, data)

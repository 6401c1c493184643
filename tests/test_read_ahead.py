"""Reading the next piece of a source on a thread of its own while the caller works on the last."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from mltop.core.common.read_ahead import read_ahead


class Source:
    """A source read piece by piece that notes who read it, when, and whether it was closed."""

    def __init__(self, pieces: int, fail_at: int | None = None, pause: float = 0.0) -> None:
        self.pieces = pieces
        self.fail_at = fail_at
        self.pause = pause
        self.readers: set[str] = set()
        self.read = 0
        self.closed = False
        self.in_use = threading.Event()

    def __iter__(self) -> Iterator[int]:
        try:
            for n in range(self.pieces):
                self.in_use.set()
                self.readers.add(threading.current_thread().name)
                time.sleep(self.pause)
                if n == self.fail_at:
                    raise OSError(f"piece {n} is damaged")
                self.read += 1
                self.in_use.clear()
                yield n
        finally:
            self.closed = True


def test_every_piece_arrives_in_order_read_on_another_thread() -> None:
    source = Source(50)
    with read_ahead(iter(source), threading.Lock(), "reader") as pieces:
        assert list(pieces) == list(range(50))
    assert source.readers == {"reader"}
    assert source.closed


def test_what_reading_raised_is_raised_after_the_pieces_before_it() -> None:
    source = Source(10, fail_at=3)
    got: list[int] = []
    with (
        read_ahead(iter(source), threading.Lock(), "reader") as pieces,
        pytest.raises(OSError, match="piece 3 is damaged"),
    ):
        for piece in pieces:
            got.append(piece)
    assert got == [0, 1, 2]
    assert source.read == 3  # nothing read past the failure


def test_the_reader_stays_one_piece_ahead_of_the_caller() -> None:
    source = Source(10)
    with read_ahead(iter(source), threading.Lock(), "reader") as pieces:
        for piece in pieces:
            time.sleep(0.01)  # the caller is the slow one
            assert source.read <= piece + 2


def test_leaving_early_stops_the_reader_before_the_block_returns() -> None:
    """The caller may close the source as soon as the block ends: nothing reads it after."""
    source = Source(1000, pause=0.002)
    with read_ahead(iter(source), threading.Lock(), "reader") as pieces:
        assert next(pieces) == 0
    read = source.read
    assert source.closed  # the generator's own cleanup ran
    assert read <= 2  # the one taken and the one read ahead: never more
    time.sleep(0.05)
    assert source.read == read
    assert not any(t.name == "reader" for t in threading.enumerate())


def test_an_error_in_the_caller_stops_the_reader_too() -> None:
    source = Source(1000, pause=0.002)
    with (
        pytest.raises(ValueError),
        read_ahead(iter(source), threading.Lock(), "reader") as pieces,
    ):
        next(pieces)
        raise ValueError("the writer failed")
    assert source.closed
    assert not any(t.name == "reader" for t in threading.enumerate())


def test_a_block_left_before_the_first_piece_stops_the_reader() -> None:
    source = Source(5)
    with read_ahead(iter(source), threading.Lock(), "reader"):
        pass
    assert source.read == 0
    assert not any(t.name == "reader" for t in threading.enumerate())


def test_the_caller_and_the_reader_take_turns_on_the_lock() -> None:
    """The caller reads more from the same connection under the lock the reader holds while it
    reads a piece: the two never use the source at once."""
    source = Source(40, pause=0.001)
    lock = threading.Lock()
    overlaps = 0
    with read_ahead(iter(source), lock, "reader") as pieces:
        for _ in pieces:
            with lock:
                overlaps += source.in_use.is_set()
                time.sleep(0.001)
    assert overlaps == 0
    assert source.read == 40

"""Reading a source's next piece on a second thread while the caller writes the last one.

An import alternates between two kinds of work: reading rows out of a source (sqlite3 makes
Python objects of them, releasing the GIL inside SQLite) and writing them into the store
(DuckDB compresses and commits without the GIL). One after the other, each waits for the other;
with the next piece read while the last is written, the second core works too. A 100,000-run
MLflow database imported in 13.2 s one after the other and 10.6-10.9 s read ahead, for about
the same CPU (bench/scale_mlflow.py).

The source's connection is shared, so the caller and the reader take turns on it through one
lock: the reader holds it while it reads a piece, the caller whenever it reads more from the
same connection (a history too long to come with its piece).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar, cast

T = TypeVar("T")

_END = object()

# What the reader hands over: a piece (or _END), or what reading raised.
_Outcome = tuple[object, BaseException | None]


@contextlib.contextmanager
def read_ahead(items: Iterator[T], lock: threading.Lock, name: str) -> Iterator[Iterator[T]]:
    """``items``, each read on a thread of its own while the caller works on the one before.

    What the iterator raises is raised to the caller in its place, and ends the reading. At most
    one piece is read ahead: the reader starts on the next one when the caller takes the last.
    When the block ends, however it ends, the reader is stopped and waited for before the block
    returns, so nothing reads the source after: the caller may close it at once.
    """
    slot: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
    wanted = threading.Semaphore(0)  # one permit per piece the reader may read
    stop = threading.Event()

    def read() -> None:
        while True:
            wanted.acquire()
            if stop.is_set():
                return
            try:
                with lock:
                    item = next(items, _END)
            except BaseException as exc:  # handed to the caller, raised in its thread
                slot.put((None, exc))
                return
            slot.put((item, None))
            if item is _END:
                return

    def taken() -> Iterator[T]:
        wanted.release()
        while True:
            item, error = slot.get()
            if error is not None:
                raise error
            if item is _END:
                return
            wanted.release()  # the next one is read while this one is worked on
            yield cast(T, item)

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        yield taken()
    finally:
        stop.set()
        wanted.release()  # wakes a reader that waits for its next permit
        reader.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()  # a generator's own cleanup, in the caller's thread, the reader gone

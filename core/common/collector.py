"""Holding Python's cyclic garbage collector off while a bulk import runs.

A first import of a hundred thousand run folders makes its objects a batch at a time (file
states, records, params of 5,000 runs) and drops them together when the batch is written; it
makes no reference cycles (over a 10,000-run import the collector found some 900 objects to
free, all from loading modules). But a batch's objects outlive the young generations, so each
batch pushed the collector into several full passes over every live object: 1.8 s of the
20 s of CPU a 100,000-run import took (bench/scale.py). Reference counting frees the batches
all the same; the collector runs again once the import is over.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holds = 0
_was_enabled = False


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """The cyclic collector off for the block, back as it was after it.

    Holds nest and overlap across threads (the app's scan beside a watcher): the collector is
    turned off by the first and on again by the last, and only if it was on before the first.
    """
    global _holds, _was_enabled
    with _lock:
        if _holds == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holds += 1
    try:
        yield
    finally:
        with _lock:
            _holds -= 1
            if _holds == 0 and _was_enabled:
                gc.enable()

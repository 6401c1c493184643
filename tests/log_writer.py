"""A real writer process for the log-following tests: ``python log_writer.py MODE PATH ...``.

* ``lines PATH N DELAY``      append ``line <i>`` N times, flushing each, DELAY seconds apart
* ``watched PATH N DELAY``    the same through ``logging.handlers.WatchedFileHandler``, which
                              reopens the path after a rotation (as logrotate's users rely on)
* ``interactive PATH``        read commands from stdin and answer ``ok`` after each:
                              ``w <text>`` appends text (``\\n``/``\\r`` escapes allowed),
                              ``q`` quits

The file is opened in append mode, as loggers do, so a copytruncate makes it write from 0 again.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time


def lines(path: str, count: int, delay: float) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(f"line {i}\n")
            fh.flush()
            if delay:
                time.sleep(delay)


def watched(path: str, count: int, delay: float) -> None:
    handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("writer")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    for i in range(count):
        log.info("seq %d", i)
        if delay:
            time.sleep(delay)
    handler.close()


def interactive(path: str) -> None:
    with open(path, "a", encoding="utf-8", newline="") as fh:
        for command in sys.stdin:
            command = command.rstrip("\n")
            if command == "q":
                break
            if command.startswith("w "):
                text = command[2:].replace("\\n", "\n").replace("\\r", "\r")
                fh.write(text)
                fh.flush()
            sys.stdout.write("ok\n")
            sys.stdout.flush()


if __name__ == "__main__":
    mode, target, *rest = sys.argv[1:]
    if mode == "lines":
        lines(target, int(rest[0]), float(rest[1]))
    elif mode == "watched":
        watched(target, int(rest[0]), float(rest[1]))
    elif mode == "interactive":
        interactive(target)
    else:
        raise SystemExit(f"unknown mode {mode}")

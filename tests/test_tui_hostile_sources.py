"""The app over a folder holding a FIFO named like a source finishes indexing and says why.

Before, the ingest worker blocked in ``open()`` on the FIFO and the app sat at "indexing 0%".
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from conftest import write_run
from tui_pilot import SIZE, make_app, names, settled, until


async def test_a_fifo_named_like_a_metrics_file_does_not_stall_indexing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    write_run(root / "runs", "good", steps=4)
    stuck = write_run(root / "runs", "stuck", steps=2)
    fifo = stuck / "metrics.jsonl"
    fifo.unlink()
    os.mkfifo(fifo)
    # On a regression the ingest worker blocks opening the FIFO, and the app with it: a writer
    # that opens the FIFO a while later releases it, so the test fails instead of hanging.
    release = threading.Timer(30, _open_for_writing, [fifo])
    release.start()
    app = make_app(root, tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.last_report is not None and not app.ingesting, 90)
            screen = await settled(pilot)
            assert release.is_alive(), "indexing waited for a writer on the FIFO"
            assert sorted(names(screen)) == ["good", "stuck"]
            assert [str(p) for p in app.last_report.problems] == [
                f"{fifo}: cannot read (a FIFO, not a regular file)"
            ]
    finally:
        release.cancel()


def _open_for_writing(fifo: Path) -> None:
    with contextlib.suppress(OSError):  # no reader: nothing was blocked
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

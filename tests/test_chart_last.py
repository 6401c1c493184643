"""A chart's "last" is the panel's "last" and the tracker's own latest value, also when a run
logged its last step more than once (a resumed TensorBoard run writing that step again)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_import_tensorboard import _event_file, _import, _scalar, _version

from mltop.core.store import open_memory_store


def resumed_run(root: Path) -> None:
    """Steps 0..9, then the run resumed and wrote step 9 again, twenty times (the last write,
    the one TensorBoard shows, is 20.0)."""
    first = [_version(1.0e9)] + [_scalar(1.0e9 + s, s, "loss", 10.0 - s) for s in range(10)]
    _event_file(root / "run", "events.out.tfevents.1000000000.host.1.0", first)
    again = [_version(1.0e9 + 100)] + [
        _scalar(1.0e9 + 100 + i, 9, "loss", float(i)) for i in range(1, 21)
    ]
    _event_file(root / "run", "events.out.tfevents.1000000100.host.1.1", again)


@pytest.mark.parametrize("buckets", [1, 3, 10, 80])
@pytest.mark.parametrize("x", ["step", "time"])
def test_chart_last_is_the_panel_last_and_the_last_written_value(
    tmp_path: Path, buckets: int, x: str
) -> None:
    resumed_run(tmp_path)
    store = open_memory_store()
    _import(store, tmp_path)
    (run,) = store.runs()
    summary = store.summaries([run.id])[run.id]["loss"]
    assert summary.last == 20.0
    chart = store.history_buckets(run.id, "loss", buckets, x=x)
    assert chart.column("y_last")[-1].as_py() == summary.last

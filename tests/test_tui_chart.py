"""The braille line chart, drawn without an app: spikes survive, scales and smoothing behave."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from rich.style import Style

from mltop.core.store import open_memory_store
from mltop.tui.keymap import load_keymap
from mltop.tui.widgets.chart import BRAILLE, ChartStyles, Series, draw_chart, ema

STYLES = ChartStyles(*(Style() for _ in range(6)))


def _series(values: list[float] | np.ndarray, buckets: int = 60, ts: bool = True) -> Series:
    store = open_memory_store()
    n = len(values)
    store.add_points(
        pa.Table.from_pydict(
            {
                "run_id": pa.array(["r"] * n, pa.string()),
                "key": pa.array(["m"] * n, pa.string()),
                "step": pa.array(range(n), pa.int64()),
                "ts": pa.array([1.7e9 + i if ts else None for i in range(n)], pa.float64()),
                "value": pa.array(values, pa.float64()),
            }
        )
    )
    return Series.from_table(store.history_buckets("r", "m", buckets), buckets)


def _text(lines: list) -> list[str]:  # type: ignore[type-arg]
    return ["".join(seg.text for seg in line) for line in lines]


def _dots(row: str) -> int:
    return sum(bin(ord(c) - BRAILLE).count("1") for c in row if BRAILLE <= ord(c) < BRAILLE + 256)


def test_title_axis_labels_and_last_value() -> None:
    series = _series([1.0 / (i + 1) for i in range(50)])
    lines = _text(draw_chart(series, series_width := 40, 10, STYLES, title="loss"))
    assert len(lines) == 10
    assert all(len(line) == series_width for line in lines)
    assert lines[0].startswith("loss") and lines[0].rstrip().endswith("last 0.02")
    assert lines[1].lstrip().startswith("1┤")
    assert lines[-1].strip().startswith("└0") and lines[-1].rstrip().endswith("49")


def test_a_single_spike_among_a_million_points_is_drawn() -> None:
    values = np.zeros(1_000_000)
    values[777_777] = 10.0
    series = _series(values, buckets=66, ts=False)
    lines = _text(draw_chart(series, 40, 10, STYLES, title="m"))
    top = lines[1]
    assert _dots(top) > 0  # the top row holds the spike
    assert lines[1].lstrip().startswith("10┤")


def test_log_scale_survives_zero_and_negative_values() -> None:
    series = _series([0.0, -1.0, 10.0, 100.0, 1000.0])
    lines = _text(draw_chart(series, 40, 8, STYLES, log_y=True))
    assert lines[1].lstrip().startswith("1e+03┤") or "1000" in lines[1]
    assert sum(_dots(line) for line in lines[1:-1]) > 0


def test_non_finite_values_are_counted_not_plotted() -> None:
    series = _series([1.0, math.nan, 2.0, math.inf, 3.0])
    lines = _text(draw_chart(series, 44, 8, STYLES, title="m"))
    assert "2 non-finite" in lines[0]


def test_time_axis_labels_are_durations_since_the_first_point() -> None:
    store = open_memory_store()
    n = 120
    store.add_points(
        pa.Table.from_pydict(
            {
                "run_id": pa.array(["r"] * n, pa.string()),
                "key": pa.array(["m"] * n, pa.string()),
                "step": pa.array(range(n), pa.int64()),
                "ts": pa.array([1.7e9 + i for i in range(n)], pa.float64()),
                "value": pa.array([float(i) for i in range(n)], pa.float64()),
            }
        )
    )
    series = Series.from_table(store.history_buckets("r", "m", 80, x="time"), 80)
    lines = _text(draw_chart(series, 50, 8, STYLES, x_kind="time"))
    assert lines[-1].strip().startswith("└0.0s")
    assert lines[-1].rstrip().endswith("1m59s")


def test_empty_and_loading_states_say_so() -> None:
    assert "loading" in "".join(_text(draw_chart(None, 30, 6, STYLES, message="loading…")))
    empty = Series.from_table(open_memory_store().history_buckets("nope", "m", 10), 10)
    assert "no points" in "".join(_text(draw_chart(empty, 30, 6, STYLES, message="no points")))


def test_ema_is_debiased_and_skips_gaps() -> None:
    values = np.array([1.0, 1.0, math.nan, 1.0])
    smoothed = ema(values, 0.9)
    assert smoothed[0] == pytest.approx(1.0)  # debiased: no pull towards zero
    assert math.isnan(smoothed[2])
    assert smoothed[3] == pytest.approx(1.0)
    assert list(ema(values, 0.0)[[0, 1, 3]]) == [1.0, 1.0, 1.0]


def test_keymap_file_flattens_tables_and_reports_mistakes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "keymap.toml"
    good.write_text('"runs.sort" = "f2"\n[detail]\nlog_y = ["f8", "f9"]\n')
    keymap, problem = load_keymap(good)
    assert problem is None
    assert keymap == {"runs.sort": "f2", "detail.log_y": "f8,f9"}
    bad = tmp_path / "bad.toml"
    bad.write_text("runs.sort = = 1\n")
    keymap, problem = load_keymap(bad)
    assert keymap == {} and problem is not None and "bad.toml" in problem
    assert load_keymap(tmp_path / "missing.toml") == ({}, None)

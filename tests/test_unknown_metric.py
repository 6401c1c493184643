"""A filter or sort on a metric no run has says so (CLI on stderr, TUI under the filter) and
names the closest metrics, instead of quietly matching nothing or sorting nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.tui import on_runs
from textual.widgets import Static
from tui_pilot import settled

SMALL = (80, 24)


def _mltop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_filter_on_an_unknown_metric_says_so_on_stderr(runs_root: Path) -> None:
    result = _mltop("runs", str(runs_root), "--json", "--filter", "metrics.nosuch > 0.9")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
    assert "no run has a metric 'nosuch'; the metrics are " in result.stderr
    assert "acc" in result.stderr and "loss" in result.stderr


def test_cli_sort_on_a_misspelt_metric_names_the_closest(runs_root: Path) -> None:
    result = _mltop("runs", str(runs_root), "--json", "--sort=-metrics.los")
    assert result.returncode == 0
    assert len(json.loads(result.stdout)) == 4  # stdout stays clean JSON
    assert "mltop: no run has a metric 'los'; closest: loss" in result.stderr


def test_cli_known_metrics_give_no_warning(runs_root: Path) -> None:
    result = _mltop("runs", str(runs_root), "--filter", "metrics.acc > 0", "--sort", "metrics.loss")
    assert result.returncode == 0
    assert "no run has" not in result.stderr


async def test_tui_says_under_the_filter_that_no_run_has_the_metric(
    runs_root: Path, tmp_path: Path
) -> None:
    async with on_runs(runs_root, tmp_path, SMALL) as (_, pilot, screen):
        screen.set_filter("metrics.los < 0.5")
        await settled(pilot)
        bar = screen.filter_bar
        assert bar.has_class("-warning")
        warning = str(bar.query_one(".filter--warning", Static).render())
        assert "no run has a metric 'los'; closest: loss" in warning
        screen.set_filter("metrics.loss < 0.5")
        await settled(pilot)
        assert not bar.has_class("-warning")

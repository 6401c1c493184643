"""The Monitor screen over a real project: the sample's served log (written by its own serve.py
in a subprocess) with its .mltop/monitor.yaml, and the real Evidently workspace fixture beside
it. Driven through the app with Pilot at 120x40 and 80x24."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers.tui import pushed, running
from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from tui_pilot import until

from mltop.core.common.formatting import fit_value
from mltop.core.demo import sample_project_dir
from mltop.core.monitor import MonitorReport, build_report, load_config
from mltop.core.monitor.sources import find_monitor_sources
from mltop.tui.screens.monitor.feature import FeatureScreen
from mltop.tui.screens.monitor.screen import MonitorScreen
from mltop.tui.widgets.keybar import KeyBar

FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"
ORACLE = json.loads((FIXTURES / "oracle_evidently_workspace.json").read_text(encoding="utf-8"))
WIDE, SMALL = (120, 40), (80, 24)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor") / "proj"
    (root / ".mltop").mkdir(parents=True)
    sample = sample_project_dir()
    shutil.copy(sample / ".mltop" / "monitor.yaml", root / ".mltop" / "monitor.yaml")
    for name in ("serve.py", "prepare.py", "params.yaml"):
        shutil.copy(sample / name, root / name)
    subprocess.run(
        [sys.executable, "serve.py"], cwd=root, check=True, capture_output=True, timeout=120
    )
    with tarfile.open(FIXTURES / "evidently_workspace.tar.gz") as tar:
        tar.extractall(root / "reports", filter="data")
    return root


@pytest.fixture(scope="module")
def report(project: Path) -> MonitorReport:
    return build_report(load_config(project / ".mltop" / "monitor.yaml"))


async def open_monitor(pilot: Pilot) -> MonitorScreen:
    screen = await pushed(pilot, "m", MonitorScreen)
    await until(pilot, lambda: screen.settled and screen.view is not None, timeout=60)
    return screen


def text_of(screen: object, selector: str) -> str:
    """What a Static shows, as plain text (a Rich group rendered at the screen's width)."""
    content = screen.query_one(selector, Static).content  # type: ignore[attr-defined]
    if isinstance(content, Text):
        return content.plain
    console = Console(width=screen.size.width, record=True, file=io.StringIO())  # type: ignore[attr-defined]
    console.print(content)
    return console.export_text()


def table_rows(screen: MonitorScreen) -> dict[str, list[str]]:
    table = screen.query_one("#mon-table", DataTable)
    rows = {}
    for i in range(table.row_count):
        cells = [c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(i)]
        rows[cells[0]] = cells
    return rows


def test_the_project_holds_both_kinds_of_monitor(project: Path) -> None:
    sources = find_monitor_sources(project)
    assert [(s.kind, s.name) for s in sources] == [
        ("monitor", "proj"),
        ("evidently", "reports/evidently_workspace"),
    ]
    # hidden folders and virtualenvs are not looked into
    (project / ".cache" / ".mltop").mkdir(parents=True)
    (project / ".cache" / ".mltop" / "monitor.yaml").write_text("log: x\n", encoding="utf-8")
    try:
        assert len(find_monitor_sources(project)) == 2
    finally:
        shutil.rmtree(project / ".cache")


async def test_m_shows_one_row_per_feature_as_the_engine_computed_it(
    project: Path, report: MonitorReport, tmp_path: Path
) -> None:
    async with running(project, tmp_path, WIDE, scan=False) as (_, pilot):
        screen = await open_monitor(pilot)
        rows = table_rows(screen)
        assert list(rows) == list(report.roles.features)
        for feature, drift in report.overall.drift.items():
            cells = rows[feature]
            assert cells[2] == fit_value(drift.statistic, 7)
            assert cells[3] == fit_value(drift.threshold, 5)
            # the verdict carries a symbol as well as a colour: it reads without colour
            assert cells[4] == ("✗ drift" if drift.drifted else "✓ ok")
            assert 6 <= len(cells[5]) <= len(report.windows)  # the sparkline, one cell a window
        assert rows["Channel"][7].startswith("⚠") and "partner_api" in rows["Channel"][7]
        assert rows["Credit utilization"][6].startswith("⚠")
        summary = text_of(screen, "#mon-summary")
        dataset = report.overall.dataset_drift
        assert f"drift: {dataset.drifted_count} of {dataset.tested_count} features" in summary
        band = text_of(screen, "#mon-band")
        for label in ("f1", "labelled", "acc Region=south", "parity Region", "drift share"):
            assert label in band
        assert "predictions.parquet 5," in text_of(screen, "#mon-header")


async def test_arrows_step_through_windows_and_v_through_versions(
    project: Path, report: MonitorReport, tmp_path: Path
) -> None:
    async with running(project, tmp_path, WIDE, scan=False) as (_, pilot):
        screen = await open_monitor(pilot)
        await pilot.press("left")
        last = report.windows[-1]
        assert screen.section == len(report.windows) - 1
        assert last.start[:10] in text_of(screen, "#mon-header")
        income = last.drift["Income (k)"]
        assert table_rows(screen)["Income (k)"][2] == fit_value(income.statistic, 7)
        await pilot.press("right")
        assert screen.section == -1 and "whole log" in text_of(screen, "#mon-header")
        await pilot.press("v")
        assert screen.version == "v1"
        assert "version v1" in text_of(screen, "#mon-header")
        assert "f1 v1" in text_of(screen, "#mon-band")
        await pilot.press("v", "v")
        assert screen.version is None


async def test_enter_opens_distributions_and_window_by_window_values(
    project: Path, report: MonitorReport, tmp_path: Path
) -> None:
    async with running(project, tmp_path, WIDE, scan=False) as (_, pilot):
        await open_monitor(pilot)
        feature = await pushed(pilot, "enter", FeatureScreen)
        assert isinstance(feature, FeatureScreen) and feature.feature == "Income (k)"
        body = text_of(feature, "#feat-content")
        assert "reference against whole log" in body and "Income (k) by day" in body
        assert sum(w.start[:10] in body for w in report.windows) == len(report.windows)
        assert "█" in body
        await pushed(pilot, "escape", MonitorScreen)


async def test_n_shows_the_evidently_workspace_as_evidently_read_it(
    project: Path, tmp_path: Path
) -> None:
    async with running(project, tmp_path, WIDE, scan=False) as (app, pilot):
        screen = await open_monitor(pilot)
        await pilot.press("n")
        await until(pilot, lambda: screen.settled and screen.view.kind == "evidently")
        latest = ORACLE["projects"][0]["snapshots"][-1]
        rows = table_rows(screen)
        assert list(rows) == list(latest["columns"])
        for column, oracle in latest["columns"].items():
            assert rows[column][2] == fit_value(oracle["score"], 7)
            assert rows[column][4] == ("✗ drift" if oracle["drift_detected"] else "✓ ok")
        assert "(Evidently)" in text_of(screen, "#mon-header")
        assert "✗ dataset drift" in text_of(screen, "#mon-summary")
        await pushed(pilot, "enter", FeatureScreen)
        assert "reference (Evidently's bins)" in text_of(app.screen, "#feat-content")


async def test_at_80x24_the_table_band_and_keys_fit(project: Path, tmp_path: Path) -> None:
    async with running(project, tmp_path, SMALL, scan=False) as (_, pilot):
        screen = await open_monitor(pilot)
        table = screen.query_one("#mon-table", DataTable)
        assert table.virtual_size.width <= SMALL[0]
        assert table.region.bottom <= screen.query_one("#mon-band").region.y
        band = screen.query_one("#mon-band")
        assert band.region.bottom <= SMALL[1] - 1
        assert all(len(line) <= SMALL[0] for line in text_of(screen, "#mon-band").splitlines())
        keys = screen.query_one(KeyBar).render()
        assert str(keys).rstrip().endswith("q quit  ? help")


async def test_a_folder_without_monitors_says_how_to_get_one(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    async with running(tmp_path / "empty", tmp_path, SMALL, scan=False) as (_, pilot):
        screen = await pushed(pilot, "m", MonitorScreen, lambda s: s.settled)
        assert ".mltop/monitor.yaml" in text_of(screen, "#mon-summary")


async def test_a_monitor_that_cannot_be_computed_is_one_inert_line(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    (root / ".mltop").mkdir(parents=True)
    (root / ".mltop" / "monitor.yaml").write_text(
        'log: "gone\\e[31m[red]x[/red].parquet"\nreference: ref.parquet\n', encoding="utf-8"
    )
    async with running(root, tmp_path, SMALL, scan=False) as (_, pilot):
        screen = await pushed(pilot, "m", MonitorScreen, lambda s: s.settled)
        line = text_of(screen, "#mon-summary")
        assert line.startswith("✗ ") and "gone" in line and "\n" not in line
        assert "\x1b" not in line and "␛[31m[red]x[/red]" in line


async def test_w_computes_weekly_windows_and_verdicts_read_without_colour(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    async with running(project, tmp_path, WIDE, scan=False) as (app, pilot):
        screen = await open_monitor(pilot)
        assert "daily" in text_of(screen, "#mon-header")
        await pilot.press("w")  # the config's daily windows -> weekly
        await until(pilot, lambda: screen.settled and "weekly" in text_of(screen, "#mon-header"))
        # ISO weeks from Monday: 2026-11-01 is a Sunday, so the 30 days touch 6 weeks
        assert screen.view is not None and len(screen.view.labels) == 6
        # colour is off; the verdicts still say drift or not with their symbols
        assert app.no_color
        verdicts = {cells[4] for cells in table_rows(screen).values()}
        assert verdicts <= {"✗ drift", "✓ ok", "– n/a"} and "✗ drift" in verdicts

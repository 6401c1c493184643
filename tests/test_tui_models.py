"""The Models screen over the real MLflow registry fixture, driven with Pilot (80x24, 120x40)."""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.tui import on_runs, palette_titles, pushed, running
from rich.text import Text
from textual.pilot import Pilot
from tui_pilot import until

from mltop.core.compare.diff import Verdict
from mltop.tui.app import MltopApp
from mltop.tui.screens.compare.screen import CompareScreen
from mltop.tui.screens.help import HelpScreen
from mltop.tui.screens.registry.screen import ModelsScreen
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.widgets.compare_table import verdict_styles

FIXTURE = Path(__file__).parent / "fixtures" / "mlflow-registry"


@pytest.fixture
def registry_root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    with tarfile.open(FIXTURE / "sqlite-store.tar.gz") as tar:
        tar.extractall(root, filter="data")
    return root


def _cells(screen: ModelsScreen, table_id: str) -> list[list[str]]:
    table = screen.query_one(table_id)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@contextlib.asynccontextmanager
async def on_models(
    root: Path, tmp_path: Path, size: tuple[int, int]
) -> AsyncIterator[tuple[MltopApp, Pilot, ModelsScreen]]:
    """The app over ``root`` (not following it live) showing the Models screen, once the first
    scan has ended and the screen has read the registry."""
    async with on_runs(root, tmp_path, size, live=False) as (app, pilot, _):
        await until(pilot, lambda: not app.ingesting)
        yield app, pilot, await pushed(pilot, "M", ModelsScreen, lambda s: s.settled)


async def _pick_model(pilot, screen: ModelsScreen, name: str) -> None:  # type: ignore[no-untyped-def]
    names = [row[0] for row in _cells(screen, "#models-table")]
    screen.models_table.focus()
    screen.models_table.move_cursor(row=names.index(name))
    await until(
        pilot, lambda: screen.settled and screen.board and screen.board.listing.model.name == name
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_models_and_versions_with_runs_and_changes_against_champion(
    registry_root: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    async with on_models(registry_root, tmp_path, size) as (app, pilot, screen):
        models = _cells(screen, "#models-table")
        assert [row[:4] for row in models] == [
            ["diabetes-regressor", "2", "@challenger v3  @champion v1", "v3"],
            ["iris-classifier", "4", "@challenger v4  @champion v3", "v4"],
        ]
        await _pick_model(pilot, screen, "iris-classifier")
        versions = _cells(screen, "#versions-table")
        assert [row[1] for row in versions] == ["v4", "v3", "v2", "v1"]
        by_version = {row[1]: row for row in versions}
        assert "@champion" in by_version["v3"] and "Production" in by_version["v3"]
        runs = {
            v: next(c for c in row if c.startswith(("logreg", "sgd")))
            for v, row in by_version.items()
        }
        assert runs["v3"].startswith("logreg-C1") and runs["v2"].startswith("sgd-alpha1e-3")
        # val_accuracy is a held-out metric with a known direction: shown first, even at 80x24;
        # v1 (0.8222) is worse than @champion v3 (0.9778), in the diff's own words and colour.
        table = screen.versions_table
        headers = [str(c.label) for c in table.columns.values()]
        assert "val_accuracy ↑" in headers
        v1 = table.get_row_at(3)
        cell = next(c for c in v1 if isinstance(c, Text) and c.plain.startswith("0.8222"))
        assert cell.plain == "0.8222 -0.1556 ▼"
        assert [span.style for span in cell.spans] == [verdict_styles(app)[Verdict.WORSE]]
        # Every number on screen is whole: the columns fit the width, and the metrics that do
        # not fit are left out and counted, never cut.
        used = sum(c.get_render_width(table) for c in table.columns.values())
        assert used <= size[0]
        labels = {f"{k} {d.arrow}".rstrip() for k, d in screen.board.metrics}
        left_out = len(labels) - len(labels.intersection(headers))
        section = str(screen.query_one("#models-section").render())
        assert (f"+{left_out} metrics in a wider terminal" in section) == (left_out > 0)


async def test_deleted_version_is_shown_as_such_and_enter_opens_a_versions_run(
    registry_root: Path, tmp_path: Path
) -> None:
    async with on_models(registry_root, tmp_path, (80, 24)) as (app, pilot, screen):
        await _pick_model(pilot, screen, "diabetes-regressor")
        versions = _cells(screen, "#versions-table")
        deleted = next(row for row in versions if row[1] == "v2")
        assert "deleted" in deleted and "(version deleted)" in deleted
        await pilot.press("tab")
        screen.versions_table.move_cursor(row=[r[1] for r in versions].index("v2"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen  # nothing to open: a notice, not an error
        screen.versions_table.move_cursor(row=[r[1] for r in versions].index("v3"))
        detail = await pushed(pilot, "enter", RunDetailScreen)
        assert isinstance(detail, RunDetailScreen)
        run = app.store.run(detail.run_id)
        assert run is not None and run.name == "ridge-a0.1"


async def test_c_compares_marked_versions_runs_with_champion_as_baseline(
    registry_root: Path, tmp_path: Path
) -> None:
    async with on_models(registry_root, tmp_path, (120, 40)) as (app, pilot, screen):
        await _pick_model(pilot, screen, "iris-classifier")
        await pilot.press("tab")
        screen.versions_table.move_cursor(row=0)  # v4 @challenger
        await pilot.press("space")  # marks v4, moves to v3 @champion
        await pilot.press("space")
        compare = await pushed(pilot, "c", CompareScreen)
        assert isinstance(compare, CompareScreen)
        names = [app.store.run(i).name for i in compare.run_ids]  # type: ignore[union-attr]
        assert names == ["logreg-C1", "logreg-C10"]  # @champion first: the baseline


async def test_models_key_is_in_help_and_palette_and_empty_folder_says_why(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    async with on_models(empty, tmp_path, (80, 24)) as (app, pilot, screen):
        assert "no registered models" in str(screen.query_one("#models-empty").render())
        await pushed(pilot, "question_mark", HelpScreen)
        ids = [i for *_, i in app.screen._rows]
        assert any("app.models" in i for i in ids)
        await pilot.press("escape")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ModelsScreen))
        titles = await palette_titles(pilot, more_than=5)
        assert "models" in titles


async def test_pipelines_screen_shows_the_registry_as_register_evidence(
    registry_root: Path, tmp_path: Path
) -> None:
    from mltop.tui.screens.pipelines.screen import PipelinesScreen

    (registry_root / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python train.py\n    outs: [model.pkl]\n"
    )
    async with on_runs(registry_root, tmp_path, (120, 40), live=False) as (app, pilot, _):
        await until(pilot, lambda: not app.ingesting)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen) and app.screen.settled)
        screen = app.screen
        assert isinstance(screen, PipelinesScreen)
        maturity = screen.data.overview.comparison.maturity  # type: ignore[union-attr]
        assert any(line.startswith("model registry with aliases") for line in maturity.evidence)
        comparison = screen.data.overview.comparison  # type: ignore[union-attr]
        package = next(r for r in comparison.rows if r.phase.name == "PACKAGE")
        assert package.mlops_gap.startswith("no register stage; registry: diabetes-regressor")


async def test_models_opened_before_the_first_scan_fill_in_when_it_ends(
    registry_root: Path, tmp_path: Path
) -> None:
    async with running(registry_root, tmp_path, (80, 24), live=False) as (app, pilot):
        await pilot.press("M")  # on the first frame: no store yet, nothing scanned
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await until(pilot, lambda: screen.found is not None and len(screen.found) == 2)
        await until(pilot, lambda: screen.settled)
        assert screen.board is not None and screen.board.rows


async def test_a_model_with_more_versions_than_the_screen_shows_gets_every_row(
    registry_root: Path, tmp_path: Path
) -> None:
    import sqlite3

    # 60 more versions of iris-classifier, copies of v1's row, written by the real sqlite3.
    with sqlite3.connect(registry_root / "sqlite" / "mlflow.db") as con:
        for version in range(5, 65):
            con.execute(
                "INSERT INTO model_versions SELECT name, ?, creation_time + ?, "
                "last_updated_time, description, user_id, current_stage, source, run_id, "
                "run_link, status, status_message, storage_location, workspace "
                "FROM model_versions WHERE name = 'iris-classifier' AND version = 1",
                [version, version],
            )
    async with on_models(registry_root, tmp_path, (80, 24)) as (_, pilot, screen):
        await _pick_model(pilot, screen, "iris-classifier")
        versions = [row[1] for row in _cells(screen, "#versions-table")]
        assert versions == [f"v{n}" for n in range(64, 0, -1)]
        assert screen.versions_table.cursor_row == 0


async def test_version_whose_run_was_deleted_shows_its_logged_models_metrics_and_params(
    registry_root: Path, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{registry_root / 'sqlite' / 'mlflow.db'}")
    challenger = client.get_model_version_by_alias("diabetes-regressor", "challenger")
    client.delete_run(challenger.run_id)
    logged = client.get_logged_model(challenger.source.removeprefix("models:/"))
    async with on_models(registry_root, tmp_path, (120, 40)) as (app, pilot, screen):
        await _pick_model(pilot, screen, "diabetes-regressor")
        version = str(challenger.version)
        row = next(r for r in screen.board.rows if r.version.version == version)
        assert row.run is None and row.logged is not None
        assert [c.value for c in row.cells] == [
            logged.metrics[[m.key for m in logged.metrics].index(k)].value
            for k, _ in screen.board.metrics
        ]
        cells = next(r for r in _cells(screen, "#versions-table") if r[1] == f"v{version}")
        assert any("logged model m-" in c for c in cells)
        await pilot.press("tab")
        screen.versions_table.move_cursor(
            row=[r.version.version for r in screen.board.rows].index("3")
        )
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        (notice,) = [n for n in app._notifications if "params:" in n.message]
        assert logged.params and all(f"{k}={v}" in notice.message for k, v in logged.params.items())

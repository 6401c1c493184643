"""The pipelines screen and the pipeline graph, driven with keys over real pipeline files, real
run folders and a real store; GitHub answers come from a server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import write_run
from helpers.http import QuietHandler, serving
from helpers.pipelines import sample_pipelines
from helpers.tui import pushed, running
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import OptionList
from tui_pilot import SIZE, make_app, settled

from mltop.core.cli.pipelines import pipelines_command
from mltop.core.tracking import META_FILE
from mltop.tui.app import MltopApp
from mltop.tui.commands import ScreenCommands
from mltop.tui.screens.help import HelpScreen
from mltop.tui.screens.pipelines.dag import DagCanvas, PipelineDagScreen
from mltop.tui.screens.pipelines.picker import PipelinePicker
from mltop.tui.screens.pipelines.screen import PipelinesScreen
from mltop.tui.screens.runs.screen import RunsScreen
from mltop.tui.widgets.phase_grid import PhaseGrid

SHA = "acb5820ced9479c074f688cc328bf03f341a511d"
HOSTILE = "boom[red]x[/red]\x1b[31m"


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0) -> None:
    """Let the app run until ``predicate`` holds. Polls rather than awaiting workers: a worker
    cancelled by a newer request (they are exclusive) would end that wait with an error."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the app did not reach the expected state in time")
        await pilot.pause(0.02)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The sample project's own pipelines and two finished runs under ``runs/``."""
    root = sample_pipelines(tmp_path / "proj")
    write_run(root / "runs", "sgd-lr0.1", steps=3)
    write_run(root / "runs", "rf-depth4", steps=3)
    return root


async def open_pipelines(pilot: Pilot) -> PipelinesScreen:
    await settled(pilot)
    screen = await pushed(pilot, "p", PipelinesScreen, lambda s: s.settled)
    await pilot.pause()
    return screen


def grid_text(screen: PipelinesScreen) -> str:
    return screen.grid.render().plain


def line_with(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def static_text(screen: Any, selector: str) -> str:
    """What a Static shows (Text, a table or a group of them), as plain text."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(screen.query_one(selector).content)
    return console.export_text()


async def test_p_opens_both_sides_aligned_by_phase_with_coverage_and_maturity(
    project: Path, tmp_path: Path
) -> None:
    async with running(project, tmp_path) as (_, pilot):
        screen = await open_pipelines(pilot)
        data = screen.data
        assert data is not None
        comparison = data.overview.comparison
        assert comparison.devops is not None and comparison.mlops is not None
        assert Path(comparison.devops.path).name == "ci.yml"
        assert Path(comparison.mlops.path).name == "dvc.yaml"
        text = grid_text(screen)
        assert "DevOps: .github/workflows/ci.yml" in text and "MLOps: dvc.yaml (dvc)" in text
        phases = [line[:19].strip() for line in text.splitlines()[2:]]
        assert phases[:7] == [
            "source / data",
            "build / prepare",
            "test / train",
            "verify / evaluate",
            "package / register",
            "deploy",
            "monitor",
        ]
        test_row = line_with(text, "test / train")
        assert "• test" in test_row and "✓ train  up to date" in test_row and "both" in test_row
        assert "← lint" in test_row  # dependencies
        assert "→ 2 runs" in test_row  # the training stage's runs, under the project folder
        assert "✗ no feature or preprocessing stage" in line_with(text, "build / prepare")
        assert "○ serve" in line_with(text, "deploy")
        summary = static_text(screen, "#pl-summary")
        assert "DevOps covers 3 of 7" in summary and "MLOps covers 6 of 7" in summary
        assert "MLOps maturity: level 2" in summary
        assert "evidence" in summary and "missing" in summary
        # dvc.yaml's register stage (register.py, GTO tags) covers the register phase
        assert "○ register  not run yet" in line_with(text, "package / register")
        assert "no model registry stage" not in summary
        # the first MLOps stage is selected; its pane says why it sits in its phase
        assert screen.grid.side == "mlops" and screen.grid.selected_stage.id == "prepare"
        detail = static_text(screen, "#pl-detail")
        assert 'name "prepare" says prepare' in detail and "✓ up to date  from dvc.lock" in detail


async def test_reasons_toggle_and_side_moves(project: Path, tmp_path: Path) -> None:
    async with running(project, tmp_path) as (_, pilot):
        screen = await open_pipelines(pilot)
        assert "why:" not in grid_text(screen)
        await pilot.click(PhaseGrid, offset=(25, 3))  # the DevOps cell of build / prepare
        assert screen.grid.side == "devops" and screen.grid.selected_stage.id == "lint"  # type: ignore[union-attr]
        await pilot.click(PhaseGrid, offset=(70, 2))  # the MLOps cell of source / data
        assert screen.grid.side == "mlops" and screen.grid.selected_stage.id == "prepare"  # type: ignore[union-attr]
        await pilot.press("r")
        assert 'why: name "train" says train' in grid_text(screen)
        await pilot.press("j", "h")  # train, then the DevOps stage of the same phase
        await pilot.pause()
        assert screen.grid.side == "devops" and screen.grid.selected_stage.id == "test"
        detail = static_text(screen, "#pl-detail")
        assert "needs   lint" in detail and "2 combinations" in detail
        await pilot.press("k", "k", "k")
        assert screen.grid.index == -1  # the DevOps header
        assert ".github/workflows/ci.yml" in static_text(screen, "#pl-detail")


async def test_graph_view_draws_the_stages_and_moves_between_boxes(
    project: Path, tmp_path: Path
) -> None:
    async with running(project, tmp_path) as (app, pilot):
        screen = await open_pipelines(pilot)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, PipelineDagScreen) and app.screen.settled)
        dag = app.screen
        assert isinstance(dag, PipelineDagScreen)
        drawn = dag.query_one(DagCanvas).render().plain  # type: ignore[union-attr]
        for name in ("prepare", "train", "evaluate"):
            assert f"│ {name}" in drawn
        assert "▼" in drawn and "┬" in drawn and "→ 2 runs" in drawn
        assert dag.drawing is not None and dag.drawing.layers == [
            ["prepare", "serve"],
            ["train", "monitor"],
            ["evaluate"],
            ["register"],
        ]
        assert dag.selected == "prepare"
        await pilot.press("down")
        assert dag.selected == "train"
        assert "→ 2 runs" in static_text(dag, "#dag-detail")
        await pilot.press("down")
        assert dag.selected == "evaluate"
        await pilot.press("down", "down")  # the register stage, the last layer
        assert dag.selected == "register"
        await pilot.press("tab")  # the other side's graph
        await until(pilot, lambda: dag.drawing is not None and dag.side == "devops")
        assert dag.drawing.layers == [["lint"], ["test"], ["pipeline"]]  # type: ignore[union-attr]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        # enter on a stage opens the graph on that stage
        await pilot.press("j", "enter")
        await until(pilot, lambda: isinstance(app.screen, PipelineDagScreen) and app.screen.settled)
        assert app.screen.selected == "train"  # type: ignore[attr-defined]


async def test_one_repository_joins_its_ml_pipelines_and_p_picks_another_repository(
    project: Path, tmp_path: Path
) -> None:
    # a second dvc.yaml in the same project joins the MLOps side
    (project / "experiments" / "big").mkdir(parents=True)
    (project / "experiments/big/dvc.yaml").write_text(
        "stages:\n  ingest:\n    cmd: python ingest.py\n  fit:\n    cmd: python train.py\n"
        "    deps: [data]\n  register:\n    cmd: mlflow models register -m x\n"
    )
    # a checkout of another project inside it is a repository of its own
    other = project / "vendor" / "other"
    (other / ".git").mkdir(parents=True)
    (other / ".github/workflows").mkdir(parents=True)
    (other / ".github/workflows/deploy.yml").write_text(
        "on: push\njobs:\n  ship:\n    runs-on: x\n    steps:\n      - run: kubectl apply -f k8s/\n"
    )
    async with running(project, tmp_path) as (app, pilot):
        screen = await open_pipelines(pilot)
        overview = screen.data.overview  # type: ignore[union-attr]
        mlops = overview.comparison.mlops
        assert mlops is not None and [Path(m.path) for m in mlops.members] == [
            project / "dvc.yaml",
            project / "experiments/big/dvc.yaml",
        ]
        grid = grid_text(screen)
        assert "MLOps: 2 files: dvc.yaml, experiments/big/" in grid
        assert "register" in line_with(grid, "package / register")
        assert "ship" not in grid  # the vendored repository's job is not this one's
        picker = await pushed(pilot, "P", PipelinePicker)
        assert isinstance(picker, PipelinePicker)
        assert [r.root for r in picker.repositories] == [project.resolve(), other.resolve()]
        picker.query_one(OptionList).highlighted = 1
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen and screen.settled)
        overview = screen.data.overview  # type: ignore[union-attr]
        assert overview.repository is not None and overview.repository.root == other.resolve()
        assert "ship" in line_with(grid_text(screen), "deploy")
        assert "holds no ML pipeline" in static_text(screen, "#pl-summary")
        # enter on a column header opens the picker too
        await pilot.press("home", "enter")
        await until(pilot, lambda: isinstance(app.screen, PipelinePicker))
        await pilot.press("escape")


async def test_empty_folder_says_no_pipelines_found(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    async with running(root, tmp_path) as (app, pilot):
        screen = await open_pipelines(pilot)
        assert screen.has_class("-empty")
        empty = static_text(screen, "#pl-empty")
        assert "No pipelines found under" in empty and "dvc.yaml" in empty
        await pilot.press("g", "P", "o", "r", "j", "enter")  # nothing to act on: no crash
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_hostile_stage_names_stay_literal(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    escaped = HOSTILE.replace("\x1b", "\\e")
    (root / "dvc.yaml").write_text(
        f'stages:\n  "{escaped}":\n    cmd: python train.py "[bold]x[/]"\n'
        f"  after:\n    cmd: python evaluate.py\n    deps: [out]\n"
    )
    async with running(root, tmp_path) as (app, pilot):
        screen = await open_pipelines(pilot)
        shown = "boom[red]x[/red]␛[31m"
        assert shown in grid_text(screen)
        detail = static_text(screen, "#pl-detail")
        assert shown in detail and 'python train.py "[bold]x[/]"' in detail
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, PipelineDagScreen) and app.screen.settled)
        drawn = app.screen.query_one(DagCanvas).render().plain  # type: ignore[union-attr]
        assert "boom[red]x[/red]␛[31m" in drawn and "\x1b" not in drawn


async def test_o_lists_the_linked_runs_in_the_runs_table(project: Path, tmp_path: Path) -> None:
    write_run(project.parent / "elsewhere", "stranger", steps=2)
    async with running(project.parent, tmp_path) as (app, pilot):
        screen = await open_pipelines(pilot)
        await pilot.press("j")  # train
        assert screen.grid.selected_stage.id == "train"  # type: ignore[union-attr]
        await pushed(pilot, "o", RunsScreen)
        runs = app.runs_screen
        assert runs.filter_text.startswith("location ~")
        await until(pilot, lambda: runs.settled and runs.view is not None and runs.view.rows == 2)
        assert sorted(runs.view.table.column("name").to_pylist()) == ["rf-depth4", "sgd-lr0.1"]  # type: ignore[union-attr]


async def test_help_lists_every_binding_id_and_works_at_80x24(
    project: Path, tmp_path: Path
) -> None:
    async with running(project, tmp_path, (80, 24)) as (app, pilot):
        screen = await open_pipelines(pilot)
        text = grid_text(screen)
        assert "coverage" not in text.splitlines()[0]  # the column is left out when narrow
        assert "test / train" in text and "✓ train" in text
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = {i for row in app.screen._rows for i in row[3].split(", ")}
        for binding in (*PipelinesScreen.BINDINGS, *PhaseGrid.BINDINGS):
            assert binding.id in ids  # type: ignore[union-attr]
        await pilot.press("escape", "g")
        await until(pilot, lambda: isinstance(app.screen, PipelineDagScreen) and app.screen.settled)
        await pilot.press("question_mark")
        await pilot.pause()
        ids = {i for row in app.screen._rows for i in row[3].split(", ")}  # type: ignore[attr-defined]
        for binding in PipelineDagScreen.BINDINGS:
            assert binding.id in ids  # type: ignore[union-attr]


async def test_runs_screen_offers_pipelines_by_key_and_palette(
    project: Path, tmp_path: Path
) -> None:
    async with running(project, tmp_path) as (app, pilot):
        await until(pilot, lambda: app.runs_screen.settled)
        runs = app.runs_screen

        provider = ScreenCommands(runs)
        names = [c.name for c in provider._commands()]
        assert "pipelines" in names
        binding = next(b for b in RunsScreen.BINDINGS if b.id == "runs.pipelines")  # type: ignore[union-attr]
        assert binding.key == "p"  # type: ignore[union-attr]


# -- GitHub Actions through a local server ------------------------------------------------------


class _GitHub(QuietHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/repos/o/r/actions/runs?"):
            body: dict[str, Any] = {
                "total_count": 1,
                "workflow_runs": [
                    {
                        "id": 42,
                        "path": ".github/workflows/ci.yml",
                        "head_branch": "main",
                        "head_sha": SHA,
                        "run_number": 7,
                        "status": "completed",
                        "conclusion": "failure",
                        "created_at": "2026-01-02T10:00:00Z",
                    }
                ],
            }
        elif self.path.startswith("/repos/o/r/actions/runs/42/jobs"):
            body = {
                "total_count": 2,
                "jobs": [
                    {
                        "name": "lint",
                        "status": "completed",
                        "conclusion": "success",
                        "started_at": "2026-01-02T10:00:00Z",
                        "completed_at": "2026-01-02T10:00:14Z",
                    },
                    {
                        "name": "test (3.11)",
                        "status": "completed",
                        "conclusion": "failure",
                        "started_at": "2026-01-02T10:00:20Z",
                        "completed_at": "2026-01-02T10:01:24Z",
                    },
                ],
            }
        else:
            self.send_error(404)
            return
        self.send_json(body)


@pytest.fixture
def github() -> Iterator[str]:
    with serving(_GitHub) as url:
        yield url


async def test_github_job_status_and_runs_at_the_ci_commit(
    project: Path, tmp_path: Path, github: str
) -> None:
    for name in ("sgd-lr0.1", "rf-depth4"):
        meta = project / "runs" / name / META_FILE
        data = json.loads(meta.read_text())
        data["git_commit"] = SHA[:10]
        meta.write_text(json.dumps(data))
    app = MltopApp(project, tmp_path / "store.duckdb", github="o/r", github_api=github)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pipelines(pilot)
        text = grid_text(screen)
        assert "GitHub o/r" in static_text(screen, "#pl-header")
        note = text.splitlines()[1]
        assert "✗ run #7 acb5820  → 2 runs at this commit" in note
        assert "✓ lint  passed 14s" in line_with(text, "build / prepare")
        assert "✗ test  failed 1m04s" in line_with(text, "test / train")
        await pilot.press("h")  # a CI job: the runs at its run's commit
        detail = static_text(screen, "#pl-detail")
        assert "CI runs → 2 runs" in detail and f"at commit {SHA[:7]}" in detail
        await pilot.press("home")  # the CI file as a whole
        detail = static_text(screen, "#pl-detail")
        assert "GitHub run #7 failed on main (acb5820)" in detail


async def test_a_github_failure_is_said_and_the_rest_still_shows(
    project: Path, tmp_path: Path, github: str
) -> None:
    app = MltopApp(project, tmp_path / "store.duckdb", github="o/missing", github_api=github)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pipelines(pilot)
        assert "404 not found: o/missing" in static_text(screen, "#pl-summary")
        assert any("404 not found" in str(n.message) for n in app._notifications)
        assert "• lint" in line_with(grid_text(screen), "build / prepare")


async def test_a_stage_never_run_says_so_in_the_clis_words_and_links_no_runs(
    project: Path, tmp_path: Path
) -> None:
    (project / "dvc.lock").unlink()
    async with running(project, tmp_path) as (_, pilot):
        screen = await open_pipelines(pilot)
        test_row = line_with(grid_text(screen), "test / train")
        assert "○ train  not run yet: no dvc.lock" in test_row
        assert "→" not in test_row.split("○ train", 1)[1]  # the runs under runs/ are not its
        detail = static_text(screen, "#pl-detail")
        assert "○ not run yet: no dvc.lock" in detail and "from dvc.lock" not in detail
    out = io.StringIO()
    pipelines_command(project, "table", out=out)
    assert "train [○ not run yet: no dvc.lock]" in line_with(out.getvalue(), "test / train")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_the_metrics_band_shows_devops_and_mlops_figures_side_by_side(
    project: Path, tmp_path: Path
) -> None:
    import subprocess

    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "first")):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            cwd=project,
            check=True,
            capture_output=True,
        )
    async with running(project, tmp_path, (200, 60)) as (_, pilot):
        screen = await open_pipelines(pilot)
        # a tall terminal gives the band a strip of its own under the table
        assert screen.query_one("#pl-metrics").display
        band = static_text(screen, "#pl-metrics")
        header = line_with(band, "DevOps metrics")
        assert "MLOps metrics" in header  # the two columns side by side
        assert "retraining frequency: 1 retraining" in band
        assert "commits that changed dvc.lock" in band
        assert "release frequency: needs release tags (git tag)" in band
        assert "drift: needs a monitor: .mltop/monitor.yaml" in band
        assert "DevOps metrics" not in static_text(screen, "#pl-summary")
    async with make_app(project, tmp_path).run_test(size=(80, 24)) as pilot:
        screen = await open_pipelines(pilot)
        # at 80x24 the stages keep the room; the band wraps in the summary pane instead
        assert not screen.query_one("#pl-metrics").display
        assert "retraining frequency: 1 retraining" in static_text(screen, "#pl-summary")

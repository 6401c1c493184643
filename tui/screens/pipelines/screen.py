"""Pipelines (``p`` on the runs screen): a repository's DevOps and MLOps sides side by side.

Rows are lifecycle phases; the DevOps column holds the stages of all the repository's CI files,
the MLOps column those of all its ML pipelines, each in the phase they were given,
with kind, dependencies, status (dvc.lock, JUnit reports, GitHub Actions when a repository is
set) and the experiment runs linked to it. Below: the selected stage in full (including why it
sits in its phase), and what each side covers and lacks with the MLOps maturity reading.

Everything is computed by :func:`mltop.core.pipelines.overview.build_overview` and
:func:`mltop.core.pipelines.links.link_runs` in a worker thread; the screen only draws the
answer. Reading again (``R``) or choosing another repository (``P``) asks the worker
again, and only the latest answer is shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from mltop.core.common.formatting import short_path
from mltop.core.common.sanitize import inert
from mltop.core.pipelines.dag_layout import state_style
from mltop.core.pipelines.links import PipelineLinks, link_runs
from mltop.core.pipelines.model import (
    one_line,
)
from mltop.core.pipelines.overview import GitHubOptions, Overview, build_overview
from mltop.core.pipelines.phases import OVERRIDES_FILE
from mltop.core.pipelines.registry_evidence import registry_evidence, with_registry
from mltop.core.pipelines.repository import side_title
from mltop.core.store import StoreError
from mltop.tui.commands import ScreenCommand
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.screens.pipelines.data import PipelinesData
from mltop.tui.screens.pipelines.panes import metrics_band, pipeline_detail, stage_detail, summary
from mltop.tui.screens.pipelines.picker import PipelinePicker
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.phase_grid import (
    SIDE_LABELS,
    SIDES,
    STYLES,
    GridData,
    PhaseGrid,
    Side,
    style_of,
)

BAND_MIN_HEIGHT = 34
"""From this many rows the metrics band gets a full-width strip under the table; below it the
band sits in the summary pane, where it wraps and scrolls instead of crowding the stages out."""


@dataclass
class PipelinesLoaded(Message):
    data: PipelinesData | None
    generation: int
    error: str | None


def github_options(app: object) -> GitHubOptions | None:
    """The GitHub repository set for the app (``mltop --github OWNER/REPO``), if any."""
    repo = getattr(app, "github_repo", None)
    if not repo:
        return None
    api = getattr(app, "github_api", None)
    if api:
        return GitHubOptions(str(repo), api_url=str(api))
    return GitHubOptions(str(repo))


class PipelinesScreen(MltopScreen[None]):
    CSS_PATH = "pipelines.tcss"
    HELP_TITLE = "pipelines"
    AUTO_FOCUS = "PhaseGrid"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("pipelines"),
        Binding("g", "graph", "graph", id="pipelines.graph"),
        Binding("P", "pick", "pick repository", id="pipelines.pick"),
        Binding("r", "reasons", "reasons", id="pipelines.reasons"),
        Binding("o", "open_runs", "linked runs", id="pipelines.runs"),
        Binding("R", "reload", "reload", id="pipelines.reload"),
    ]

    def __init__(self, root: Path, github: GitHubOptions | None = None) -> None:
        super().__init__()
        self.root = Path(root)
        self.github = github
        self.data: PipelinesData | None = None
        self.error: str | None = None
        self.chosen: Path | None = None
        """The repository root picked with ``P``; None shows the automatic choice."""
        self._generation = 0
        self._answered = 0

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="pl-header")
        with VerticalScroll(id="pl-grid-box"):
            yield PhaseGrid(id="pl-grid")
        yield Static(id="pl-metrics")
        yield Static(id="pl-empty")
        with Horizontal(id="pl-bottom"):
            with VerticalScroll(id="pl-detail-box") as detail:
                detail.border_title = "stage"
                yield Static(id="pl-detail")
            with VerticalScroll(id="pl-summary-box") as summary:
                summary.border_title = "coverage and MLOps maturity"
                yield Static(id="pl-summary")
        yield KeyBar(id="pl-keys")

    @property
    def grid(self) -> PhaseGrid:
        return self.query_one(PhaseGrid)

    def on_mount(self) -> None:
        if self.github is None:
            self.github = github_options(self.app)
        self.query_one("#pl-grid-box").can_focus = False
        self._show_empty(Text("reading pipelines…", style="dim"))
        self._draw_header()
        self.reload()

    def on_resize(self) -> None:
        self._draw_header()
        self.query_one(KeyBar).update_keys()
        self._draw_summary()

    @property
    def band_strip(self) -> bool:
        """Whether the metrics band has its own strip under the table (tall terminals)."""
        data = self.data
        return (
            data is not None and bool(data.overview.metrics) and self.size.height >= BAND_MIN_HEIGHT
        )

    # -- loading ----------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """The latest request is answered (tests and screenshots wait for this)."""
        if self._answered != self._generation:
            return False
        if self.data is not None:
            return not any(m.pending for m in self.data.overview.monitors)
        return bool(self.error)

    def reload(self) -> None:
        self._generation += 1
        self._draw_header()
        self._load(self._generation, self.chosen)

    @work(thread=True, exclusive=True, group="pipelines")
    def _load(self, generation: int, repository: Path | None) -> None:
        """The overview at once, with monitors whose files changed shown "computing…"; then,
        when there are such, their reports computed here (off the UI thread) and the overview
        again: a big prediction log never holds the pipelines back."""
        started = time.perf_counter()
        for compute in (False, True):
            try:
                overview = build_overview(
                    self.root, self.github, repository=repository, compute_monitors=compute
                )
            except Exception as exc:  # a parser bug must not leave the screen blank
                self.post_message(PipelinesLoaded(None, generation, f"{type(exc).__name__}: {exc}"))
                return
            self.post_message(PipelinesLoaded(self._linked(overview, started), generation, None))
            if get_current_worker().is_cancelled or not any(m.pending for m in overview.monitors):
                return

    def _linked(self, overview: Overview, started: float) -> PipelinesData:
        links = PipelineLinks()
        note: str | None = None
        use = getattr(self.app, "store_in_use", None)
        if overview.pipelines and use is not None:
            try:
                with use() as store:
                    links = link_runs(store, overview)
                    home = overview.repository.root if overview.repository else self.root
                    models = registry_evidence(store, home)
                overview.comparison = with_registry(overview.comparison, models)
                if getattr(self.app, "ingesting", False):
                    note = "runs are still being indexed; R links the new ones too"
            except StoreError:
                note = "experiment runs are linked once the store is open (R reads again)"
            except Exception as exc:  # linking is a bonus: keep the view
                note = f"could not link runs: {one_line(exc, 160)}"
        return PipelinesData(overview, links, note, time.perf_counter() - started)

    def on_pipelines_loaded(self, message: PipelinesLoaded) -> None:
        if message.generation != self._generation:
            return
        self._answered = message.generation
        self.error = message.error
        if message.data is None:
            self._show_empty(Text(f"could not read pipelines: {inert(message.error)}", "red"))
            self._draw_header()
            return
        self.data = message.data
        overview = message.data.overview
        self._draw_header()
        if not overview.pipelines:
            self._show_empty(self._empty_text())
            return
        self._show_empty(None)
        github = [p for p in overview.problems if p.startswith("GitHub") or "GitHub API" in p]
        if github:  # asked for and not shown: say why at once, not only in the summary pane
            self.notify(one_line(github[0], 200), title="GitHub", severity="warning", timeout=8)
        self.grid.show(self._grid_data(message.data))
        if self.focused is None:  # the table was hidden while reading, so it had no focus
            self.set_focus(self.grid)
        self._draw_summary()
        self._draw_detail()

    def _show_empty(self, text: RenderableType | None) -> None:
        self.set_class(text is not None, "-empty")
        if text is not None:
            self.query_one("#pl-empty", Static).update(text)

    def _empty_text(self) -> Text:
        text = Text()
        text.append(f"No pipelines found under {inert(short_path(self.root))}\n\n", style="bold")
        text.append(
            "mltop reads CI definitions (.github/workflows/*.yml, .gitlab-ci.yml,\n"
            "azure-pipelines.yml, Tekton, Jenkinsfile) and ML pipelines (dvc.yaml, compiled\n"
            "Kubeflow, Argo Workflows) and lines them up by lifecycle phase.\n\n"
        )
        text.append("esc goes back to the runs  ·  R reads the folder again", style="dim")
        return text

    # -- header, grid data, panes -----------------------------------------------------------

    def _draw_header(self) -> None:
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(" pipelines ", style="bold reverse")
        header.append(f"  {inert(short_path(self.root))}", style="bold")
        right = Text(no_wrap=True)
        data = self.data
        if data is not None:
            count = len(data.overview.pipelines)
            header.append(f"  ·  {count} pipeline{'s' if count != 1 else ''} found")
            repos = len(data.overview.repositories)
            if repos > 1:
                header.append(f" in {repos} repositories (P picks)")
        if self.github is not None:
            header.append(f"  ·  GitHub {inert(self.github.repo)}")
        if self._answered != self._generation:
            right.append("reading pipelines…", style="dim")
        elif data is not None:
            right.append(f"read in {data.seconds:.2f} s", style="dim")
        width = self.size.width or 120
        room = width - header.cell_len - right.cell_len - 1
        if room >= 2:
            header.append(" " * room)
            header.append_text(right)
        self.query_one("#pl-header", Static).update(header)

    def _grid_data(self, data: PipelinesData) -> GridData:
        overview = data.overview
        titles: dict[str, str] = {}
        notes: dict[str, Text] = {}
        for side in SIDES:
            pipeline = data.pipeline(side)
            label = SIDE_LABELS[side]
            if pipeline is None:
                titles[side] = f"{label}: none in this repository"
            else:
                title = side_title(pipeline, overview.root)
                titles[side] = f"{label}: {one_line(title, 120)} ({pipeline.format})"
        ci = overview.ci_run_of(overview.comparison.devops)
        if ci is not None:
            # short: the branch, URL and the runs themselves are in the header's pane
            note = Text(f"{ci.state.symbol} run #{ci.number if ci.number is not None else ci.id}")
            note.stylize(style_of(state_style(ci.state)))
            if ci.head_sha:
                note.append(f" {ci.head_sha[:7]}", style="dim")
            if data.links.ci is not None:
                total = data.links.ci.total
                note.append(
                    f"  → {total} run{'s' if total != 1 else ''} at this commit", STYLES["link"]
                )
            notes["devops"] = note
        if data.links.head and data.links.stages:
            notes["mlops"] = Text(f"workspace at {data.links.head[:7]}", style="dim")
        return GridData(
            overview.comparison,
            titles,
            notes,
            {side: data.statuses(side) for side in SIDES},
            {side: data.stage_links(side) for side in SIDES},
        )

    @on(PhaseGrid.Selected)
    def _selected(self, event: PhaseGrid.Selected) -> None:
        self._draw_detail()

    @on(PhaseGrid.Activated)
    def _activated(self, event: PhaseGrid.Activated) -> None:
        if event.stage_id is None:
            self.pick()
        else:
            self.open_graph(event.side, event.stage_id)

    def _draw_detail(self) -> None:
        data = self.data
        box = self.query_one("#pl-detail-box")
        if data is None:
            return
        side = self.grid.side
        stage = self.grid.selected_stage
        pipeline = data.pipeline(side)
        if stage is None:
            box.border_title = f"{SIDE_LABELS[side]} pipeline"
            body = pipeline_detail(data, side)
        else:
            box.border_title = f"{SIDE_LABELS[side]} stage"
            body = stage_detail(data, side, stage, pipeline)
        self.query_one("#pl-detail", Static).update(body)

    def _draw_summary(self) -> None:
        if self.data is None:
            return
        strip = self.band_strip
        self.set_class(strip, "-band")
        if strip:
            self.query_one("#pl-metrics", Static).update(
                metrics_band(self.data.overview, wrap=False)
            )
        self.query_one("#pl-summary", Static).update(summary(self.data, band=not strip))

    # -- actions ----------------------------------------------------------------------------

    def action_reasons(self) -> None:
        self.grid.set_reasons(not self.grid.show_reasons)

    def action_reload(self) -> None:
        self.reload()

    def action_pick(self) -> None:
        self.pick()

    def pick(self) -> None:
        data = self.data
        if data is None:
            return
        if not data.overview.repositories:
            self.notify("no pipelines found to pick from", timeout=3)
            return
        current = data.overview.repository

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.chosen = path
                self.reload()

        self.app.push_screen(
            PipelinePicker(
                data.overview.repositories,
                current.root if current is not None else None,
                data.overview.root,
            ),
            chosen,
        )

    def action_graph(self) -> None:
        stage = self.grid.selected_stage
        self.open_graph(self.grid.side, stage.id if stage else None)

    def open_graph(self, side: Side, stage_id: str | None) -> None:
        from mltop.tui.screens.pipelines.dag import PipelineDagScreen

        data = self.data
        if data is None:
            return
        pipeline = data.pipeline(side)
        if pipeline is None or not pipeline.stages:
            self.notify(
                f"no {SIDE_LABELS[side]} pipeline to draw (P picks a repository)", timeout=3
            )
            return

        def done(result: tuple[str, str] | None) -> None:
            if result is not None:
                self.open_runs(*result)  # type: ignore[arg-type]

        self.app.push_screen(PipelineDagScreen(data, side, stage_id), done)

    def action_open_runs(self) -> None:
        stage = self.grid.selected_stage
        self.open_runs(self.grid.side, stage.id if stage else None)

    def open_runs(self, side: Side, stage_id: str | None) -> None:
        """Back to the runs table, filtered to the runs linked to this stage."""
        data = self.data
        link = data.link_for(side, stage_id) if data is not None else None
        if link is None or not link.total:
            self.notify("no experiment runs are linked here", timeout=3)
            return
        runs_screen = getattr(self.app, "runs_screen", None)
        if runs_screen is None:
            return
        self.app.pop_screen()
        runs_screen.experiment = None
        runs_screen.set_filter(link.filter)

    # -- help and palette -------------------------------------------------------------------

    def help_extra(self) -> RenderableType:
        legend = Table.grid(padding=(0, 2))
        legend.add_column(style="bold")
        legend.add_column()
        for symbol, meaning in (
            ("✓", "passed / up to date"),
            ("~", "changed since last run (dvc.lock)"),
            ("✗", "failed, or: nothing in this phase"),
            ("○", "not run yet"),
            ("●", "running"),
            ("•", "no status known"),
            ("→ N runs", "experiment runs linked by commit, output folder or project folder"),
        ):
            legend.add_row(symbol, meaning)
        notes = Text(
            "\nA stage's phase comes from its name, commands, actions or image; the reason is in "
            "the stage pane (r shows it in the table). Map a stage yourself in "
            f"{OVERRIDES_FILE} (e.g. `smoke-test: verify`). GitHub Actions status needs "
            "`mltop --github OWNER/REPO` and GITHUB_TOKEN.\n",
        )
        return Group(Text("\nSymbols", style="bold underline"), legend, notes)

    def commands(self) -> list[ScreenCommand]:
        return [
            ScreenCommand("Pick the repository", "choose which repository's pipelines show",
                          self.pick),
            ScreenCommand(
                "Graph of the DevOps pipeline", "stages and dependencies",
                lambda: self.open_graph("devops", None),
            ),
            ScreenCommand(
                "Graph of the MLOps pipeline", "stages and dependencies",
                lambda: self.open_graph("mlops", None),
            ),
            ScreenCommand("Show phase reasons", "why each stage sits in its phase",
                          self.action_reasons),
            ScreenCommand("Read pipelines again", "re-read files and statuses", self.reload),
        ]  # fmt: skip

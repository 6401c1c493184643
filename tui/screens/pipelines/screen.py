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
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from mltop.core.common.formatting import local_moment
from mltop.core.common.sanitize import inert
from mltop.core.pipelines.compare import Comparison
from mltop.core.pipelines.dag_layout import state_style
from mltop.core.pipelines.links import PipelineLinks, RunLink, link_runs
from mltop.core.pipelines.model import (
    Phase,
    Pipeline,
    Stage,
    format_duration,
    one_line,
)
from mltop.core.pipelines.overview import GitHubOptions, Overview, build_overview
from mltop.core.pipelines.phases import OVERRIDES_FILE
from mltop.core.pipelines.registry_evidence import registry_evidence, with_registry
from mltop.core.pipelines.repository import followed, side_title
from mltop.core.runs.runs_view import STATUS_SYMBOLS
from mltop.core.store import StoreError
from mltop.tui.commands import ScreenCommand, ScreenCommands
from mltop.tui.screens.pipelines.data import PipelinesData
from mltop.tui.screens.pipelines.picker import PipelinePicker, relative
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.phase_grid import (
    SIDE_LABELS,
    SIDES,
    STYLES,
    GridData,
    PhaseGrid,
    Side,
    stage_label,
    style_of,
)

if TYPE_CHECKING:
    from mltop.tui.context import AppContext

SHOWN_RUNS = 5
BAND_MIN_HEIGHT = 34
"""From this many rows the metrics band gets a full-width strip under the table; below it the
band sits in the summary pane, where it wraps and scrolls instead of crowding the stages out."""


class PipelinesLoaded(Message):
    def __init__(self, data: PipelinesData | None, generation: int, error: str | None) -> None:
        super().__init__()
        self.data = data
        self.generation = generation
        self.error = error


def github_options(app: object) -> GitHubOptions | None:
    """The GitHub repository set for the app (``mltop --github OWNER/REPO``), if any."""
    repo = getattr(app, "github_repo", None)
    if not repo:
        return None
    api = getattr(app, "github_api", None)
    if api:
        return GitHubOptions(str(repo), api_url=str(api))
    return GitHubOptions(str(repo))


def short_path(path: Path) -> str:
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)


class PipelinesScreen(Screen[None]):
    CSS_PATH = "pipelines.tcss"
    COMMANDS: ClassVar = {ScreenCommands}
    HELP_TITLE = "pipelines"
    AUTO_FOCUS = "PhaseGrid"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", id="pipelines.back"),
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

    @property
    def mltop(self) -> AppContext:
        return self.app  # type: ignore[return-value]

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
        return self._answered == self._generation and (self.data is not None or bool(self.error))

    def reload(self) -> None:
        self._generation += 1
        self._draw_header()
        self._load(self._generation, self.chosen)

    @work(thread=True, exclusive=True, group="pipelines")
    def _load(self, generation: int, repository: Path | None) -> None:
        started = time.perf_counter()
        try:
            overview = build_overview(self.root, self.github, repository=repository)
        except Exception as exc:  # a parser bug must not leave the screen blank
            self.post_message(PipelinesLoaded(None, generation, f"{type(exc).__name__}: {exc}"))
            return
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
        data = PipelinesData(overview, links, note, time.perf_counter() - started)
        self.post_message(PipelinesLoaded(data, generation, None))

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

    def action_back(self) -> None:
        self.app.pop_screen()

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


# -- pane contents ------------------------------------------------------------------------------


def _pairs() -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True, min_width=7)
    table.add_column(ratio=1)
    return table


def _joined(items: tuple[str, ...] | list[str], limit: int = 8) -> Text:
    shown = [one_line(i, 120) for i in items[:limit]]
    text = Text(", ".join(shown))
    if len(items) > limit:
        text.append(f" and {len(items) - limit} more", style="dim")
    return text


def _link_rows(table: Table, link: RunLink | None, label: str = "runs") -> None:
    if link is None:
        return
    noun = "run" if link.total == 1 else "runs"
    head = Text(f"→ {link.total} {noun}", style=STYLES["link"])
    head.append(f"  {one_line(link.how, 120)}", style="dim")
    head.append("  (o lists them)", style="dim")
    table.add_row(label, head)
    for run in link.runs[:SHOWN_RUNS]:
        state = (run.status or "").lower()
        line = Text(STATUS_SYMBOLS.get(state, "·") + " ")
        line.append(inert(run.name))
        if run.experiment:
            line.append(f"  {inert(run.experiment)}", style="dim")
        started = local_moment(run.start_time)
        if started is not None:
            line.append("  " + started.strftime("%Y-%m-%d %H:%M"))
        table.add_row("", line)
    if link.total > SHOWN_RUNS:
        table.add_row("", Text(f"… {link.total - SHOWN_RUNS} more", style="dim"))


def stage_detail(data: PipelinesData, side: str, stage: Stage, pipeline: Pipeline | None) -> Table:
    """Everything known about one stage, each file-borne value as inert text."""
    table = _pairs()
    status = data.statuses(side).get(stage.id)
    title = Text(one_line(stage.name, 120), style="bold")
    # on a joined side the id carries its file, which the "in" part names already
    own_id = stage.id.removeprefix(f"{stage.origin}:") if stage.origin else stage.id
    if own_id != stage.name:
        title.append(f"  id {one_line(own_id, 80)}", style="dim")
    title.append(f"  {one_line(stage.kind, 30)}", style="dim")
    if stage.origin:
        title.append(f"  in {one_line(stage.origin, 80)}", "dim")
    elif pipeline is not None:
        title.append(f"  in {one_line(relative(pipeline.path, data.overview.root), 80)}", "dim")
    table.add_row("stage", title)
    phase = Text(stage.phase.label if stage.phase else "unmapped", style="bold")
    table.add_row("phase", phase)
    table.add_row("why", Text(one_line(stage.phase_reason, 300), style="italic"))
    table.add_row("needs", _joined(stage.needs) if stage.needs else Text("nothing", "dim"))
    if status is not None:
        line = Text(f"{status.state.symbol} {one_line(status.summary or status.state.words, 200)}")
        line.stylize(style_of(state_style(status.state)))
        if status.source and status.source not in status.summary:
            line.append(f"  from {one_line(status.source, 40)}", style="dim")
        table.add_row("status", line)
        if status.duration is not None:
            table.add_row("took", Text(format_duration(status.duration)))
        for detail in status.details[:6]:
            table.add_row("", Text(one_line(detail, 300), style="dim"))
    else:
        table.add_row("status", Text("no record of a run", style="dim"))
    _link_rows(table, data.link_for(side, stage.id), "runs" if side == "mlops" else "CI runs")
    if stage.matrix is not None:
        table.add_row("matrix", Text(one_line(stage.matrix.summary(), 200)))
    if stage.environment:
        table.add_row("env", Text(one_line(stage.environment, 80)))
    for command in stage.commands[:6]:
        table.add_row("run", Text(one_line(command, 300)))
    if len(stage.commands) > 6:
        table.add_row("", Text(f"… {len(stage.commands) - 6} more commands", style="dim"))
    for action in stage.actions[:6]:
        table.add_row("uses", Text(one_line(action, 200)))
    for image in stage.images[:3]:
        table.add_row("image", Text(one_line(image, 200)))
    if stage.inputs:
        table.add_row("in", _joined(stage.inputs))
    if stage.outputs:
        table.add_row("out", _joined(stage.outputs))
    if stage.params:
        table.add_row("params", _joined(stage.params))
    if stage.metrics:
        table.add_row("metrics", _joined(stage.metrics))
    return table


def pipeline_detail(data: PipelinesData, side: str) -> RenderableType:
    """The side's pipeline as a whole (the header is selected)."""
    pipeline = data.pipeline(side)
    overview = data.overview
    if pipeline is None:
        text = Text(f"No {SIDE_LABELS[side]} pipeline in this repository", style="bold")
        others = len(overview.repositories) - 1
        if others > 0:
            text.append(f"\n{others} other repositories found; P picks one", style="dim")
        return text
    table = _pairs()
    for member in pipeline.members or (pipeline,):
        name = one_line(relative(member.path, overview.root), 200)
        table.add_row("file", Text(f"{name}  ({member.format}, {len(member.stages)} stages)"))
    table.add_row(
        "graph", Text(f"{len(pipeline.stages)} stages, {len(pipeline.edges)} dependencies")
    )
    ci = overview.ci_run_of(pipeline)
    if ci is not None:
        line = Text(one_line(ci.describe(), 120), style=style_of(state_style(ci.state)))
        if ci.url:
            line.append(f"  {one_line(ci.url, 120)}", style="dim")
        table.add_row("CI run", line)
        _link_rows(table, data.links.ci, "runs")
    read = followed(pipeline)
    for ref in [r for r in pipeline.references if r not in read][:6]:
        where = f" from {one_line(ref.stage, 40)}" if ref.stage else ""
        table.add_row("refers", Text(f"{ref.kind}{where}: {one_line(ref.target, 120)}", "dim"))
    for problem in pipeline.problems[:6]:
        table.add_row("problem", Text(one_line(problem, 300), style="yellow"))
    table.add_row("", Text("enter or P: another repository  ·  g: the graph of this side", "dim"))
    return table


def _coverage_line(comparison: Comparison, side: str) -> Text:
    pipeline = comparison.devops if side == "devops" else comparison.mlops
    label = SIDE_LABELS[side]
    if pipeline is None:
        return Text(f"{label}: no pipeline", style="dim")
    covered = [r.phase for r in comparison.rows if getattr(r, side)]
    lacking = [r.phase for r in comparison.rows if not getattr(r, side)]
    text = Text(f"{label} covers {len(covered)} of {len(Phase)}: ", style="bold")
    text.append(", ".join(p.value for p in covered) or "nothing", style=STYLES["ok"])
    if lacking:
        text.append("  lacks ", style="bold")
        text.append(", ".join(p.value for p in lacking), style=STYLES["warn"])
    return text


def metrics_band(overview: Overview, wrap: bool = True) -> Table:
    """The article's DevOps and MLOps performance metrics, side by side, each with its
    evidence and period, or what it would need. Unwrapped (the strip under the table), a line
    that does not fit ends in "…"; the whole of it is in ``mltop pipelines``."""
    band = Table(box=None, padding=(0, 2, 0, 0), expand=True, title_justify="left")
    for title in ("DevOps metrics", "MLOps metrics"):
        band.add_column(
            title,
            ratio=1,
            header_style="bold underline",
            no_wrap=not wrap,
            overflow="fold" if wrap else "ellipsis",
        )
    cells: dict[str, list[Text]] = {"devops": [], "mlops": []}
    for metric in overview.metrics:
        line = Text(f"{one_line(metric.name, 60)}: ", style="bold")
        if metric.value is None:
            line.append(f"needs {one_line(metric.needs, 200)}", style="dim")
        else:
            line.append(one_line(metric.value, 200), style=STYLES["ok"])
            extra = "; ".join(x for x in (metric.period, metric.evidence) if x)
            if extra:
                line.append(f"  {one_line(extra, 200)}", style="dim")
        cells[metric.side].append(line)
    for index in range(max(len(cells["devops"]), len(cells["mlops"]))):
        row = [cells[side][index] if index < len(cells[side]) else Text("") for side in SIDES]
        band.add_row(*row)
    return band


def summary(data: PipelinesData, band: bool = True) -> RenderableType:
    """What each side covers and lacks per phase, the maturity reading and its evidence."""
    overview = data.overview
    comparison = overview.comparison
    parts: list[RenderableType] = []
    if overview.pairing:
        parts.append(Text(one_line(overview.pairing, 300), style="dim"))
    parts += [
        _coverage_line(comparison, "devops"),
        _coverage_line(comparison, "mlops"),
    ]
    both = [r.phase.value for r in comparison.rows if r.coverage == "both"]
    neither = [r.phase.value for r in comparison.rows if r.coverage == "none"]
    both_text = ", ".join(both) or "none"
    neither_text = ", ".join(neither) or "none"
    parts.append(Text(f"both: {both_text}  ·  neither: {neither_text}", "dim"))
    maturity = comparison.maturity
    head = Text(f"\nMLOps maturity: level {maturity.level}", style="bold")
    reading = maturity.headline.removeprefix(f"level {maturity.level}: ")
    head.append(f" — {one_line(reading, 400)}")
    parts.append(head)
    if maturity.evidence:
        parts.append(Text("evidence", style="bold underline"))
        parts.extend(Text(f" ✓ {one_line(e, 300)}", style="green") for e in maturity.evidence)
    if maturity.missing:
        parts.append(Text("missing", style="bold underline"))
        parts.extend(Text(f" ✗ {one_line(m, 300)}", style="yellow") for m in maturity.missing)
    if overview.metrics and band:
        parts += [Text(""), metrics_band(overview)]
    unmapped = [*comparison.unmapped_devops, *comparison.unmapped_mlops]
    if unmapped:
        names = ", ".join(stage_label(s) for s in unmapped[:8])
        parts.append(Text(f"\nunmapped: {names} (map them in {OVERRIDES_FILE})", style="yellow"))
    others = [r for r in overview.repositories if r is not overview.repository]
    if others:
        names = ", ".join(one_line(relative(r.root, overview.root), 60) for r in others[:6])
        more = f" and {len(others) - 6} more" if len(others) > 6 else ""
        parts.append(Text(f"\nother repositories (P to pick): {names}{more}", style="dim"))
    notes = list(overview.notes)
    if data.link_note:
        notes.append(data.link_note)
    for note in notes:
        parts.append(Text(f"note: {one_line(note, 300)}", style="dim"))
    if overview.problems:
        parts.append(Text(f"\n{len(overview.problems)} problems", style="bold yellow"))
        parts.extend(Text(f" {one_line(p, 300)}", style="yellow") for p in overview.problems[:20])
    return Group(*parts)

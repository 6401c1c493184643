"""One pipeline's stage graph (``g``, or ``enter`` on a stage, in the pipelines screen).

The drawing comes from :mod:`mltop.core.pipelines.dag_layout` (layers by longest path, boxes
joined by box-drawing lines, cycles reported) computed in a worker; this screen only turns its
style names into colours, highlights the selected box, and scrolls: a wide graph scrolls
sideways, following the selection. The arrow keys move between boxes: left/right within a
layer, up/down to the nearest box of the layer above or below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.geometry import Region, Spacing
from textual.message import Message
from textual.widgets import Static

from mltop.core.common.sanitize import inert
from mltop.core.pipelines.dag_layout import DagDrawing, pipeline_drawing, state_style
from mltop.core.pipelines.model import Pipeline, format_duration, one_line
from mltop.core.pipelines.repository import side_title
from mltop.tui.screens.base import MltopScreen, back_binding
from mltop.tui.widgets.keybar import KeyBar
from mltop.tui.widgets.phase_grid import SIDE_LABELS, STYLES, Side, style_of

if TYPE_CHECKING:
    from mltop.tui.screens.pipelines.data import PipelinesData

SCROLL_STEP = 16


@dataclass
class DagReady(Message):
    drawing: DagDrawing
    generation: int


class DagCanvas(Static):
    """The drawing; its own width, so the container around it scrolls sideways."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"dag-canvas--selected"}
    DEFAULT_CSS = """
    DagCanvas {
        width: auto;
        height: auto;
    }
    DagCanvas > .dag-canvas--selected {
        background: $accent 35%;
        text-style: bold;
    }
    """


def drawing_text(drawing: DagDrawing, selected: str | None, highlight: object = None) -> Text:
    """The drawing as Rich text: style names as colours, the selected box highlighted."""
    lines: list[Text] = []
    for line, spans in zip(drawing.lines, drawing.styles, strict=True):
        text = Text(line, no_wrap=True, end="")
        for start, end, name in spans:
            text.stylize(style_of(name), start, end)
        lines.append(text)
    place = drawing.boxes.get(selected) if selected is not None else None
    if place is not None and highlight is not None:
        for row, start, end in place.rows:
            if row < len(lines):
                line = lines[row]
                if len(line) < end:
                    line.append(" " * (end - len(line)))
                line.stylize(highlight, start, end)  # type: ignore[arg-type]
    return Text("\n", no_wrap=True).join(lines)


class PipelineDagScreen(MltopScreen[tuple[str, str | None] | None]):
    """Dismisses with (side, stage id) when ``o`` asks for the stage's linked runs."""

    CSS_PATH = "pipeline_dag.tcss"
    HELP_TITLE = "pipeline graph"

    BINDINGS: ClassVar[list[BindingType]] = [
        back_binding("dag"),
        Binding("left,h", "select('left')", "left", show=False, id="dag.left"),
        Binding("right,l", "select('right')", "right", show=False, id="dag.right"),
        Binding("up,k", "select('up')", "up", show=False, id="dag.up"),
        Binding("down,j", "select('down')", "down", show=False, id="dag.down"),
        Binding("shift+left,less_than_sign", "scroll(-1)", "scroll left", show=False,
                id="dag.scroll_left"),
        Binding("shift+right,greater_than_sign", "scroll(1)", "scroll right", show=False,
                id="dag.scroll_right"),
        Binding("home", "edge(-1)", "first stage", show=False, id="dag.home"),
        Binding("end", "edge(1)", "last stage", show=False, id="dag.end"),
        Binding("tab", "other", "other pipeline", id="dag.other"),
        Binding("L", "toggle_list", "lines/list", id="dag.list"),
        Binding("o", "open_runs", "linked runs", id="dag.runs"),
    ]  # fmt: skip

    def __init__(self, data: PipelinesData, side: Side, stage_id: str | None = None) -> None:
        super().__init__()
        self.data = data
        self.side: Side = side
        self.selected = stage_id
        self.drawing: DagDrawing | None = None
        self.as_list = False
        self._generation = 0

    @property
    def pipeline(self) -> Pipeline | None:
        return self.data.pipeline(self.side)

    def compose(self) -> ComposeResult:
        yield Static(id="dag-header")
        with ScrollableContainer(id="dag-scroll"):
            yield DagCanvas(Text("drawing…", style="dim"), id="dag-canvas")
        yield Static(id="dag-detail")
        yield KeyBar(id="dag-keys")

    def on_mount(self) -> None:
        self.query_one("#dag-scroll").can_focus = False
        self._draw_header()
        self._layout()

    # -- drawing ----------------------------------------------------------------------------

    def _layout(self) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        self._generation += 1
        self._compute(self._generation, pipeline, self.as_list)

    @work(thread=True, exclusive=True, group="dag")
    def _compute(self, generation: int, pipeline: Pipeline, as_list: bool) -> None:
        statuses = self.data.statuses(self.side)
        links = self.data.stage_links(self.side)
        extra = {
            sid: [(f"→ {link.total} run{'s' if link.total != 1 else ''}", "link")]
            for sid, link in links.items()
        }
        drawing = pipeline_drawing(
            pipeline, statuses, extra=extra, force_list=as_list, wrap_width=160
        )
        self.post_message(DagReady(drawing, generation))

    @property
    def settled(self) -> bool:
        return self.drawing is not None

    def on_dag_ready(self, message: DagReady) -> None:
        if message.generation != self._generation:
            return
        self.drawing = message.drawing
        if self.selected not in message.drawing.boxes:
            first = next((layer[0] for layer in message.drawing.layers if layer), None)
            self.selected = first
        self._redraw()
        self.call_after_refresh(self._scroll_to_selected)

    def _redraw(self) -> None:
        drawing = self.drawing
        if drawing is None:
            return
        canvas = self.query_one(DagCanvas)
        highlight = canvas.get_component_rich_style("dag-canvas--selected")
        if not drawing.lines:
            canvas.update(Text("no stages", style="dim"))
        else:
            canvas.update(drawing_text(drawing, self.selected, highlight))
        self._draw_header()
        self._draw_detail()

    def _draw_header(self) -> None:
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(" graph ", style="bold reverse")
        pipeline = self.pipeline
        if pipeline is None:
            header.append("  no pipeline")
        else:
            path = side_title(pipeline, self.data.overview.root)
            header.append(f"  {SIDE_LABELS[self.side]}: ", style="bold")
            header.append(one_line(path, 120), style="bold")
            header.append(
                f"  ·  {pipeline.format}  ·  {len(pipeline.stages)} stages, "
                f"{len(pipeline.edges)} dependencies"
            )
        drawing = self.drawing
        if drawing is not None:
            header.append(f"  ·  {len(drawing.layers)} layers  ·  {drawing.mode}", style="dim")
        self.query_one("#dag-header", Static).update(header)

    def _draw_detail(self) -> None:
        detail = Text(no_wrap=False)
        pipeline = self.pipeline
        drawing = self.drawing
        stage = pipeline.stage(self.selected) if pipeline and self.selected else None
        if stage is not None:
            detail.append(one_line(stage.name, 120), style="bold")
            detail.append(f"  {one_line(stage.kind, 30)}", style="dim")
            detail.append(f"  ·  {stage.phase.label if stage.phase else 'unmapped'}")
            detail.append(f" ({one_line(stage.phase_reason, 160)})", style="dim italic")
            status = self.data.statuses(self.side).get(stage.id)
            detail.append("\nneeds ", style="bold")
            detail.append(
                ", ".join(one_line(n, 40) for n in stage.needs[:8]) or "nothing",
                style="" if stage.needs else "dim",
            )
            if status is not None:
                detail.append("  ·  ")
                detail.append(
                    f"{status.state.symbol} {one_line(status.summary or status.state.value, 120)}",
                    style=style_of(state_style(status.state)),
                )
                if status.duration is not None:
                    detail.append(f" {format_duration(status.duration)}")
            link = self.data.stage_links(self.side).get(stage.id)
            if link is not None:
                detail.append("\n")
                detail.append(f"→ {link.total} runs", style=STYLES["link"])
                detail.append(f" {one_line(link.how, 80)}: ", style="dim")
                detail.append(", ".join(inert(r.name) for r in link.runs[:6]))
                detail.append("  (o lists them)", style="dim")
        if drawing is not None:
            for note in drawing.notes:
                detail.append("\n" + one_line(note, 300), style="yellow")
        self.query_one("#dag-detail", Static).update(detail)

    def _scroll_to_selected(self) -> None:
        drawing = self.drawing
        if drawing is None or self.selected not in drawing.boxes:
            return
        place = drawing.boxes[self.selected]
        scroller = self.query_one("#dag-scroll", ScrollableContainer)
        scroller.scroll_to_region(
            Region(place.x, place.y, place.width, place.height),
            animate=False,
            spacing=Spacing(1, 4, 1, 4),
        )

    # -- actions ----------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(None)

    def action_select(self, direction: str) -> None:
        drawing = self.drawing
        if drawing is None or self.selected is None:
            return
        target = drawing.neighbour(self.selected, direction)
        if target is not None:
            self.selected = target
            self._redraw()
            self._scroll_to_selected()

    def action_edge(self, direction: int) -> None:
        drawing = self.drawing
        if drawing is None:
            return
        ids = [sid for layer in drawing.layers for sid in layer]
        if ids:
            self.selected = ids[0] if direction < 0 else ids[-1]
            self._redraw()
            self._scroll_to_selected()

    def action_scroll(self, direction: int) -> None:
        scroller = self.query_one("#dag-scroll", ScrollableContainer)
        scroller.scroll_relative(x=direction * SCROLL_STEP, animate=False)

    def action_other(self) -> None:
        other: Side = "mlops" if self.side == "devops" else "devops"
        pipeline = self.data.pipeline(other)
        if pipeline is None or not pipeline.stages:
            self.notify(f"no {SIDE_LABELS[other]} pipeline to draw", timeout=3)
            return
        self.side = other
        self.selected = None
        self.drawing = None
        self.query_one(DagCanvas).update(Text("drawing…", style="dim"))
        self._draw_header()
        self._layout()

    def action_toggle_list(self) -> None:
        self.as_list = not self.as_list
        self._layout()

    def action_open_runs(self) -> None:
        link = self.data.link_for(self.side, self.selected)
        if link is None or not link.total:
            self.notify("no experiment runs are linked here", timeout=3)
            return
        self.dismiss((self.side, self.selected))

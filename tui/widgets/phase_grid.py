"""The side-by-side table of the pipelines screen: one row per lifecycle phase, a DevOps and an
MLOps column, and a cursor on one stage (or on a column's header).

The widget draws fixed-width cells itself (rather than a Rich table) so a row is always one line
(two with reasons shown), the cursor can fill a whole cell, and the screen can scroll the
selected row into view knowing exactly where it is. Everything taken from a pipeline file goes
through :func:`mltop.core.pipelines.model.one_line` into ``rich.text.Text``, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Click
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget

from mltop.core.pipelines.compare import Comparison
from mltop.core.pipelines.dag_layout import state_style
from mltop.core.pipelines.links import RunLink
from mltop.core.pipelines.model import Phase, Stage, StageStatus, one_line

Side = Literal["devops", "mlops"]
SIDES: tuple[Side, Side] = ("devops", "mlops")
SIDE_LABELS = {"devops": "DevOps", "mlops": "MLOps"}
PHASE_WIDTH = 19
COVERAGE_WIDTH = 11
NARROW = 100
"""Below this many columns the coverage column is left out (the ✗ cells already say it)."""

#: Style names of core drawings (dag_layout) as Rich styles.
STYLES: dict[str, Style] = {
    "title": Style(bold=True),
    "dim": Style(dim=True),
    "ok": Style(color="green"),
    "fail": Style(color="red", bold=True),
    "warn": Style(color="yellow"),
    "running": Style(color="cyan", bold=True),
    "edge": Style(color="bright_blue"),
    "border": Style(color="grey62"),
    "link": Style(color="#c792ea"),
}
_COVERAGE_STYLE = {
    "both": STYLES["ok"],
    "DevOps only": STYLES["warn"],
    "MLOps only": STYLES["warn"],
    "none": Style(color="red", dim=True),
}
_KIND_SHORT = {"dvc-stage": "stage", "template-ref": "template"}


def style_of(name: str) -> Style:
    return STYLES.get(name, Style())


def stage_label(stage: Stage) -> str:
    """The stage's name when it reads well, else its id (names with ``${{ }}`` do not)."""
    name = stage.name if len(stage.name) <= 40 and "${{" not in stage.name else stage.id
    return one_line(name, 60)


@dataclass(frozen=True)
class GridRow:
    """One line group of the table: a phase (None: unmapped stages) and a stage per side."""

    phase: Phase | None
    first: bool
    stages: dict[str, Stage | None]
    gaps: dict[str, str]
    coverage: str


@dataclass
class GridData:
    """What the table shows; built by the screen from an Overview and its run links."""

    comparison: Comparison
    titles: dict[str, str]
    notes: dict[str, Text] = field(default_factory=dict)
    statuses: dict[str, dict[str, StageStatus]] = field(default_factory=dict)
    links: dict[str, dict[str, RunLink]] = field(default_factory=dict)


def grid_rows(comparison: Comparison) -> list[GridRow]:
    rows: list[GridRow] = []
    for row in comparison.rows:
        count = max(1, len(row.devops), len(row.mlops))
        for i in range(count):
            rows.append(
                GridRow(
                    row.phase,
                    i == 0,
                    {
                        "devops": row.devops[i] if i < len(row.devops) else None,
                        "mlops": row.mlops[i] if i < len(row.mlops) else None,
                    },
                    {
                        "devops": row.devops_gap if i == 0 else "",
                        "mlops": row.mlops_gap if i == 0 else "",
                    },
                    row.coverage if i == 0 else "",
                )
            )
    unmapped = {"devops": comparison.unmapped_devops, "mlops": comparison.unmapped_mlops}
    count = max(len(unmapped["devops"]), len(unmapped["mlops"]))
    for i in range(count):
        rows.append(
            GridRow(
                None,
                i == 0,
                {side: (unmapped[side][i] if i < len(unmapped[side]) else None) for side in SIDES},
                {"devops": "", "mlops": ""},
                "",
            )
        )
    return rows


class PhaseGrid(Widget, can_focus=True):
    """The phase table with a cursor; posts :class:`Selected` and :class:`Activated`."""

    HELP_SECTION = "phase table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "next stage", show=False, id="pipelines.down"),
        Binding("up,k", "move(-1)", "previous stage", show=False, id="pipelines.up"),
        Binding("left,h", "side(-1)", "DevOps side", show=False, id="pipelines.left"),
        Binding("right,l", "side(1)", "MLOps side", show=False, id="pipelines.right"),
        Binding("home", "edge(-1)", "first", show=False, id="pipelines.home"),
        Binding("end", "edge(1)", "last", show=False, id="pipelines.end"),
        Binding("enter", "activate", "open", id="pipelines.open"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"phase-grid--cursor", "phase-grid--header"}
    DEFAULT_CSS = """
    PhaseGrid {
        height: auto;
        width: 1fr;
    }
    PhaseGrid > .phase-grid--cursor {
        background: $accent 30%;
    }
    PhaseGrid:focus > .phase-grid--cursor {
        background: $accent 55%;
    }
    PhaseGrid > .phase-grid--header {
        text-style: bold;
    }
    """

    @dataclass
    class Selected(Message):
        """The cursor moved to ``stage_id`` on ``side`` (None: the side's header)."""

        side: Side
        stage_id: str | None

    @dataclass
    class Activated(Message):
        """``enter`` on a stage (open its graph) or on a header (pick the pipeline)."""

        side: Side
        stage_id: str | None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: GridData | None = None
        self.rows: list[GridRow] = []
        self.side: Side = "mlops"
        self.index = -1  # -1: the header of the side
        self.show_reasons = False
        self._order: dict[str, list[Stage]] = {"devops": [], "mlops": []}
        self._line_of_row: list[int] = []
        self._header_lines = 2

    # -- data and cursor ----------------------------------------------------------------------

    def show(self, data: GridData | None) -> None:
        """New data; the cursor stays on the same stage id where it still exists."""
        first = self.data is None
        keep = self.selected_stage
        self.data = data
        self.rows = grid_rows(data.comparison) if data is not None else []
        self._order = {side: [] for side in SIDES}
        for row in self.rows:
            for side in SIDES:
                stage = row.stages[side]
                if stage is not None:
                    self._order[side].append(stage)
        if first:
            # start on the first MLOps stage: that side is what the screen is about
            self.side = "mlops" if self._order["mlops"] or not self._order["devops"] else "devops"
            self.index = 0 if self._order[self.side] else -1
        elif keep is not None:
            ids = [s.id for s in self._order[self.side]]
            self.index = ids.index(keep.id) if keep.id in ids else (0 if ids else -1)
        else:
            self.index = min(self.index, len(self._order[self.side]) - 1)
        self.refresh(layout=True)
        self._announce()

    @property
    def selected_stage(self) -> Stage | None:
        order = self._order.get(self.side, [])
        return order[self.index] if 0 <= self.index < len(order) else None

    def select(self, side: Side, stage_id: str | None) -> None:
        self.side = side
        ids = [s.id for s in self._order[side]]
        self.index = ids.index(stage_id) if stage_id in ids else -1
        self.refresh()
        self._announce()

    def set_reasons(self, show: bool) -> None:
        self.show_reasons = show
        self.refresh(layout=True)
        self.call_after_refresh(self._scroll_to_cursor)

    def _announce(self) -> None:
        stage = self.selected_stage
        self.post_message(self.Selected(self.side, stage.id if stage else None))
        self.call_after_refresh(self._scroll_to_cursor)

    def action_move(self, delta: int) -> None:
        count = len(self._order[self.side])
        new = max(-1, min(count - 1, self.index + delta))
        if new != self.index:
            self.index = new
            self.refresh()
            self._announce()

    def action_edge(self, direction: int) -> None:
        self.index = -1 if direction < 0 else len(self._order[self.side]) - 1
        self.refresh()
        self._announce()

    def action_side(self, direction: int) -> None:
        side: Side = "devops" if direction < 0 else "mlops"
        if side == self.side:
            return
        current = self.selected_stage
        self.side = side
        order = self._order[side]
        if current is None or not order:
            self.index = -1 if current is None else (0 if order else -1)
        else:
            # the stage in the same phase on the other side, else the nearest row
            row = self._row_of(current)
            best, best_gap = -1, None
            for i, stage in enumerate(order):
                gap = abs(self._row_of(stage) - row)
                if best_gap is None or gap < best_gap:
                    best, best_gap = i, gap
            self.index = best
        self.refresh()
        self._announce()

    def action_activate(self) -> None:
        stage = self.selected_stage
        self.post_message(self.Activated(self.side, stage.id if stage else None))

    def _row_of(self, stage: Stage) -> int:
        for i, row in enumerate(self.rows):
            if any(s is stage for s in row.stages.values()):
                return i
        return 0

    # -- drawing ------------------------------------------------------------------------------

    def _widths(self) -> tuple[int, int, int]:
        width = max(self.size.width, 40)
        coverage = COVERAGE_WIDTH if width >= NARROW else 0
        rest = width - PHASE_WIDTH - coverage - (3 if coverage else 2)
        side = max(rest // 2, 10)
        return side, side + (rest - 2 * side), coverage

    def _row_height(self, row: GridRow) -> int:
        if self.show_reasons and any(row.stages.values()):
            return 2
        return 1

    def render(self) -> Text:
        if self.data is None:
            return Text("")
        side_w = dict(zip(SIDES, self._widths()[:2], strict=True))
        coverage_w = self._widths()[2]
        cursor = self.get_component_rich_style("phase-grid--cursor")
        header_style = self.get_component_rich_style("phase-grid--header")
        out = Text(no_wrap=True, overflow="ellipsis")
        lines: list[Text] = []

        def assemble(cells: list[tuple[Text, int]]) -> Text:
            line = Text(no_wrap=True)
            for i, (cell, width) in enumerate(cells):
                if i:
                    line.append(" ")
                line.append_text(_fit(cell, width))
            return line

        # header: the pipeline of each side, then notes (GitHub run, run links) when any
        head = []
        for side in SIDES:
            title = Text(self.data.titles.get(side, ""), style=header_style)
            if self.side == side and self.index == -1:
                title.stylize(cursor)
                title = _fit(title, side_w[side], fill=cursor)
            head.append((title, side_w[side]))
        cells = [(Text("phase", style=header_style), PHASE_WIDTH), *head]
        if coverage_w:
            cells.append((Text("coverage", style=header_style), coverage_w))
        lines.append(assemble(cells))
        if self.data.notes:
            note_cells = [(Text(""), PHASE_WIDTH)]
            for side in SIDES:
                note_cells.append((self.data.notes.get(side, Text("")), side_w[side]))
            lines.append(assemble(note_cells))
        self._header_lines = len(lines) + 1
        lines.append(Text("─" * max(self.size.width, 1), style="dim"))
        self._line_of_row = []
        for row in self.rows:
            self._line_of_row.append(len(lines))
            label = ""
            if row.first:
                label = row.phase.label if row.phase is not None else "unmapped"
            first = [(Text(label, style="bold" if row.first else ""), PHASE_WIDTH)]
            second = [(Text(""), PHASE_WIDTH)]
            for side in SIDES:
                stage = row.stages[side]
                selected = stage is not None and stage is self.selected_stage and self.side == side
                if stage is None:
                    gap = row.gaps[side]
                    cell = Text()
                    if gap:
                        cell.append("✗ ", style="red")
                        cell.append(one_line(gap, 120), style="dim")
                    first.append((cell, side_w[side]))
                    second.append((Text(""), side_w[side]))
                    continue
                cell = self._stage_line(side, stage)
                why = Text("  why: " + one_line(stage.phase_reason, 200), style="dim italic")
                if selected:
                    cell = _fit(cell, side_w[side], fill=cursor)
                    why = _fit(why, side_w[side], fill=cursor)
                first.append((cell, side_w[side]))
                second.append((why, side_w[side]))
            if coverage_w:
                first.append(
                    (Text(row.coverage, style=_COVERAGE_STYLE.get(row.coverage, "")), coverage_w)
                )
                second.append((Text(""), coverage_w))
            lines.append(assemble(first))
            if self._row_height(row) == 2:
                lines.append(assemble(second))
        out = Text("\n", no_wrap=True).join(lines)
        return out

    def _stage_line(self, side: str, stage: Stage) -> Text:
        assert self.data is not None
        status = self.data.statuses.get(side, {}).get(stage.id)
        link = self.data.links.get(side, {}).get(stage.id)
        text = Text()
        if status is not None:
            text.append(status.state.symbol + " ", style=style_of(state_style(status.state)))
        else:
            text.append("• ", style="dim")
        text.append(stage_label(stage), style="bold")
        if status is not None:
            # the same words as the CLI's table; the full summary is in the stage pane
            text.append(
                "  " + one_line(status.brief(), 60), style=style_of(state_style(status.state))
            )
        if link is not None:
            noun = "run" if link.total == 1 else "runs"
            text.append(f"  → {link.total} {noun}", style=STYLES["link"])
        kind = _KIND_SHORT.get(stage.kind, stage.kind)
        text.append(f"  {one_line(kind, 20)}", style="dim")
        if stage.matrix is not None:
            count = stage.matrix.combinations
            text.append(f" ×{count}" if count is not None else " ×?", style="dim")
        if stage.needs:
            # on a joined side a stage needs stages of its own file: drop the file prefix
            own = f"{stage.origin}:" if stage.origin else ""
            needs = ", ".join(one_line(n.removeprefix(own), 30) for n in stage.needs[:3])
            more = f" +{len(stage.needs) - 3}" if len(stage.needs) > 3 else ""
            text.append(f"  ← {needs}{more}", style="dim")
        return text

    def cursor_region(self) -> Region:
        """Where the cursor's row is, in the widget's lines (for scrolling to it)."""
        stage = self.selected_stage
        if stage is None or not self._line_of_row:
            return Region(0, 0, 1, 1)
        row = self._row_of(stage)
        line = self._line_of_row[row] if row < len(self._line_of_row) else 0
        return Region(0, line, 1, self._row_height(self.rows[row]))

    def _scroll_to_cursor(self) -> None:
        parent = self.parent
        if isinstance(parent, Widget) and parent.is_scrollable:
            region = self.cursor_region()
            if region.y == 0:
                parent.scroll_home(animate=False)
            else:
                parent.scroll_to_region(region, animate=False, top=False)

    # -- mouse --------------------------------------------------------------------------------

    def on_click(self, event: Click) -> None:
        devops_w, mlops_w, _coverage = self._widths()
        x = event.x
        side: Side | None = None
        if PHASE_WIDTH + 1 <= x < PHASE_WIDTH + 1 + devops_w:
            side = "devops"
        elif PHASE_WIDTH + 2 + devops_w <= x < PHASE_WIDTH + 2 + devops_w + mlops_w:
            side = "mlops"
        if side is None:
            return
        self.focus()
        if event.y < self._header_lines:
            self.select(side, None)
            if event.chain >= 2:
                self.action_activate()
            return
        for row_index, line in enumerate(self._line_of_row):
            height = self._row_height(self.rows[row_index])
            if line <= event.y < line + height:
                stage = self.rows[row_index].stages[side]
                if stage is not None:
                    self.select(side, stage.id)
                    if event.chain >= 2:
                        self.action_activate()
                return


def _fit(text: Text, width: int, fill: Style | None = None) -> Text:
    """``text`` cut (with …) or padded to exactly ``width`` cells; ``fill`` styles the whole
    cell (the cursor)."""
    out = text.copy()
    out.no_wrap = True
    out.truncate(width, overflow="ellipsis", pad=True)
    if fill is not None:
        out.stylize(fill)
    return out

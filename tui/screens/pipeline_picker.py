"""``P`` (or ``enter`` on a column header) on the pipelines screen: choose the pipeline shown on
one side. Every pipeline found under the folder is listed; those of the other kind are shown but
cannot be chosen (a CI file on the MLOps side would make the maturity reading meaningless)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from mltop.core.pipelines.model import Pipeline, one_line
from mltop.tui.screens.picker import OptionPicker
from mltop.tui.widgets.phase_grid import SIDE_LABELS, Side


def relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


class PipelinePicker(OptionPicker[Path | None]):
    """Dismisses with the chosen pipeline's path, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="picker.cancel"),
        Binding("j", "cursor(1)", "down", show=False, id="picker.down"),
        Binding("k", "cursor(-1)", "up", show=False, id="picker.up"),
    ]

    DEFAULT_CSS = """
    PipelinePicker > Vertical {
        width: 100;
    }
    PipelinePicker .picker--hint {
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(
        self, pipelines: list[Pipeline], side: Side, current: Path | None, root: Path
    ) -> None:
        super().__init__()
        self.side = side
        self.root = root
        self.current = Path(current).resolve() if current is not None else None
        kind = side
        # the side's own kind first, each group in path order
        self.pipelines = sorted(pipelines, key=lambda p: (p.kind != kind, relative(p.path, root)))

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        width = max((len(relative(p.path, self.root)) for p in self.pipelines), default=10)
        width = min(width, 56)
        for index, pipeline in enumerate(self.pipelines):
            usable = pipeline.kind == self.side and bool(pipeline.stages)
            line = Text(no_wrap=True, overflow="ellipsis")
            mark = "▸ " if self._is_current(pipeline) else "  "
            line.append(mark, style="bold")
            name = one_line(relative(pipeline.path, self.root), 200)
            line.append(name.ljust(width), style="bold" if usable else "dim")
            count = len(pipeline.stages)
            line.append(f"  {pipeline.format:<16}", style="dim")
            line.append(f" {count:>3} stage{'s' if count != 1 else ' '}")
            if pipeline.kind != self.side:
                line.append(f"  ({SIDE_LABELS[pipeline.kind]})", style="dim")
            elif not pipeline.stages:
                line.append("  (nothing to show)", style="dim")
            if pipeline.problems:
                problems = len(pipeline.problems)
                line.append(f"  ⚠ {problems} problem{'s' if problems != 1 else ''}", style="yellow")
            options.append(Option(line, id=str(index), disabled=not usable))
        with Vertical() as box:
            box.border_title = f"{SIDE_LABELS[self.side]} pipeline"
            if options:
                yield OptionList(*options)
            else:
                yield Static(Text("no pipelines found", style="dim"), classes="picker--hint")
            yield Static(
                Text("enter choose  ·  esc cancel  ·  the other kind is listed, not choosable"),
                classes="picker--hint",
            )

    def _is_current(self, pipeline: Pipeline) -> bool:
        return self.current is not None and Path(pipeline.path).resolve() == self.current

    def on_mount(self) -> None:
        if not self.pipelines:
            return
        option_list = self.query_one(OptionList)
        for index, pipeline in enumerate(self.pipelines):
            if self._is_current(pipeline):
                option_list.highlighted = index
                break
        else:
            option_list.highlighted = 0
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        pipeline = self.pipelines[int(event.option.id or 0)]
        self.dismiss(Path(pipeline.path))

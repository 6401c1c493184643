"""``e`` on the runs screen: show the runs of one experiment (or of all of them)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mltop.core.common.sanitize import inert
from mltop.core.entities import Experiment
from mltop.tui.screens.picker import OptionPicker, picker_bindings

ALL = ""


class ExperimentPicker(OptionPicker[tuple[str, str] | None]):
    """Dismisses with (experiment id, name), ``(ALL, "")`` for every experiment, or None."""

    BINDINGS: ClassVar[list[BindingType]] = picker_bindings("experiments")

    DEFAULT_CSS = """
    ExperimentPicker > Vertical {
        width: 72;
    }
    """

    def __init__(self, experiments: list[Experiment], current: str | None) -> None:
        super().__init__()
        self.experiments = experiments
        self.current = current or ALL

    def compose(self) -> ComposeResult:
        total = sum(e.runs for e in self.experiments)
        options = [Option(Text.assemble(("all experiments", "bold"), f"  {total} runs"), id="-")]
        width = max((len(inert(e.name)) for e in self.experiments), default=10)
        for i, exp in enumerate(self.experiments):
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(inert(exp.name).ljust(width))
            line.append(f"  {exp.runs:>5} runs  ", style="")
            line.append(inert(exp.source_kind), style="dim")
            options.append(Option(line, id=str(i)))
        with Vertical() as box:
            box.border_title = "experiment"
            yield OptionList(*options)

    def on_mount(self) -> None:
        ids = [exp.id for exp in self.experiments]
        self.take_focus(ids.index(self.current) + 1 if self.current in ids else None)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "-":
            self.dismiss((ALL, ""))
            return
        exp = self.experiments[int(event.option.id or 0)]
        self.dismiss((exp.id, exp.name))

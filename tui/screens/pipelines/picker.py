"""``P`` (or ``enter`` on a column header) on the pipelines screen: choose the repository shown.

A folder holding several repositories (or unrelated examples) is split by repository root
(:mod:`mltop.core.pipelines.repository`); each is listed with what it holds and why its two
sides belong together, and the chosen one is shown with all its CI files and ML pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from mltop.core.pipelines.model import one_line
from mltop.core.pipelines.repository import Repository
from mltop.tui.screens.picker import OptionPicker, picker_bindings


def relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


class PipelinePicker(OptionPicker[Path | None]):
    """Dismisses with the chosen repository's root folder, or None."""

    BINDINGS: ClassVar[list[BindingType]] = picker_bindings("picker")

    DEFAULT_CSS = """
    PipelinePicker > Vertical {
        width: 100;
    }
    PipelinePicker .picker--hint {
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, repositories: list[Repository], current: Path | None, root: Path) -> None:
        super().__init__()
        self.root = root
        self.current = Path(current).resolve() if current is not None else None
        self.repositories = list(repositories)

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        names = [relative(r.root, self.root) for r in self.repositories]
        width = min(max((len(n) for n in names), default=10), 48)
        for index, (repo, name) in enumerate(zip(self.repositories, names, strict=True)):
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append("▸ " if repo.root == self.current else "  ", style="bold")
            line.append(one_line(name, 200).ljust(width), style="bold")
            ci, ml = len(repo.devops), len(repo.mlops)
            line.append(f"  {ci:>2} CI file{'s' if ci != 1 else ' '}")
            line.append(f"  {ml:>2} ML pipeline{'s' if ml != 1 else ' '}")
            line.append(f"  {repo.stages:>4} stages", style="dim")
            if repo.marker:
                line.append(f"  ({one_line(repo.marker, 40)})", style="dim")
            options.append(Option(line, id=str(index)))
        with Vertical() as box:
            box.border_title = "repository"
            if options:
                yield OptionList(*options)
            else:
                yield Static(Text("no pipelines found", style="dim"), classes="picker--hint")
            yield Static(
                Text("enter choose  ·  esc cancel  ·  each repository is read as a whole"),
                classes="picker--hint",
            )

    def on_mount(self) -> None:
        if self.repositories:
            roots = [repo.root for repo in self.repositories]
            self.take_focus(roots.index(self.current) if self.current in roots else None)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.repositories[int(event.option.id or 0)].root)

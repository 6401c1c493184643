"""A centred list to choose one thing from: the shared frame of mltop's small pickers."""

from __future__ import annotations

from typing import TypeVar

from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import OptionList

T = TypeVar("T")


def picker_bindings(prefix: str) -> list[BindingType]:
    """``esc`` cancels, ``j``/``k`` move: under ids ``PREFIX.cancel``/``.down``/``.up``, since
    users rebind keys by id and each picker keeps its own."""
    return [
        Binding("escape", "cancel", "cancel", id=f"{prefix}.cancel"),
        Binding("j", "cursor(1)", "down", show=False, id=f"{prefix}.down"),
        Binding("k", "cursor(-1)", "up", show=False, id=f"{prefix}.up"),
    ]


class OptionPicker(ModalScreen[T]):
    """A modal box around an OptionList; ``j``/``k`` move, ``esc`` dismisses with None.

    Subclasses compose the list, take :func:`picker_bindings` under their own id prefix, set
    their box width in their own CSS, and call :meth:`take_focus` when mounted.
    """

    DEFAULT_CSS = """
    OptionPicker {
        align: center middle;
    }
    OptionPicker > Vertical {
        max-width: 100%;
        height: auto;
        max-height: 80%;
        border: round $accent;
        border-title-color: $accent;
        background: $surface;
    }
    OptionPicker OptionList, OptionPicker OptionList:focus {
        height: auto;
        max-height: 100%;
        border: none;
    }
    """

    def take_focus(self, highlighted: int | None) -> None:
        """Highlight option ``highlighted`` (the first when None) and give the list the keys."""
        option_list = self.query_one(OptionList)
        option_list.highlighted = 0 if highlighted is None else highlighted
        option_list.focus()

    def action_cursor(self, delta: int) -> None:
        lists = self.query(OptionList)
        if not lists:
            return
        if delta > 0:
            lists.first().action_cursor_down()
        else:
            lists.first().action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)

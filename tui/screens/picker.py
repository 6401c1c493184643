"""A centred list to choose one thing from: the shared frame of mltop's small pickers."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets import OptionList

T = TypeVar("T")


class OptionPicker(ModalScreen[T]):
    """A modal box around an OptionList; ``j``/``k`` move, ``esc`` dismisses with None.

    Subclasses compose the list, bind ``cursor(1)``/``cursor(-1)`` and ``cancel`` under their
    own binding ids (users rebind them by id), and set their box width in their own CSS.
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

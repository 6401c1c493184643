"""What mltop's screens share: the palette's commands, leaving with escape, the app's keys.

Each screen declares its own keys; these are the parts that must read the same everywhere, so
a change (a palette provider, what "back" means, the quit keys) is made once: every screen lists
its keys in the palette through :class:`~mltop.tui.commands.ScreenCommands`, escape leaves it
under the id ``<screen>.back`` (which a keymap file may rebind), and the full app and the
stand-alone Logs app quit and show help on the same keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar

from textual.binding import Binding
from textual.screen import Screen

from mltop.tui.commands import ScreenCommands

if TYPE_CHECKING:
    from mltop.tui.context import AppContext

ResultT = TypeVar("ResultT")

#: Quit and help, in the full app and in the stand-alone Logs app alike.
APP_KEYS: tuple[Binding, ...] = (
    Binding("q", "quit", "quit", id="app.quit"),
    # Textual only hints on ctrl+c; in a terminal tool it must quit.
    Binding("ctrl+c", "quit", "quit", show=False, priority=True, id="app.quit_ctrl_c"),
    Binding("ctrl+q", "quit", "quit", show=False, priority=True, id="app.quit_ctrl_q"),
    Binding("question_mark", "help", "help", id="app.help"),
)


def back_binding(screen_id: str, keys: str = "escape") -> Binding:
    """The key that leaves a screen, listed first on its key line as ``back``."""
    return Binding(keys, "back", "back", id=f"{screen_id}.back")


class MltopScreen(Screen[ResultT]):
    """A screen whose palette lists its keys and commands, whose ``back`` pops it, and which
    reaches the app through :attr:`mltop`.

    A screen that returns a value, or first clears a search on escape, overrides
    :meth:`action_back`.
    """

    COMMANDS: ClassVar = {ScreenCommands}
    HELP_TITLE: ClassVar[str]

    @property
    def mltop(self) -> AppContext:
        """The app as the screens may use it (declared in tui/context.py, not imported)."""
        return self.app  # type: ignore[return-value]

    def action_back(self) -> None:
        self.app.pop_screen()

"""The key line at the bottom of a screen, generated from the screen's own bindings.

Built from ``screen.active_bindings`` so a user keymap shows the keys it set, and a screen can
append live counts to a label (``space mark (2)``) through :meth:`KeyBar.update_keys`.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._extra: dict[str, str] = {}
        self._right: Text | None = None
        self._hidden: frozenset[str] = frozenset()

    def on_mount(self) -> None:
        self.call_after_refresh(self.update_keys)

    def update_keys(
        self,
        extra: dict[str, str] | None = None,
        right: Text | None = None,
        hidden: frozenset[str] | None = None,
    ) -> None:
        """Redraw; ``extra`` maps an action name to a suffix for its label; ``hidden`` names
        actions to leave off the line for now (their keys still work; ``?`` lists them)."""
        if extra is not None:
            self._extra = extra
        if right is not None:
            self._right = right
        if hidden is not None:
            self._hidden = hidden
        seen: set[str] = set()
        head: list[Text] = []
        tail: list[Text] = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.show or not binding.description or binding.action in seen:
                continue
            if binding.action in self._hidden:
                continue
            seen.add(binding.action)
            label = binding.description + self._extra.get(binding.action, "")
            item = Text(no_wrap=True)
            item.append(self.app.get_key_display(binding) or key, style="bold")
            item.append(" " + label)
            # The app's own keys (help, quit) come last and are never the ones cut.
            (tail if active.node is self.app else head).append(item)
        text = self._fit(head, tail, self.content_size.width)
        if self._right is not None:
            room = self.content_size.width - text.cell_len - self._right.cell_len
            if room > 1:
                text.append(" " * room)
                text.append_text(self._right)
        self.update(text)

    @staticmethod
    def _fit(head: list[Text], tail: list[Text], width: int) -> Text:
        """The keys joined by two spaces; when they do not fit, the screen's last ones give way
        (marked ``…``) so ``? help`` always shows, even at 80 columns."""

        def join(items: list[Text]) -> Text:
            return Text("  ").join(items)

        text = join(head + tail)
        if width <= 0 or text.cell_len <= width:
            return text
        more = Text("…", style="bold")
        kept = list(head)
        while kept and join([*kept, more, *tail]).cell_len > width:
            kept.pop()
        text = join([*kept, more, *tail])
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

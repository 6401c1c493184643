"""The command palette's commands for the screen it was opened on (``ctrl+p``).

Each screen lists what it can do with :meth:`commands` (a list of :class:`ScreenCommand`); the
bindings of the screen are offered too, with their keys, so the palette doubles as a searchable
key reference. Textual's own commands (theme, screenshot, keys, quit) come after mltop's: one
provider yields both, because the palette runs its providers concurrently and the order of
their answers would otherwise be a race.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class ScreenCommand:
    """One palette entry: a name to search, a line of help, and what to do."""

    name: str
    help: str
    run: Callable[[], object]


def _binding_commands(provider: Provider) -> list[ScreenCommand]:
    screen = provider.screen
    app = provider.app
    out: list[ScreenCommand] = []
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or binding.action in seen or binding.system:
            continue
        if not binding.id:  # widget internals (cursor moves, copy) are not commands
            continue
        seen.add(binding.action)
        key_text = app.get_key_display(binding) or key
        out.append(
            ScreenCommand(
                binding.description,
                f"key: {key_text}",
                partial(active.node.run_action, binding.action),
            )
        )
    return out


# A Textual command matching a query as well as one of mltop's is listed after it.
SYSTEM_SCORE_FACTOR = 0.5


class ScreenCommands(Provider):
    """Commands of the current screen (its ``commands()``) and of its keys, then Textual's."""

    def _commands(self) -> list[ScreenCommand]:
        extra = getattr(self.screen, "commands", None)
        listed = list(extra()) if callable(extra) else []
        names = {c.name for c in listed}
        return listed + [c for c in _binding_commands(self) if c.name not in names]

    def _system_commands(self, discovering: bool = False) -> list[ScreenCommand]:
        found = self.app.get_system_commands(self.screen)
        return [
            ScreenCommand(c.title, c.help, c.callback)
            for c in sorted(found, key=lambda c: c.title)
            if c.discover or not discovering
        ]

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.name, command.run, help=command.help)
        for command in self._system_commands(discovering=True):
            yield DiscoveryHit(command.name, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.run, help=command.help)
        for command in self._system_commands():
            score = matcher.match(command.name) * SYSTEM_SCORE_FACTOR
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.run, help=command.help)

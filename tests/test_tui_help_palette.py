"""``?`` and ``ctrl+p`` list mltop's own keys and commands first, never Textual's internals."""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandList, CommandPalette
from tui_pilot import make_app, settled, until

from mltop.tui.screens.help import HelpScreen

SMALL = (80, 24)
TEXTUAL_COMMANDS = {"Keys", "Maximize", "Quit", "Screenshot", "Theme"}


async def test_help_lists_the_screen_keys_first_without_textual_internals(
    runs_root: Path, tmp_path: Path
) -> None:
    app = make_app(runs_root, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await settled(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = app.screen._rows
        sections = list(dict.fromkeys(section for section, *_ in rows))
        assert sections[0] == "this screen" and sections[-1] == "everywhere"
        assert rows[0][3].startswith("runs.")
        descriptions = [description for _, _, description, _ in rows]
        for internal in ("Focus Next", "Focus Previous", "Copy selected text", "Select all"):
            assert internal not in descriptions
        keys = [key for _, keys, _, _ in rows for key in keys.split(", ")]
        assert keys.count("tab") == 0
        assert all(ids for *_, ids in rows)  # every line names the id a keymap rebinds


async def test_palette_lists_mltop_commands_before_textual_ones(
    runs_root: Path, tmp_path: Path
) -> None:
    app = make_app(runs_root, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await settled(pilot)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        commands = app.screen.query_one(CommandList)
        await until(pilot, lambda: commands.option_count > 10)
        await pilot.pause(0.3)
        titles = [
            str(commands.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(commands.option_count)
        ]
        textual_at = [i for i, title in enumerate(titles) if title in TEXTUAL_COMMANDS]
        assert titles[0] == "Clear filter"
        assert textual_at == list(range(len(titles) - len(textual_at), len(titles))), titles

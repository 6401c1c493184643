"""``?`` and ``ctrl+p`` list mltop's own keys and commands first, never Textual's internals."""

from __future__ import annotations

from pathlib import Path

from helpers.tui import on_runs, palette_titles, pushed

from mltop.tui.screens.help import HelpScreen

SMALL = (80, 24)
TEXTUAL_COMMANDS = {"Keys", "Maximize", "Quit", "Screenshot", "Theme"}


async def test_help_lists_the_screen_keys_first_without_textual_internals(
    runs_root: Path, tmp_path: Path
) -> None:
    async with on_runs(runs_root, tmp_path, SMALL) as (app, pilot, _):
        await pushed(pilot, "question_mark", HelpScreen)
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
    async with on_runs(runs_root, tmp_path, SMALL) as (_, pilot, _):
        titles = await palette_titles(pilot, more_than=10)
        textual_at = [i for i, title in enumerate(titles) if title in TEXTUAL_COMMANDS]
        assert titles[0] == "Clear filter"
        assert textual_at == list(range(len(titles) - len(textual_at), len(titles))), titles

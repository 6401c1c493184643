"""The keymap file: an id no binding has and a key given twice on one screen are reported at
start-up with the file and line; the rest of the file still applies."""

from __future__ import annotations

from pathlib import Path

from tui_pilot import make_app, settled

from mltop.core.runs.runs_view import Column
from mltop.tui.keymap import binding_catalog, load_keymap
from mltop.tui.screens.runs.screen import RunsScreen
from mltop.tui.widgets.run_table import RunTable


def test_every_binding_of_the_runs_screen_is_in_the_catalog() -> None:
    catalog = binding_catalog()
    for binding in (*RunsScreen.BINDINGS, *RunTable.BINDINGS):
        assert binding.id in catalog
    assert catalog["runs.sort"] == ("RunsScreen", ("s",))


def test_unknown_id_is_reported_with_its_line_and_closest_id(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('# mine\n"runs.sortt" = "o"\n"runs.refresh" = "f5"\n')
    keymap, problem = load_keymap(path)
    assert keymap == {"runs.sortt": "o", "runs.refresh": "f5"}
    assert problem == (
        f"keymap {path}:2: no binding has the id 'runs.sortt' (did you mean runs.sort?)"
    )


def test_a_key_bound_twice_on_one_screen_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[detail]\nlog_y = "f9"\n\n[runs]\n# compare on s\ncompare = "s"\n')
    _, problem = load_keymap(path)
    assert problem is not None
    assert problem.startswith(f"keymap {path}:6: key 's' of runs.compare is already bound to")
    assert "runs.sort" in problem and "\n" not in problem


def test_a_clean_keymap_has_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('"runs.sort" = "o"\n"runs.fold" = "z"\n')
    assert load_keymap(path) == ({"runs.sort": "o", "runs.fold": "z"}, None)


async def test_the_app_warns_at_start_and_still_applies_the_good_lines(
    runs_root: Path, tmp_path: Path
) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('"runs.sort" = "f2"\n"runs.nosuch" = "x"\n')
    keymap, problem = load_keymap(path)
    app = make_app(runs_root, tmp_path, keymap=keymap, keymap_problem=problem)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        shown = [n.message for n in app._notifications]
        assert any(f"{path}:2" in str(m) and "runs.nosuch" in str(m) for m in shown)
        await pilot.press("f2")
        await settled(pilot)
        assert screen.sort == Column.attr("duration")

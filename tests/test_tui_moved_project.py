"""The TUI over a project folder that was copied and moved with its store inside."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import write_run
from tui_pilot import SIZE, names, settled

from mltop.core.discovery import ingest
from mltop.core.store import open_store
from mltop.tui.app import MltopApp


async def _names_shown(root: Path) -> list[str]:
    app = MltopApp(root)  # the store in root/.mltop, as `mltop ROOT` opens it
    async with app.run_test(size=SIZE) as pilot:
        return sorted(names(await settled(pilot)))


async def test_a_copied_then_moved_project_lists_each_run_once(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    for name in ("sgd", "rf", "mlp"):
        write_run(project / "runs", name)
    with open_store(project) as store:
        ingest(project, store)
    copied = tmp_path / "A"
    shutil.copytree(project, copied)  # .mltop/ and its store come along
    assert await _names_shown(copied) == ["mlp", "rf", "sgd"]
    moved = tmp_path / "B"
    copied.rename(moved)
    shutil.rmtree(project)
    assert await _names_shown(moved) == ["mlp", "rf", "sgd"]

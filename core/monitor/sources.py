"""Finding the monitors under a folder: ``.mltop/monitor.yaml`` files and Evidently workspaces.

A monitor needs no store tables: its numbers are computed from the prediction log when it is
opened (or read from the Evidently snapshots), so finding one is all the set-up there is. The
walk is the discovery walk's (:func:`~mltop.core.common.regular_files.walk_tree`: no symlinked
folders, no recursion limit); it leaves out hidden folders (``.git``, ``.venv``, ``.dvc``, the
store's ``.mltop``, whose ``monitor.yaml`` is looked up directly), virtualenvs and package
caches, and does not descend into an Evidently workspace once it has found one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mltop.core.common.regular_files import is_regular, walk_tree
from mltop.core.monitor.config import CONFIG_PATH
from mltop.core.monitor.evidently_workspace import is_evidently_workspace, is_project_id

_SKIP = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})

SourceKind = Literal["monitor", "evidently"]


@dataclass(frozen=True)
class MonitorSource:
    """One monitor found under the root: a configured prediction log, or an Evidently workspace."""

    kind: SourceKind
    path: Path  # the folder holding .mltop/monitor.yaml, or the workspace folder
    root: Path

    @property
    def config(self) -> Path | None:
        return self.path / CONFIG_PATH if self.kind == "monitor" else None

    @property
    def name(self) -> str:
        """The folder relative to the root (the root itself by its own name)."""
        try:
            rel = self.path.relative_to(self.root)
        except ValueError:
            return str(self.path)
        return str(rel) if rel.parts else (self.path.name or str(self.path))


def find_monitor_sources(root: Path) -> list[MonitorSource]:
    """Every monitor under ``root`` (a file: its folder), configured ones first, then by path."""
    base = root if root.is_dir() else root.parent
    found: list[MonitorSource] = []
    for dirpath, dirnames, filenames, _others in walk_tree(base):
        folder = Path(dirpath)
        if is_regular(folder / CONFIG_PATH):
            found.append(MonitorSource("monitor", folder, base))
        if any(map(is_project_id, dirnames)) and is_evidently_workspace(folder):
            found.append(MonitorSource("evidently", folder, base))
            dirnames[:] = []
            continue
        if "pyvenv.cfg" in filenames:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP]
    found.sort(key=lambda s: (s.kind != "monitor", s.path.parts))
    return found


def relative(path: Path | str, root: Path) -> str:
    """``path`` as the screen names it: relative to the root when inside it."""
    text = os.fspath(path)
    try:
        return str(Path(text).relative_to(root))
    except ValueError:
        return text

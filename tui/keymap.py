"""User key bindings: a TOML file mapping binding ids to keys, applied with ``App.set_keymap``.

    # ~/.config/mltop/keymap.toml  (or the file named by $MLTOP_KEYMAP)
    "runs.sort" = "f2"
    "runs.filter" = "f1,slash"

Dotted ids may also be written as TOML tables (``[runs]`` then ``sort = "f2"``). Every binding
in mltop has an id; the help screen (``?``) lists them next to their keys.

A mistake in the file is reported when mltop starts, naming the file and line: an id no binding
has (a typo would otherwise do nothing, silently), or a key given to two bindings of the same
screen or panel (only one of them could ever run). The rest of the file still applies.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

KEYMAP_ENV = "MLTOP_KEYMAP"


def default_keymap_path() -> Path:
    if os.environ.get(KEYMAP_ENV):
        return Path(os.environ[KEYMAP_ENV]).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "mltop" / "keymap.toml"


def _flatten(prefix: str, table: dict[str, object], out: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            _flatten(name, value, out)
        elif isinstance(value, str):
            out[name] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[name] = ",".join(value)
        else:
            raise ValueError(f'{name}: expected a key name such as "o" or "ctrl+o"')


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """The keymap in ``path`` (default: :func:`default_keymap_path`) and a problem, if any.

    A missing file is no keymap and no problem; an unreadable one is no keymap and one line
    saying why, so a typo never stops mltop from starting. A readable one applies, and the
    problem lists its unknown ids and clashing keys (:func:`check_keymap`), one per line.
    """
    path = path or default_keymap_path()
    if not path.exists():
        return {}, None
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
        keymap: dict[str, str] = {}
        _flatten("", data, keymap)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        return {}, f"keymap {path}: {' '.join(str(exc).split())}"
    problems = check_keymap(keymap, path, text, binding_catalog())
    return keymap, "\n".join(problems) or None


# -- checking a keymap against mltop's bindings ----------------------------------------------------


def binding_catalog() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every binding id in mltop: id -> (the class it belongs to, its default keys).

    The screens and widgets are imported here (not at start-up) because only a keymap file
    needs the whole list. The app's own bindings are found the same way, as a subclass of
    Textual's ``App`` (a ``DOMNode``): a keymap is only ever loaded to run the app, so its module
    is loaded by then, and importing it from here would tie the app and this module in a cycle.
    """
    from textual.binding import Binding
    from textual.dom import DOMNode

    import mltop.tui.screens
    import mltop.tui.widgets

    for package in (mltop.tui.screens, mltop.tui.widgets):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    catalog: dict[str, tuple[str, tuple[str, ...]]] = {}
    classes: list[type] = []
    stack: list[type] = [DOMNode]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("mltop.tui."):
                classes.append(sub)
    for cls in classes:
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                keys = tuple(k.strip() for k in binding.key.split(",") if k.strip())
                catalog[binding.id] = (cls.__name__, keys)
    return catalog


def _key_lines(text: str) -> dict[str, int]:
    """The line (1-based) on which each dotted id of a keymap file is set."""
    lines: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[([^\[\]]+)\]", stripped)
        if header:
            table = ".".join(part.strip().strip("\"'") for part in header.group(1).split("."))
            continue
        assignment = re.match(r"""^("[^"]*"|'[^']*'|[A-Za-z0-9_.\- ]+?)\s*=""", stripped)
        if assignment:
            key = assignment.group(1).strip()
            key = key[1:-1] if key[:1] in "\"'" else key
            lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines


def check_keymap(
    keymap: Mapping[str, str],
    path: Path,
    text: str,
    catalog: Mapping[str, tuple[str, tuple[str, ...]]],
) -> list[str]:
    """One line per mistake in ``keymap`` (read from ``text`` in ``path``), with its line."""
    lines = _key_lines(text)

    def where(binding_id: str) -> str:
        line = lines.get(binding_id)
        return f"keymap {path}:{line}" if line else f"keymap {path}"

    problems: list[str] = []
    for binding_id in keymap:
        if binding_id not in catalog:
            close = difflib.get_close_matches(binding_id, list(catalog), n=1)
            hint = f" (did you mean {close[0]}?)" if close else " (? lists every id)"
            problems.append(f"{where(binding_id)}: no binding has the id {binding_id!r}{hint}")
    # The keys each binding has once the keymap applies, per class: one key, two ids = clash.
    taken: dict[tuple[str, str], list[str]] = {}
    for binding_id, (owner, keys) in catalog.items():
        if binding_id in keymap:
            keys = tuple(k.strip() for k in keymap[binding_id].split(",") if k.strip())
        for key in keys:
            taken.setdefault((owner, key), []).append(binding_id)
    for (_owner, key), ids in taken.items():
        mine = [i for i in ids if i in keymap]
        if len(ids) > 1 and mine:
            others = ", ".join(i for i in ids if i != mine[0])
            problems.append(
                f"{where(mine[0])}: key {key!r} of {mine[0]} is already bound to {others} "
                "on the same screen; only one of them can run"
            )
    return problems

"""User key bindings: a TOML file mapping binding ids to keys, applied with ``App.set_keymap``.

    # ~/.config/mltop/keymap.toml  (or the file named by $MLTOP_KEYMAP)
    "runs.sort" = "o"
    "runs.filter" = "f1,slash"

Dotted ids may also be written as TOML tables (``[runs]`` then ``sort = "o"``). Every binding
in mltop has an id; the help screen (``?``) lists them next to their keys.
"""

from __future__ import annotations

import os
import tomllib
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
    saying why, so a typo never stops mltop from starting.
    """
    path = path or default_keymap_path()
    if not path.exists():
        return {}, None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        keymap: dict[str, str] = {}
        _flatten("", data, keymap)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        return {}, f"keymap {path}: {' '.join(str(exc).split())}"
    return keymap, None

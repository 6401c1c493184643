"""Reading small JSON metadata files and flattening nested params, shared by the importers.

Trackers store configuration as nested mappings (``{"model": {"lr": 0.1}}``); users filter and
compare them as dotted keys (``params.model.lr``), the way MLflow, DVC and W&B show them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mltop.core.common.regular_files import SourceFileError, read_limited


def flatten_params(
    value: object, prefix: str = "", out: dict[str, object] | None = None
) -> dict[str, object]:
    """Nested params as dotted keys (``train.lr``); lists and empty mappings as JSON text."""
    out = {} if out is None else out
    if isinstance(value, dict) and (value or not prefix):
        for key, inner in value.items():
            flatten_params(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list | tuple | dict):
        out[prefix] = json.dumps(value, default=str, allow_nan=True)
    elif value is None:
        out[prefix] = "null"
    elif isinstance(value, int | float | bool | str):
        out[prefix] = value
    else:
        out[prefix] = str(value)
    return out


def read_json_object(path: Path, max_bytes: int, what: str = "a metadata file") -> dict[str, Any]:
    """A small JSON object file; ValueError with a one-line reason otherwise.

    Python's json keeps NaN and Infinity, as trackers write them.
    """
    return json_object(read_json_bytes(path, max_bytes, what))


def read_json_bytes(path: Path | str, max_bytes: int, what: str = "a metadata file") -> bytes:
    """The bytes of a small file; ValueError with a one-line reason when it is too large."""
    try:
        return read_limited(path, max_bytes, what)
    except SourceFileError as exc:
        raise ValueError(str(exc)) from exc


def json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; ValueError with a one-line reason otherwise."""
    if not raw.strip():
        raise ValueError("empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, found {type(obj).__name__}")
    return obj

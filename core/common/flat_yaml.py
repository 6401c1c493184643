"""A fast path for flat YAML mappings of plain scalars, the shape ``yaml.safe_dump`` gives a dict.

MLflow writes every run's and experiment's ``meta.yaml`` with ``yaml.safe_dump`` of a flat dict:
one ``key: value`` line per field, values plain (``active``), single-quoted (``'0'``, ``''``),
integers, ``null`` or ``[]``. A file store of a hundred thousand runs has a hundred thousand of
them, and the general loader (libyaml's composer, the alias-bomb check over the node graph,
the constructor) spends ~0.2 ms on each: a fifth of the whole import.

:func:`read_flat_mapping` reads only lines it can read exactly as the general loader would and
answers ``None`` for anything else (a nested value, a comment, a double-quoted or multi-line
scalar, a value YAML would read as a bool, float or date, a tab, a non-ASCII character, a
repeated key), so the caller falls back to :func:`mltop.core.common.safe_yaml.load_yaml`. Plain
scalars are typed with PyYAML's own implicit resolvers, the ones the safe loaders use, so a
value resolves here to the tag it resolves to there. Such a document has no aliases and is one
level deep: the general loader's bounds cannot be reached through it.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.resolver import Resolver

_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,127}): ([^\n]+)(?:\n|\Z)")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_NOT_FLAT_TEXT = re.compile(r"[^\x20-\x7e\n]")
"""Tabs, carriage returns, control and non-ASCII characters: the general loader's business."""

_PLAIN_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@` ")
"""First characters that make a value something other than a plain scalar (or may)."""

_INT_TAG = "tag:yaml.org,2002:int"
_NULL_TAG = "tag:yaml.org,2002:null"
_NOT_READ = object()

_plain_keys: dict[str, bool] = {}
"""Keys already told apart (a meta.yaml has the same dozen): is each a plain string?"""


def read_flat_mapping(text: str) -> dict[str, Any] | None:
    """The mapping of a flat ``key: scalar`` document, or None when it is not one read here."""
    if not text or _NOT_FLAT_TEXT.search(text):
        return None
    out: dict[str, Any] = {}
    pos, end = 0, len(text)
    while pos < end:
        line = _LINE.match(text, pos)
        if line is None:
            return None
        key, raw = line.groups()
        plain = _plain_keys.get(key)
        if plain is None:
            plain = _implicit_tag(key) is None
            if len(_plain_keys) < 4096:
                _plain_keys[key] = plain
        if not plain or key in out:
            return None
        value = _scalar(raw)
        if value is _NOT_READ:
            return None
        out[key] = value
        pos = line.end()
    return out or None


def _scalar(raw: str) -> Any:
    first = raw[0]
    if first == "'":
        return _single_quoted(raw)
    if raw == "[]":
        return []
    if raw == "{}":
        return {}
    if first in _PLAIN_INDICATORS or raw[-1] in " :" or ": " in raw or " #" in raw:
        return _NOT_READ
    tag = _implicit_tag(raw)
    if tag is None:
        return raw
    if tag == _INT_TAG and _INT.match(raw):
        return int(raw)
    if tag == _NULL_TAG and raw in ("null", "Null", "NULL", "~"):
        return None
    return _NOT_READ


def _single_quoted(raw: str) -> Any:
    if len(raw) < 2 or raw[-1] != "'":
        return _NOT_READ
    inner = raw[1:-1]
    if "'" in inner.replace("''", ""):
        return _NOT_READ
    return inner.replace("''", "'")


def _implicit_tag(value: str) -> str | None:
    """The tag PyYAML's resolver gives this plain scalar, None for a string (as Resolver.resolve).

    A resolver registered for any first character (none by default) makes every scalar
    ambiguous here: answered with a tag no caller reads as a value.
    """
    resolvers = Resolver.yaml_implicit_resolvers
    if None in resolvers:
        return "?"
    for tag, regexp in resolvers.get(value[0], ()):
        if regexp.match(value):
            return str(tag)
    return None

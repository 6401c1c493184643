"""The runs filter language: what the user types after ``/`` in the UI or gives to ``--filter``.

A filter is parsed (tokenizer with positions, then recursive descent) into a small tree of
dataclasses, and the tree is compiled into a :class:`~mltop.core.store.RunQuery`: a WHERE fragment
over ``runs r`` / ``experiments e`` whose every key and value travels as a ``?`` parameter. The
SQL text is assembled only from fixed pieces chosen by the tree's shape, so nothing the user typed
can change the statement.

Grammar (keywords in any case; ``not`` binds tighter than ``and``, ``and`` tighter than ``or``)::

    filter    := [or_expr]
    or_expr   := and_expr ("or" and_expr)*
    and_expr  := unary ("and" unary)*
    unary     := "not" unary | "(" or_expr ")" | predicate
    predicate := field [test]                  -- a field alone means "has a value"
    test      := ("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
               | ("~" | "!~" | "rlike") value  -- regular expression (RE2), matches anywhere
               | ["not"] ("like" | "ilike") value
               | ["not"] "in" "(" value ("," value)* ")"
               | "is" ["not"] "null"
    field     := params.KEY | metrics.KEY[.AGG] | tags.KEY | [attributes.]NAME

Fields:

* ``params.KEY`` (also ``param.``): params are text with a parsed number beside it. A number
  literal compares the number (``=`` also matches the same text); a quoted string compares text,
  so MLflow's ``params.lr = '0.01'`` matches the text ``0.01``.
* ``metrics.KEY`` (also ``metric.``): the last value. A final unquoted ``.min``, ``.max``,
  ``.last``, ``.count``, ``.first_step``, ``.last_step``, ``.min_step`` or ``.max_step`` selects
  that aggregate of the history; quote the key to mean it literally: ``metrics."a.min"``.
* ``tags.KEY`` (also ``tag.``): text; a number literal compares the text read as a number.
* Everything after the prefix up to whitespace or an operator is the key
  (``tags.mlflow.source.git.commit``, ``metrics.val/roc_auc``); double quotes or backticks quote a
  key with spaces or operators in it (``metrics."val loss"``, as MLflow writes it).
* Attributes, optionally prefixed ``attributes.`` / ``attribute.`` as in MLflow: see
  :data:`ATTRIBUTES`. ``start``/``end``/``updated`` take epoch seconds, ISO dates or datetimes
  (naive ones are local time), ``now``, ``today``, ``yesterday`` and relative times (``-2h``,
  ``now-1d``); ``duration`` takes seconds or durations (``90s``, ``5m``, ``1h30m``); MLflow's
  ``start_time``/``end_time``/``created`` are epoch milliseconds.

* ``model`` and ``alias``: the registered models a run made a live version of, and the aliases
  of those versions (``model = "fraud"``, ``alias = champion``); a run may have several, and a
  test holds when one of them passes it.

A comparison on a param, tag or metric needs the key to be present: ``params.lr != 0.1`` skips
runs without ``lr`` (as in MLflow), while ``not params.lr = 0.1`` includes them. ``status`` compares
case-insensitively and must name a known status.

Values: numbers (``3``, ``-0.5``, ``1e-3``, ``nan``, ``inf``), strings in single or double quotes
with backslash escapes (``\\'`` ``\\"`` ``\\\\`` ``\\n`` ``\\t``; a doubled quote also stands for
itself; other backslashes are kept, so regexes read naturally), and bare words (``running``,
``rf``, ``2026-11-01``).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence

from mltop.core.runs.query_parser import parse
from mltop.core.runs.query_sql import to_sql
from mltop.core.runs.query_tree import (
    AGGREGATES,
    ATTRIBUTES,
    All,
    And,
    Compare,
    Field,
    InList,
    Literal,
    Match,
    Node,
    Not,
    Or,
    Present,
    QueryError,
    format_error,
)
from mltop.core.store import RunQuery

__all__ = [
    "AGGREGATES",
    "ATTRIBUTES",
    "All",
    "And",
    "Compare",
    "Field",
    "InList",
    "Literal",
    "Match",
    "Node",
    "Not",
    "Or",
    "Present",
    "QueryError",
    "compile_query",
    "format_error",
    "parse",
    "to_sql",
]


def compile_query(text: str, *, now: float | None = None) -> RunQuery:
    """Parse and compile a filter; empty or blank text gives ``RunQuery()`` (every run).

    Raises :class:`QueryError` (and nothing else) for any text that is not a valid filter.
    """
    if not text or text.isspace():
        return RunQuery()
    return to_sql(parse(text, now=now))


# -- keys no run has -----------------------------------------------------------------------------


def _metric_fields(node: Node) -> list[Field]:
    if isinstance(node, Compare | Match | InList | Present):
        return [node.field] if node.field.kind == "metric" else []
    if isinstance(node, Not):
        return _metric_fields(node.child)
    if isinstance(node, And | Or):
        return [field for item in node.items for field in _metric_fields(item)]
    return []


def closest_keys(key: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``known`` that look like ``key`` (a typo, a prefix, another case)."""
    lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(lower), n=n, cutoff=0.6)
    contains = [k for k in lower if key.lower() in k or (k in key.lower() and len(k) > 2)]
    return [lower[k] for k in dict.fromkeys(contains + close)][:n]


def unknown_metric_message(key: str, known: Sequence[str]) -> str:
    """One line saying that no run has metric ``key``, with the closest metrics it may mean."""
    close = closest_keys(key, known)
    if close:
        where = f"; closest: {', '.join(close)}"
    elif known:
        more = f" and {len(known) - 5} more" if len(known) > 5 else ""
        where = f"; the metrics are {', '.join(known[:5])}{more}"
    else:
        where = "; no run has any metric"
    return f"no run has a metric {key!r}{where}"


def unknown_metric_warnings(
    filter_text: str | None, sort: str | None, known: Sequence[str]
) -> list[str]:
    """Why a filter or sort on a metric matches nothing: one line per metric key no run has.

    A filter such as ``metrics.val_acc > 0.9`` (when runs log ``val_accuracy``) is valid and
    simply matches no run; a sort on it leaves every run unsorted. Both look like "no such runs"
    unless someone says the key is unknown. ``sort`` is ``--sort``'s text (``-metrics.KEY``);
    an invalid filter gives no warnings here (its parse error says what is wrong).
    """
    have = set(known)
    keys: list[str] = []
    if filter_text and not filter_text.isspace():
        with contextlib.suppress(QueryError):
            keys += [field.name for field in _metric_fields(parse(filter_text))]
    if sort:
        name = sort.lstrip("+-")
        for prefix in ("metrics.", "metric."):
            if name.startswith(prefix):
                key = name[len(prefix) :]
                # The aggregates --sort accepts (see Store.runs); a known key is meant literally.
                base, dot, agg = key.rpartition(".")
                if key not in have and dot and agg in ("min", "max", "last", "count"):
                    key = base
                keys.append(key)
    return [unknown_metric_message(k, known) for k in dict.fromkeys(keys) if k not in have]

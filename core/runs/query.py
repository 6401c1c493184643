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
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from typing import Literal as TypingLiteral

import duckdb

from mltop.core.entities import Status
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


class QueryError(ValueError):
    """A filter that cannot be parsed or compiled.

    ``position`` is the 0-based column in the filter text where the mistake is, so a UI can place
    a caret under it (see :func:`format_error`).
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} (column {self.position + 1})"


def format_error(text: str, err: QueryError) -> str:
    """Two lines: the filter, then a caret under the mistake followed by the message."""
    shown = "".join(" " if (c.isspace() or not c.isprintable()) else c for c in text)
    pos = max(0, min(err.position, len(shown)))
    width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in shown[:pos])
    return f"{shown}\n{' ' * width}^ {err.message}"


# -- fields --------------------------------------------------------------------------------------

AttrType = TypingLiteral["text", "status", "time", "ms", "duration"]


@dataclass(frozen=True)
class _Attr:
    sql: str
    type: AttrType
    help: str
    # A fact a run may have several of (the models its versions belong to): ``sql`` is then a
    # column inside this EXISTS subquery over the run ``r``, whose ``{cond}`` is the test.
    exists: str | None = None

    def wrap(self, cond: str) -> str:
        return cond if self.exists is None else self.exists.format(cond=cond)


# The live registry versions made by the run ``r`` (see mltop.core.store.registry).
_VERSIONS_OF_RUN = (
    "registry_versions v WHERE v.source = r.source AND v.run_native_id = r.native_id "
    "AND NOT v.deleted"
)
_MODEL_OF_RUN = f"EXISTS (SELECT 1 FROM {_VERSIONS_OF_RUN} AND {{cond}})"
_ALIAS_OF_RUN = (
    f"EXISTS (SELECT 1 FROM {_VERSIONS_OF_RUN} AND EXISTS (SELECT 1 FROM registry_aliases a "
    "WHERE a.source = v.source AND a.name = v.name AND a.version = v.version AND {cond}))"
)


#: Run attributes by name: the SQL column (fixed text, never user input) and how values read.
ATTRIBUTES: dict[str, _Attr] = {
    "name": _Attr("r.name", "text", "run name"),
    "status": _Attr("r.status", "status", "RUNNING, FINISHED, FAILED, KILLED or SCHEDULED"),
    "experiment": _Attr("e.name", "text", "experiment name"),
    "source": _Attr("r.source_kind", "text", "source kind: mlflow-sqlite, tensorboard, ..."),
    "start": _Attr("r.start_time", "time", "start time"),
    "end": _Attr("r.end_time", "time", "end time"),
    "updated": _Attr("r.updated", "time", "last update"),
    "duration": _Attr(
        "(coalesce(r.end_time, r.updated) - r.start_time)", "duration", "seconds or 1h30m"
    ),
    "id": _Attr("r.id", "text", "mltop run id"),
    "run_id": _Attr("r.native_id", "text", "the tracker's own run id (MLflow run_id)"),
    "commit": _Attr("r.git_commit", "text", "git commit"),
    "host": _Attr("r.host", "text", "host name"),
    "location": _Attr("r.location", "text", "run folder or URI"),
    "parent": _Attr("r.parent_id", "text", "parent run id"),
    "lifecycle": _Attr("r.lifecycle", "text", "active or deleted"),
    "artifact_uri": _Attr("r.artifact_uri", "text", "artifact location"),
    "error": _Attr("r.error", "text", "error message"),
    "experiment_id": _Attr("r.experiment_id", "text", "experiment id"),
    "start_time": _Attr("(r.start_time * 1000)", "ms", "start, epoch milliseconds (MLflow)"),
    "end_time": _Attr("(r.end_time * 1000)", "ms", "end, epoch milliseconds (MLflow)"),
    "model": _Attr("v.name", "text", "a registered model made from the run", _MODEL_OF_RUN),
    "alias": _Attr("a.alias", "text", "an alias of a model version made from the run",
                   _ALIAS_OF_RUN),
}  # fmt: skip

# Other spellings, mostly MLflow's, mapped onto the names above.
_ATTRIBUTE_ALIASES = {
    "run_name": "name",
    "experiment_name": "experiment",
    "source_kind": "source",
    "native_id": "run_id",
    "git_commit": "commit",
    "parent_id": "parent",
    "lifecycle_stage": "lifecycle",
    "created": "start_time",
}

#: Aggregates of a metric's history that ``metrics.KEY.AGG`` selects (metric_summary columns).
AGGREGATES = ("last", "min", "max", "count", "first_step", "last_step", "min_step", "max_step")

_PREFIXES = {
    "params": "param",
    "param": "param",
    "metrics": "metric",
    "metric": "metric",
    "tags": "tag",
    "tag": "tag",
}
_ATTRIBUTE_PREFIXES = ("attributes", "attribute", "attr")

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "like", "ilike", "rlike"})

_MAX_DEPTH = 100


# -- the tree ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """What a predicate looks at: ``kind`` attribute/param/metric/tag, and its name or key."""

    kind: TypingLiteral["attribute", "param", "metric", "tag"]
    name: str
    aggregate: str = "last"
    pos: int = 0

    def __str__(self) -> str:
        if self.kind == "attribute":
            return self.name
        suffix = f".{self.aggregate}" if self.kind == "metric" and self.aggregate != "last" else ""
        return f"{self.kind}s.{self.name}{suffix}"


@dataclass(frozen=True)
class Literal:
    """A value as typed (``text``) and, when it reads as one, as a number.

    For time and duration fields ``number`` is already in the field's unit (seconds or ms).
    """

    text: str
    number: float | None = None
    pos: int = 0


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # one of = != < <= > >=
    value: Literal


@dataclass(frozen=True)
class Match:
    """A pattern test: ``regex`` (RE2, matches anywhere), ``like`` or ``ilike``."""

    field: Field
    kind: TypingLiteral["regex", "like", "ilike"]
    pattern: str
    negated: bool = False
    pos: int = 0


@dataclass(frozen=True)
class InList:
    field: Field
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True)
class Present:
    """The field has a value (``present``) or has none (``is null``)."""

    field: Field
    present: bool = True


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class All:
    """The empty filter: every run."""


Node = Compare | Match | InList | Present | Not | And | Or | All


# -- tokens --------------------------------------------------------------------------------------

_SPECIAL = frozenset("()=!<>~,'\"`")
_QUOTES = frozenset("'\"`")
_OPERATORS = ("==", "!=", "<>", "<=", ">=", "!~", "=", "<", ">", "~")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}


@dataclass(frozen=True)
class _Part:
    text: str
    quoted: bool
    pos: int


@dataclass(frozen=True)
class _Token:
    kind: str  # word, string, op, (, ), "," or end
    text: str  # the source slice
    pos: int
    parts: tuple[_Part, ...] = ()

    @property
    def keyword(self) -> str | None:
        """The keyword this token is (lower case), if it is a bare keyword."""
        if self.kind == "word" and len(self.parts) == 1 and self.text.lower() in _KEYWORDS:
            return self.text.lower()
        return None

    @property
    def value(self) -> str:
        """A string token's text without quotes and escapes."""
        return self.parts[0].text if self.parts else self.text


def _q(text: str) -> str:
    """User text quoted for a message, shortened so the message stays one readable line."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _numbers_only(field: Field, found: str, pos: int) -> QueryError:
    return QueryError(f"{_q(str(field))} compares with numbers, found {_q(found)}", pos)


def _text_only(field: Field, pos: int) -> QueryError:
    return QueryError(f"{_q(str(field))} holds numbers; ~, like and ilike need text", pos)


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    return _q(token.text)


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """The string opened by the quote at ``start``, and the index just past its closing quote."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        elif c == quote:
            if i + 1 < n and text[i + 1] == quote:  # SQL-style doubled quote
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise QueryError(f"unterminated string: expected a closing {quote}", start)


def _read_bare(text: str, i: int) -> int:
    n = len(text)
    while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
        i += 1
    return i


def _split_bare(text: str, start: int, end: int) -> list[_Part]:
    parts = []
    pos = start
    for piece in text[start:end].split("."):
        parts.append(_Part(piece, False, pos))
        pos += len(piece) + 1
    return parts


def _tokenize(text: str) -> list[_Token]:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(
            "the filter contains a character that is not valid text", exc.start
        ) from None
    tokens: list[_Token] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "(),":
            tokens.append(_Token(c, c, i))
            i += 1
            continue
        if c in "=!<>~":
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(_Token("op", op, i))
                    i += len(op)
                    break
            else:
                raise QueryError("expected '=' or '~' after '!'", i)
            continue
        # A word or string: segments joined by dots, each bare or quoted (metrics."val loss").
        start = i
        parts: list[_Part] = []
        while True:
            if i < n and text[i] in _QUOTES:
                quote_pos = i
                value, i = _read_quoted(text, i)
                parts.append(_Part(value, True, quote_pos))
                if i >= n or text[i] != ".":
                    break
                i += 1  # the dot after a quoted segment: more segments follow
                if i < n and text[i] in _QUOTES:
                    continue
                if _read_bare(text, i) == i:
                    parts.append(_Part("", False, i))  # dangling dot, reported by the parser
                    break
            end = _read_bare(text, i)
            bare = _split_bare(text, i, end)
            i = end
            if i < n and text[i] in _QUOTES and len(bare) > 1 and bare[-1].text == "":
                parts.extend(bare[:-1])  # "metrics." followed by a quoted key
                continue
            parts.extend(bare)
            break
        kind = "string" if len(parts) == 1 and parts[0].quoted else "word"
        tokens.append(_Token(kind, text[start:i], start, tuple(parts)))
    tokens.append(_Token("end", "", n))
    return tokens


# -- values --------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.I)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d|w)", re.I)
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|s|m|h|d|w))+", re.I)
_RELATIVE = re.compile(r"(now|today|yesterday)?\s*(?:([+-])\s*(\S+))?", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _number(text: str) -> float | None:
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    return None


def _duration(text: str) -> float | None:
    """Seconds in ``90s``, ``5m``, ``1h30m``, ``2d`` (optionally signed); None if not one."""
    text = text.strip()
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if not _DURATION.fullmatch(text):
        return None
    total = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text))
    return sign * total


def _time(text: str, now: float) -> float | None:
    """Epoch seconds for a date, datetime, epoch number, or a time relative to now."""
    number = _number(text)
    if number is not None:
        return number
    stripped = text.strip()
    rel = _RELATIVE.fullmatch(stripped)
    if rel and (rel.group(1) or rel.group(2)):
        anchor_word = (rel.group(1) or "now").lower()
        if anchor_word == "now":
            anchor = now
        else:
            midnight = datetime.fromtimestamp(now).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            if anchor_word == "yesterday":
                midnight -= timedelta(days=1)
            anchor = midnight.timestamp()
        if not rel.group(2):
            return anchor
        offset = _duration(rel.group(3))
        if offset is None:
            return None
        return anchor - offset if rel.group(2) == "-" else anchor + offset
    try:
        return datetime.fromisoformat(stripped).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


_re_lock = threading.Lock()
_re_con: duckdb.DuckDBPyConnection | None = None
_re_ok: dict[str, str | None] = {}


def _regex_problem(pattern: str) -> str | None:
    """RE2's complaint about ``pattern`` (DuckDB's regex engine), or None when it compiles.

    Checked here so a bad pattern is a :class:`QueryError` with a column, not a failure deep in
    the store query.
    """
    global _re_con
    with _re_lock:
        if pattern in _re_ok:
            return _re_ok[pattern]
        if _re_con is None:
            _re_con = duckdb.connect(":memory:")
        try:
            _re_con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
            problem = None
        except duckdb.Error as exc:
            problem = str(exc).split(": ", 1)[-1].strip() or "invalid pattern"
        if len(_re_ok) > 1000:
            _re_ok.clear()
        _re_ok[pattern] = problem
        return problem


# -- parser --------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, now: float) -> None:
        self.text = text
        self.now = now
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.tok.keyword in words

    def parse(self) -> Node:
        if self.tok.kind == "end":
            return All()
        node = self.or_expr(0)
        if self.tok.kind == ")":
            raise QueryError("unmatched ')'", self.tok.pos)
        if self.tok.kind != "end":
            raise QueryError(
                f"expected 'and', 'or' or the end of the filter, found {_describe(self.tok)}",
                self.tok.pos,
            )
        return node

    def or_expr(self, depth: int) -> Node:
        items = [self.and_expr(depth)]
        while self.at_keyword("or"):
            self.advance()
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, depth: int) -> Node:
        items = [self.unary(depth)]
        while self.at_keyword("and"):
            self.advance()
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise QueryError("the filter is nested too deeply", self.tok.pos)
        token = self.tok
        if token.keyword == "not":
            self.advance()
            return Not(self.unary(depth + 1))
        if token.kind == "(":
            self.advance()
            node = self.or_expr(depth + 1)
            if self.tok.kind != ")":
                raise QueryError(
                    f"expected ')' to close the '(' at column {token.pos + 1},"
                    f" found {_describe(self.tok)}",
                    self.tok.pos,
                )
            self.advance()
            return node
        return self.predicate()

    # -- predicates ------------------------------------------------------------------------------

    def predicate(self) -> Node:
        token = self.tok
        if token.kind != "word" or token.keyword is not None:
            raise QueryError(
                f"expected a field (params.NAME, metrics.NAME, tags.NAME, name, status, ...),"
                f" 'not' or '(', found {_describe(token)}",
                token.pos,
            )
        self.advance()
        field = _field(token)
        nxt = self.tok
        if nxt.kind == "op":
            self.advance()
            op = {"==": "=", "<>": "!="}.get(nxt.text, nxt.text)
            if op in ("~", "!~"):
                return self.match(field, "regex", negated=op == "!~", after=nxt)
            return Compare(field, op, self.value(field, after=nxt, op=op))
        word = nxt.keyword
        if word == "rlike":
            self.advance()
            return self.match(field, "regex", negated=False, after=nxt)
        if word in ("like", "ilike"):
            self.advance()
            return self.match(field, word, negated=False, after=nxt)
        if word == "in":
            self.advance()
            return self.in_list(field, negated=False, after=nxt)
        if word == "not":
            after = self.tokens[self.i + 1]
            if after.keyword in ("in", "like", "ilike", "rlike"):
                self.advance()
                self.advance()
                if after.keyword == "in":
                    return self.in_list(field, negated=True, after=after)
                kind = "regex" if after.keyword == "rlike" else after.keyword
                return self.match(field, kind or "regex", negated=True, after=after)
            raise QueryError(
                f"expected 'in', 'like' or 'ilike' after 'not', found {_describe(after)}",
                after.pos,
            )
        if word == "is":
            self.advance()
            negated = False
            if self.at_keyword("not"):
                self.advance()
                negated = True
            if not self.at_keyword("null"):
                raise QueryError(
                    f"expected 'null' or 'not null' after 'is', found {_describe(self.tok)}",
                    self.tok.pos,
                )
            self.advance()
            return Present(field, present=negated)
        if nxt.kind in ("end", ")") or nxt.keyword in ("and", "or"):
            return Present(field)
        raise QueryError(
            f"expected an operator (= != < <= > >= ~ !~ in like is) after {_q(token.text)},"
            f" found {_describe(nxt)}",
            nxt.pos,
        )

    def match(self, field: Field, kind: str, *, negated: bool, after: _Token) -> Match:
        token = self.tok
        if _field_type(field) not in ("text", "status", "param", "tag"):
            raise _text_only(field, after.pos)
        literal = self.raw_value(after)
        if kind == "regex":
            problem = _regex_problem(literal.text)
            if problem:
                raise QueryError(f"invalid regular expression: {problem}", token.pos)
        return Match(field, kind, literal.text, negated, token.pos)  # type: ignore[arg-type]

    def in_list(self, field: Field, *, negated: bool, after: _Token) -> InList:
        if self.tok.kind != "(":
            raise QueryError(
                f"expected '(' after {_q(after.text)}, found {_describe(self.tok)}", self.tok.pos
            )
        self.advance()
        values = [self.value(field, after=after, op="=")]
        while self.tok.kind == ",":
            comma = self.advance()
            values.append(self.value(field, after=comma, op="="))
        if self.tok.kind != ")":
            raise QueryError(
                f"expected ',' or ')' in the list, found {_describe(self.tok)}", self.tok.pos
            )
        self.advance()
        return InList(field, tuple(values), negated)

    def raw_value(self, after: _Token) -> _RawValue:
        token = self.tok
        if token.kind == "string":
            self.advance()
            return _RawValue(token.value, quoted=True, pos=token.pos)
        if token.kind == "word" and token.keyword is None:
            if any(p.quoted for p in token.parts):
                raise QueryError(f"expected a value, found {_describe(token)}", token.pos)
            head = token.parts[0].text.lower()
            if len(token.parts) > 1 and (head in _PREFIXES or head in _ATTRIBUTE_PREFIXES):
                raise QueryError(
                    f"expected a value, found the field {_q(token.text)}: fields compare with"
                    " values only (quote it to mean the text)",
                    token.pos,
                )
            self.advance()
            return _RawValue(token.text, quoted=False, pos=token.pos)
        if token.keyword == "null":
            raise QueryError(
                "use 'is null' or 'is not null' to test for a missing value", token.pos
            )
        raise QueryError(
            f"expected a value after {_q(after.text)}, found {_describe(token)}", token.pos
        )

    def value(self, field: Field, *, after: _Token, op: str) -> Literal:
        raw = self.raw_value(after)
        kind = _field_type(field)
        if kind in ("text", "param", "tag"):
            number = None if raw.quoted else _number(raw.text)
            return Literal(raw.text, number, raw.pos)
        if kind == "status":
            upper = raw.text.upper()
            if op in ("=", "!=") and upper not in Status.__members__:
                close = difflib.get_close_matches(upper, list(Status.__members__), n=1)
                hint = f"did you mean {close[0]}?" if close else "one of " + ", ".join(Status)
                raise QueryError(f"unknown status {_q(raw.text)} ({hint})", raw.pos)
            return Literal(upper, None, raw.pos)
        if kind == "metric":
            number = _number(raw.text)
            if number is None:
                raise _numbers_only(field, raw.text, raw.pos)
            return Literal(raw.text, number, raw.pos)
        if kind == "duration":
            number = _number(raw.text)
            if number is None:
                number = _duration(raw.text)
            if number is None:
                raise QueryError(
                    f"expected a duration like 90s, 5m or 1h30m (or seconds), found {_q(raw.text)}",
                    raw.pos,
                )
            return Literal(raw.text, number, raw.pos)
        # A time: MLflow's millisecond attributes take their plain numbers as milliseconds.
        if kind == "ms" and _number(raw.text) is not None:
            return Literal(raw.text, _number(raw.text), raw.pos)
        seconds = _time(raw.text, self.now)
        if seconds is None:
            if _duration(raw.text) is not None:
                raise QueryError(
                    f"a time is expected: write -{raw.text} or now-{raw.text} for that long ago",
                    raw.pos,
                )
            raise QueryError(
                "expected a time: 2026-11-01, '2026-11-01 14:30', epoch seconds, now, today,"
                f" -2h or now-1d, found {_q(raw.text)}",
                raw.pos,
            )
        return Literal(raw.text, seconds * 1000.0 if kind == "ms" else seconds, raw.pos)


@dataclass(frozen=True)
class _RawValue:
    text: str
    quoted: bool
    pos: int


def _field(token: _Token) -> Field:
    parts = token.parts
    head = parts[0].text
    lower = head.lower()
    if lower in _PREFIXES:
        kind = _PREFIXES[lower]
        keys = list(parts[1:])
        if not keys:
            raise QueryError(f"expected a key after '{head}.', as in {lower}.NAME", token.pos)
        for part in keys:
            if not part.quoted and part.text == "":
                raise QueryError(f"expected a key name after '.' in {_q(token.text)}", part.pos)
        aggregate = "last"
        if (
            kind == "metric"
            and len(keys) > 1
            and not keys[-1].quoted
            and keys[-1].text.lower() in AGGREGATES
        ):
            aggregate = keys.pop().text.lower()
        return Field(kind, ".".join(p.text for p in keys), aggregate, token.pos)  # type: ignore[arg-type]
    if lower in _ATTRIBUTE_PREFIXES and len(parts) > 1:
        if len(parts) != 2:
            raise QueryError(f"unknown attribute {_q(token.text)}", parts[1].pos)
        return _attribute(parts[1], token.pos)
    if len(parts) == 1:
        return _attribute(parts[0], token.pos)
    known = [*_PREFIXES, *_ATTRIBUTE_PREFIXES]
    close = difflib.get_close_matches(lower, known, n=1)
    hint = (
        f"did you mean {close[0]}.?"
        if close
        else "expected params., metrics., tags. or an attribute"
    )
    raise QueryError(f"unknown field {_q(token.text)} ({hint})", token.pos)


def _attribute(part: _Part, pos: int) -> Field:
    name = part.text.lower()
    name = _ATTRIBUTE_ALIASES.get(name, name)
    if name in ATTRIBUTES:
        return Field("attribute", name, "last", pos)
    if name in _PREFIXES:
        raise QueryError(f"expected a key after {_q(part.text)}, as in {name}.NAME", pos)
    names = [*ATTRIBUTES, *_ATTRIBUTE_ALIASES]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        hint = "use params.NAME, metrics.NAME, tags.NAME or name, status, experiment, start, ..."
    raise QueryError(f"unknown attribute {_q(part.text)} ({hint})", part.pos)


def _field_type(field: Field) -> str:
    if field.kind == "attribute":
        attr = ATTRIBUTES.get(field.name)
        if attr is None:
            raise QueryError(f"unknown attribute {_q(field.name)}", field.pos)
        return attr.type
    return field.kind


def parse(text: str, *, now: float | None = None) -> Node:
    """The tree of a filter (``All()`` for empty text). Raises :class:`QueryError`.

    ``now`` (epoch seconds) anchors relative times such as ``start > -2h``; default: the clock.
    """
    return _Parser(text, time.time() if now is None else now).parse()


# -- SQL -----------------------------------------------------------------------------------------

_KEYED = {
    # kind: (table, alias, text column, numeric expression)
    "param": ("params", "p", "p.value", "p.num"),
    "tag": ("tags", "t", "t.value", "TRY_CAST(t.value AS DOUBLE)"),
}
_COMPARE_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})


class _Compiler:
    """Turns a tree into SQL text made of fixed pieces, collecting values as parameters.

    ``correlated`` picks ``EXISTS (... WHERE run_id = r.id ...)`` instead of
    ``r.id IN (SELECT run_id ...)`` for keyed predicates; kept for the benchmark that chose IN.
    """

    def __init__(self, *, correlated: bool = False) -> None:
        self.correlated = correlated
        self.params: list[Any] = []

    def compile(self, node: Node) -> RunQuery:
        self.params = []
        where = self.node(node)
        return RunQuery(where, tuple(self.params))

    def node(self, node: Node) -> str:
        # A leaf may yield NULL (a missing attribute) and NULL means "no match"; only NOT needs
        # to turn it into FALSE first, so NOT is an exact complement.
        if isinstance(node, All):
            return "TRUE"
        if isinstance(node, And | Or):
            if not node.items:
                return "TRUE" if isinstance(node, And) else "FALSE"
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.node(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"NOT coalesce({self.node(node.child)}, FALSE)"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Match):
            return self.match(node)
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, Present):
            return self.present(node)
        raise QueryError(f"cannot compile {type(node).__name__}", 0)

    # -- helpers ---------------------------------------------------------------------------------

    def arg(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def keyed(self, field: Field, condition: Any) -> str:
        """Runs having a row for ``field``'s key that satisfies ``condition(alias)``."""
        if field.kind == "metric":
            table, alias = "metric_summary", "m"
        else:
            table, alias = _KEYED[field.kind][:2]
        key = self.arg(field.name)
        cond = condition()
        tail = f" AND {cond}" if cond else ""
        if self.correlated:
            return (
                f"EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.run_id = r.id"
                f" AND {alias}.key = {key}{tail})"
            )
        return (
            f"r.id IN (SELECT {alias}.run_id FROM {table} {alias} WHERE {alias}.key = {key}{tail})"
        )

    @staticmethod
    def metric_column(field: Field) -> str:
        if field.aggregate not in AGGREGATES:
            raise QueryError(f"unknown metric aggregate {field.aggregate!r}", field.pos)
        return f"m.{field.aggregate}"

    @staticmethod
    def attribute(field: Field) -> _Attr:
        attr = ATTRIBUTES.get(field.name)
        if attr is None:
            raise QueryError(f"unknown attribute {_q(field.name)}", field.pos)
        return attr

    @staticmethod
    def need_number(field: Field, value: Literal) -> float:
        if value.number is None:
            raise _numbers_only(field, value.text, value.pos)
        return float(value.number)

    # -- leaves ----------------------------------------------------------------------------------

    def compare(self, node: Compare) -> str:
        field, op, value = node.field, node.op, node.value
        if op not in _COMPARE_OPS:
            raise QueryError(f"unknown operator {op!r}", value.pos)
        if field.kind == "attribute":
            attr = self.attribute(field)
            if attr.type == "text":
                return attr.wrap(f"{attr.sql} {op} {self.arg(value.text)}")
            if attr.type == "status":
                return f"upper({attr.sql}) {op} {self.arg(value.text.upper())}"
            return f"{attr.sql} {op} {self.arg(self.need_number(field, value))}"
        if field.kind == "metric":
            column = self.metric_column(field)
            number = self.need_number(field, value)
            return self.keyed(field, lambda: _ordered(column, op, self.arg(number)))
        _, _, text_col, num_col = _KEYED[field.kind]

        def condition() -> str:
            if value.number is None:
                return f"{text_col} {op} {self.arg(value.text)}"
            if op in ("=", "!="):
                number, text = self.arg(value.number), self.arg(value.text)
                same = f"({num_col} = {number} OR {text_col} = {text})"
                return same if op == "=" else f"NOT coalesce({same}, FALSE)"
            return _ordered(num_col, op, self.arg(value.number))

        return self.keyed(field, condition)

    def match(self, node: Match) -> str:
        field = node.field
        kind = node.kind
        if kind not in ("regex", "like", "ilike"):
            raise QueryError(f"unknown match {kind!r}", node.pos)
        if kind == "regex":
            problem = _regex_problem(node.pattern)
            if problem:
                raise QueryError(f"invalid regular expression: {problem}", node.pos)

        def test(column: str, fold: bool) -> str:
            pattern = self.arg(node.pattern)
            if kind == "regex":
                flags = ", 'i'" if fold else ""
                sql = f"regexp_matches({column}, {pattern}{flags})"
                return f"NOT {sql}" if node.negated else sql
            word = "ILIKE" if (kind == "ilike" or fold) else "LIKE"
            return f"{column} {'NOT ' if node.negated else ''}{word} {pattern}"

        if field.kind == "attribute":
            attr = self.attribute(field)
            if attr.type not in ("text", "status"):
                raise _text_only(field, node.pos)
            return attr.wrap(test(attr.sql, attr.type == "status"))
        if field.kind == "metric":
            raise _text_only(field, node.pos)
        text_col = _KEYED[field.kind][2]
        return self.keyed(field, lambda: test(text_col, False))

    def in_list(self, node: InList) -> str:
        field, values = node.field, node.values
        if not values:
            return "FALSE" if not node.negated else self.present(Present(field))
        if field.kind == "attribute":
            attr = self.attribute(field)
            args: list[Any]
            if attr.type == "text":
                args = [v.text for v in values]
                column = attr.sql
            elif attr.type == "status":
                args = [v.text.upper() for v in values]
                column = f"upper({attr.sql})"
            else:
                args = [self.need_number(field, v) for v in values]
                column = attr.sql
            marks = ", ".join(self.arg(a) for a in args)
            return attr.wrap(f"{column} {'NOT IN' if node.negated else 'IN'} ({marks})")
        if field.kind == "metric":
            column = self.metric_column(field)
            numbers = [self.need_number(field, v) for v in values]

            def metric_condition() -> str:
                marks = ", ".join(self.arg(n) for n in numbers)
                return f"{column} {'NOT IN' if node.negated else 'IN'} ({marks})"

            return self.keyed(field, metric_condition)
        _, _, text_col, num_col = _KEYED[field.kind]

        def condition() -> str:
            texts = ", ".join(self.arg(v.text) for v in values)
            sql = f"{text_col} IN ({texts})"
            numbers = [v.number for v in values if v.number is not None]
            if numbers:
                nums = ", ".join(self.arg(n) for n in numbers)
                sql = f"({sql} OR {num_col} IN ({nums}))"
            return f"NOT coalesce({sql}, FALSE)" if node.negated else sql

        return self.keyed(field, condition)

    def present(self, node: Present) -> str:
        field = node.field
        if field.kind == "attribute":
            attr = self.attribute(field)
            if attr.exists is not None:
                found = attr.wrap("TRUE")
                return found if node.present else f"NOT {found}"
            return f"{attr.sql} IS {'NOT ' if node.present else ''}NULL"
        if field.kind == "metric":
            column = self.metric_column(field)
            sql = self.keyed(field, lambda: f"{column} IS NOT NULL")
        else:
            sql = self.keyed(field, lambda: "")
        return sql if node.present else f"NOT coalesce({sql}, FALSE)"


def _ordered(column: str, op: str, arg: str) -> str:
    """``column op arg``, where NaN never counts as large.

    DuckDB sorts NaN above every number, but a diverged metric (last value NaN) must not pass
    ``metrics.acc > 0.9``.
    """
    if op in ("<", "<=", ">", ">="):
        return f"({column} {op} {arg} AND NOT isnan({column}))"
    return f"{column} {op} {arg}"


def to_sql(node: Node) -> RunQuery:
    """The parameterised WHERE fragment for a tree (keys and values only as parameters)."""
    return _Compiler().compile(node)


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

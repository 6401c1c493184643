"""Filter text to tree: the tokenizer (with source positions), value readers and the parser.

Apart from the SQL compiler because it knows text and the tree (:mod:`query_tree`), not the
store's tables: a filter is checked and located here before any SQL exists. The grammar is in
:mod:`mltop.core.runs.query`.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mltop.core.entities import Status
from mltop.core.runs.query_sql import _regex_problem
from mltop.core.runs.query_tree import (
    _ATTRIBUTE_ALIASES,
    _ATTRIBUTE_PREFIXES,
    _KEYWORDS,
    _MAX_DEPTH,
    _PREFIXES,
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
    _numbers_only,
    _q,
    _text_only,
)

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
        return self._joined("or", self.and_expr, Or, depth)

    def and_expr(self, depth: int) -> Node:
        return self._joined("and", self.unary, And, depth)

    def _joined(
        self,
        keyword: str,
        operand: Callable[[int], Node],
        join: Callable[[tuple[Node, ...]], Node],
        depth: int,
    ) -> Node:
        """Operands separated by ``keyword``: a lone operand as it is, else ``join`` of them all."""
        items = [operand(depth)]
        while self.at_keyword(keyword):
            self.advance()
            items.append(operand(depth))
        return items[0] if len(items) == 1 else join(tuple(items))

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

"""Tree to SQL: the WHERE fragment a filter tree compiles into, every value a ``?`` parameter.

Apart from the parser because it is the only part that knows the store's tables (``runs r``,
``params``, ``tags``, the metric summaries) and DuckDB's regex engine, which checks a pattern
before the query runs (the parser asks it too, to place a bad pattern's column).
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

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
    _Attr,
    _numbers_only,
    _q,
    _text_only,
)
from mltop.core.store import RunQuery

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

"""The filter language's shared vocabulary: its error, its fields and the tree a filter parses into.

Both the parser (:mod:`mltop.core.runs.query_parser`) and the SQL compiler
(:mod:`mltop.core.runs.query_sql`) speak in these terms, so they live apart from either; the
language itself is described in :mod:`mltop.core.runs.query`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal as TypingLiteral


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


# -- messages ------------------------------------------------------------------------------------


def _q(text: str) -> str:
    """User text quoted for a message, shortened so the message stays one readable line."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _numbers_only(field: Field, found: str, pos: int) -> QueryError:
    return QueryError(f"{_q(str(field))} compares with numbers, found {_q(found)}", pos)


def _text_only(field: Field, pos: int) -> QueryError:
    return QueryError(f"{_q(str(field))} holds numbers; ~, like and ilike need text", pos)

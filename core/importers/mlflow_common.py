"""What MLflow's two local stores (SQLite and the ``mlruns/`` file tree) have in common.

Both stores hold the same entities with the same conventions: times in epoch milliseconds, a
run's name, parent and git commit kept as ``mlflow.*`` tags, deleted runs kept in place with
``lifecycle_stage: deleted``. The importers differ only in how they read rows; the mapping onto
:class:`~mltop.core.entities.RunRecord` lives here so both stores import identically.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

from mltop.core.entities import RunRecord, Status, stable_id

TAG_RUN_NAME = "mlflow.runName"
TAG_PARENT = "mlflow.parentRunId"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
# MLflow has no standard host tag; these are the names teams and plugins use for one.
HOST_TAGS = ("mlflow.hostname", "mlflow.host", "host", "hostname")
#: The tags :func:`make_record` reads (the rest only go to the store as they are).
RECORD_TAGS = (TAG_RUN_NAME, TAG_PARENT, TAG_GIT_COMMIT, *HOST_TAGS)

# The file store writes RunStatus as its protobuf number.
STATUS_CODES = {
    1: Status.RUNNING,
    2: Status.SCHEDULED,
    3: Status.FINISHED,
    4: Status.FAILED,
    5: Status.KILLED,
}

DELETED = "deleted"
ACTIVE = "active"

#: MLflow's SQL stores cannot hold an infinity: they write the largest double in its place (and
#: a server backed by one sends it back as such). Read back, it is the infinity it stood for.
MLFLOW_INFINITY = 1.7976931348623157e308


def metric_value(value: float) -> float:
    """A metric value as MLflow meant it: ``±1.7976931348623157e308`` is ``±inf``."""
    if abs(value) == MLFLOW_INFINITY:
        return math.copysign(math.inf, value)
    return value


# (id, source_kind, source, native_id, name), as Store.put_experiments takes them
ExperimentRow = tuple[str, str, str, str | None, str]


def parse_status(value: object) -> Status:
    """An MLflow status as the file store (number) or the SQL store (word) writes it."""
    if isinstance(value, bool):
        return Status.FINISHED
    if isinstance(value, int):
        return STATUS_CODES.get(value, Status.FINISHED)
    text = str(value).strip() if value is not None else ""
    if text.isdigit():
        return STATUS_CODES.get(int(text), Status.FINISHED)
    return _status_word(text)


@functools.lru_cache(maxsize=64)  # a handful of words, read once per run imported
def _status_word(text: str) -> Status:
    return Status.parse(text)


def ms_to_s(value: object) -> float | None:
    """Epoch milliseconds (MLflow's unit everywhere) as epoch seconds; None when absent or junk."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return number / 1000.0


def lifecycle_of(stage: object, experiment_deleted: bool = False) -> str:
    """``deleted`` for a deleted run or a run of a deleted experiment (MLflow hides both)."""
    if experiment_deleted:
        return DELETED
    return DELETED if str(stage or "").strip().lower() == DELETED else ACTIVE


def run_id(kind: str, source: str, native_id: str) -> str:
    """``source`` as :meth:`Store.id_path` gives it, so ids survive moving the project."""
    return stable_id(kind, source, native_id)


@functools.lru_cache(maxsize=1024)  # the few experiments of a store, once per run imported
def experiment_id(kind: str, source: str, native_id: str) -> str:
    return stable_id(kind, source, "experiment", native_id)


def host_of(tags: Mapping[str, str]) -> str | None:
    for key in HOST_TAGS:
        value = tags.get(key)
        if value:
            return value
    return None


def run_name(name: object, tags: Mapping[str, str], native_id: str) -> str:
    """The name column when it holds one, else the ``mlflow.runName`` tag, else the run id."""
    return str(name) if name not in (None, "") else tags.get(TAG_RUN_NAME) or native_id


def make_record(
    *,
    kind: str,
    source: str,
    native_id: str,
    experiment_native_id: str | None,
    name: object,
    status: object,
    lifecycle: str,
    start_ms: object,
    end_ms: object,
    artifact_uri: object,
    tags: Mapping[str, str],
    updated: float | None,
    id_source: str | None = None,
) -> RunRecord:
    """One MLflow run as a RunRecord; tags supply what MLflow keeps there (name, parent, commit).

    ``runs.name`` (or the file store's ``run_name``) wins over the ``mlflow.runName`` tag because
    MLflow renames update the column first; the tag is the fallback for stores made by MLflow 1.x.
    """
    start = ms_to_s(start_ms)
    end = ms_to_s(end_ms)
    parent = tags.get(TAG_PARENT)
    candidates = [t for t in (start, end, updated) if t is not None]
    ids = id_source if id_source is not None else source
    return RunRecord(
        id=run_id(kind, ids, native_id),
        source_kind=kind,
        location=source,
        name=run_name(name, tags, native_id),
        status=parse_status(status),
        experiment_id=(
            experiment_id(kind, ids, experiment_native_id)
            if experiment_native_id is not None
            else None
        ),
        native_id=native_id,
        start_time=start,
        end_time=end,
        parent_id=run_id(kind, ids, parent) if parent else None,
        git_commit=tags.get(TAG_GIT_COMMIT) or None,
        host=host_of(tags),
        lifecycle=lifecycle,
        artifact_uri=str(artifact_uri) if artifact_uri not in (None, "") else None,
        updated=max(candidates) if candidates else None,
    )

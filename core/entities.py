"""Value objects that cross the store boundary.

Rows become these only inside :mod:`mltop.core.store`; everything above the store (importers,
CLI, TUI) speaks in these terms. They are frozen so a screen can hold one without fearing that a
worker changes it underneath.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mltop.core.common.formatting import valid_time
from mltop.core.common.sanitize import inert


class Status(StrEnum):
    """Run status, in MLflow's vocabulary, which every other tracker maps onto."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SCHEDULED = "SCHEDULED"

    @classmethod
    def parse(cls, value: object, default: Status | None = None) -> Status:
        """Map a tracker's status word (any case, a few synonyms) onto a Status."""
        text = str(value).strip().upper() if value is not None else ""
        found = _STATUS_WORDS.get(text)
        if found is not None:
            return found
        return default if default is not None else cls.FINISHED


#: Every word :meth:`Status.parse` knows, made once: a first import parses a status per run.
_STATUS_WORDS: dict[str, Status] = {
    **{status.value: status for status in Status},
    "DONE": Status.FINISHED,
    "SUCCESS": Status.FINISHED,
    "SUCCEEDED": Status.FINISHED,
    "COMPLETED": Status.FINISHED,
    "ERROR": Status.FAILED,
    "CRASHED": Status.FAILED,
    "FAILURE": Status.FAILED,
    "CANCELLED": Status.KILLED,
    "CANCELED": Status.KILLED,
    "QUEUED": Status.SCHEDULED,
}


def stable_id(*parts: str) -> str:
    """A run or experiment id that is the same on every import of the same source.

    Idempotence rests on this: re-importing a source produces the same ids, so rows are replaced,
    never duplicated.
    """
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class SourceRef:
    """One thing discovery found: a run folder, a tracker database, a log directory."""

    kind: str
    location: Path
    root: Path | None = None

    @property
    def key(self) -> str:
        return str(self.location)


@dataclass(frozen=True)
class Problem:
    """One unreadable file or unit: shown to the user as ``path: message``."""

    path: str
    message: str

    def __str__(self) -> str:
        # One line, inert: a file name holding a newline or an escape sequence cannot forge a
        # second message or drive the terminal.
        return inert(f"{self.path}: {self.message}")


@dataclass
class SourceCount:
    runs: int = 0
    points: int = 0


@dataclass
class ImportReport:
    """What one ingest did, per source kind, and what it could not read."""

    counts: dict[str, SourceCount] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    sources_seen: int = 0
    removed_runs: int = 0

    def add(self, kind: str, runs: int = 0, points: int = 0) -> None:
        count = self.counts.setdefault(kind, SourceCount())
        count.runs += runs
        count.points += points

    def problem(self, path: str | Path, message: str) -> None:
        one_line = " ".join(str(message).split())
        if len(one_line) > 300:
            one_line = one_line[:297] + "..."
        self.problems.append(Problem(str(path), one_line))

    @property
    def runs_added(self) -> int:
        return sum(c.runs for c in self.counts.values())

    @property
    def points_added(self) -> int:
        return sum(c.points for c in self.counts.values())


@dataclass(frozen=True)
class RunRecord:
    """A run as an importer hands it to the store."""

    id: str
    source_kind: str
    location: str
    name: str
    status: Status = Status.FINISHED
    experiment_id: str | None = None
    native_id: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    parent_id: str | None = None
    git_commit: str | None = None
    host: str | None = None
    lifecycle: str = "active"
    artifact_uri: str | None = None
    error: str | None = None
    updated: float | None = None
    # The discovered source this run came from (defaults to its location); a full re-scan
    # forgets runs whose source is gone.
    source: str | None = None


@dataclass(frozen=True)
class Run:
    """A run as the store returns it, with its experiment's name resolved."""

    id: str
    name: str
    status: str
    experiment: str | None
    source_kind: str
    location: str
    start_time: float | None
    end_time: float | None
    parent_id: str | None
    git_commit: str | None
    host: str | None
    lifecycle: str
    artifact_uri: str | None
    error: str | None
    updated: float | None
    native_id: str | None = None
    experiment_id: str | None = None

    @property
    def duration(self) -> float | None:
        """End (or last update) minus start; None when either is missing or not a valid time
        (a start of ``1e12`` seconds would otherwise make a duration of minus 31,000 years)."""
        end = self.end_time if self.end_time is not None else self.updated
        if not (valid_time(self.start_time) and valid_time(end)):
            return None
        assert self.start_time is not None and end is not None
        return max(0.0, end - self.start_time)


@dataclass(frozen=True)
class FileState:
    """What the store remembers of a source file, so a re-scan reads only what changed."""

    path: str
    size: int
    mtime: float
    inode: int
    offset: int
    head: str
    run_id: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one run, summarised on import so the runs table never reads histories."""

    run_id: str
    key: str
    last: float | None
    min: float | None
    max: float | None
    count: int
    first_step: int | None
    last_step: int | None
    min_step: int | None
    max_step: int | None
    last_time: float | None


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    source_kind: str
    runs: int


@dataclass(frozen=True)
class LogFile:
    run_id: str
    path: str


@dataclass(frozen=True)
class RegisteredModel:
    """A model of a registry (MLflow's registered model), as its source recorded it.

    ``aliases`` maps alias -> version; ``tags`` are (key, value) pairs in key order. Times are
    epoch seconds. ``source`` is the source the model was read from (a database, an ``mlruns``
    folder or a server URL), so one name in two sources stays two models.
    """

    name: str
    source_kind: str
    source: str
    description: str | None = None
    created: float | None = None
    updated: float | None = None
    tags: tuple[tuple[str, str], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ModelVersion:
    """One version of a registered model and the run that made it.

    ``run_native_id`` is the tracker's run id as the registry recorded it; ``run_id`` is the
    store's id of that run when the run was imported (None when it was not, or was deleted).
    ``deleted`` marks a version the registry deleted but still keeps on disk (MLflow's
    ``Deleted_Internal``): shown as such, never as a live version. ``stage`` is None when
    MLflow's deprecated stage is unset (``None``).
    """

    name: str
    version: str
    source_kind: str
    source: str
    run_native_id: str | None = None
    run_id: str | None = None
    uri: str | None = None
    status: str | None = None
    status_message: str | None = None
    stage: str | None = None
    description: str | None = None
    created: float | None = None
    updated: float | None = None
    user_id: str | None = None
    model_id: str | None = None
    deleted: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoggedModel:
    """An MLflow 3 logged model: what a registered version made from ``models:/m-...`` points
    at, with the metrics and params MLflow recorded on the model itself.

    ``metrics`` are MLflow's rows, (key, value, step, timestamp in ms, dataset name), in the
    order read; ``params`` are (key, value) pairs in key order. A version whose run is gone or
    was never imported still has these to show.
    """

    model_id: str
    name: str | None = None
    experiment_id: str | None = None
    run_native_id: str | None = None
    status: str | None = None
    created: float | None = None
    updated: float | None = None
    metrics: tuple[tuple[str, float, int, int | None, str | None], ...] = ()
    params: tuple[tuple[str, str], ...] = ()

    def final_metrics(self) -> dict[str, float]:
        """Each metric's latest value as MLflow reads a run's: highest step, then latest time,
        then the larger value."""
        best: dict[str, tuple[int, int, float]] = {}
        for key, value, step, ts, _dataset in self.metrics:
            rank = (step, ts if ts is not None else 0, value)
            if key not in best or rank > best[key]:
                best[key] = rank
        return {key: rank[2] for key, rank in sorted(best.items())}

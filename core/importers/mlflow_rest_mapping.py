"""What an MLflow server's JSON means to mltop: runs and metric points parsed and checked, and
a run mapped to its :class:`~mltop.core.entities.RunRecord` and its sync state.

Apart from the HTTP client and the sync: pure functions over answers already received, shared by
both phases (:mod:`~mltop.core.importers.mlflow_rest` and its ``_histories``), with the limits
and the progress callback they share.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from mltop.core.common.httpclient import (
    Credentials,
)
from mltop.core.entities import RunRecord
from mltop.core.importers import mlflow_common as common

KIND = "mlflow-server"
# MLflow stores steps as int64; JSON can carry any integer, which no int64 column can hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Problem lines about single runs, per phase, before the rest are counted in one line.
MAX_RUN_PROBLEMS = 20

#: ``progress(what, done, total)``, as both phases report it.
Progress = Callable[[str, int, int], None]

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def as_float(value: object) -> float | None:
    """A metric value as MLflow's JSON sends it: a number, or "NaN"/"Infinity"/"-Infinity"."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return common.metric_value(float(value))
    if isinstance(value, str):
        try:
            return common.metric_value(float(value.strip()))
        except ValueError:
            return None
    return None


def as_int(value: object) -> int | None:
    """An int64 field, which proto JSON may send as a number or a string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def scrub(text: str) -> str:
    """``text`` with the user and password taken out of any URL in it."""
    return _USERINFO.sub(r"\1", text) if "@" in text else text


@dataclass(frozen=True)
class RemoteRun:
    """One run of a search page, checked and converted."""

    native_id: str
    experiment_id: str | None
    name: str | None
    status: str | None
    lifecycle: str | None
    start_ms: int | None
    end_ms: int | None
    artifact_uri: str | None
    params: tuple[tuple[str, str], ...]
    tags: dict[str, str]
    # (key, step, timestamp ms or None, value): MLflow's latest value of each metric
    latest: tuple[tuple[str, int, int | None, float], ...]
    # (key, why) of latest values that cannot be stored, e.g. a step beyond int64
    unusable: tuple[tuple[str, str], ...] = ()

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Every metric the run has, usable latest value or not (their histories are read)."""
        keys = [k for k, *_ in self.latest]
        return tuple(keys + [k for k, _ in self.unusable if k not in keys])


class BadRun(ValueError):
    """A search row that is not a run; the message names what is wrong."""


def _pairs(data: object, what: str) -> list[tuple[str, str]]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise BadRun(f"{what} is not a list")
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise BadRun(f"a {what} entry has no key")
        value = item.get("value", "")
        out.append((item["key"], value if isinstance(value, str) else str(value)))
    return out


def parse_run(obj: Mapping[str, Any]) -> RemoteRun:
    """A ``runs/search`` or ``runs/get`` run object as a :class:`RemoteRun`."""
    info = obj.get("info")
    data = obj.get("data") or {}
    if not isinstance(info, dict) or not isinstance(data, dict):
        raise BadRun("no info object")
    native = info.get("run_id") or info.get("run_uuid")
    if not isinstance(native, str) or not native:
        raise BadRun("no run id")
    latest: list[tuple[str, int, int | None, float]] = []
    unusable: list[tuple[str, str]] = []
    metrics = data.get("metrics") or []
    if not isinstance(metrics, list):
        raise BadRun("metrics is not a list")
    for m in metrics:
        if not isinstance(m, dict) or not isinstance(m.get("key"), str):
            raise BadRun("a metric has no key")
        value = as_float(m.get("value", 0.0))
        if value is None:
            raise BadRun(f"metric {m['key']!r} has no numeric value")
        step = as_int(m.get("step")) or 0
        if not INT64_MIN <= step <= INT64_MAX:
            unusable.append((m["key"], f"step {step} is beyond the 64-bit range"))
            continue
        latest.append((m["key"], step, as_int(m.get("timestamp")), value))
    exp = info.get("experiment_id")

    def text(value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    return RemoteRun(
        native_id=native,
        experiment_id=str(exp) if exp not in (None, "") else None,
        name=text(info.get("run_name")),
        status=text(info.get("status")),
        lifecycle=text(info.get("lifecycle_stage")),
        start_ms=as_int(info.get("start_time")),
        end_ms=as_int(info.get("end_time")),
        artifact_uri=text(info.get("artifact_uri")),
        params=tuple(_pairs(data.get("params"), "param")),
        tags=dict(_pairs(data.get("tags"), "tag")),
        latest=tuple(sorted(latest)),
        unusable=tuple(sorted(set(unusable))),
    )


class Points(NamedTuple):
    """One metric's parsed history, and how many points had a step no int64 can hold."""

    steps: np.ndarray  # int64
    times: np.ndarray  # float64 seconds, NaN when absent
    values: np.ndarray  # float64
    beyond_int64: int = 0


def parse_points(metrics: Sequence[Mapping[str, Any]]) -> Points:
    """The history points of one metric, as arrays.

    Values may be numbers or MLflow's "NaN"/"Infinity" strings; numpy parses both at C speed.
    A point without a usable value is dropped (counted by the caller from the lengths); a point
    whose step is beyond int64 is dropped and counted in ``beyond_int64`` for a problem line.
    """
    n = len(metrics)
    raw_steps = [as_int(m.get("step")) or 0 for m in metrics]
    try:
        steps = np.array(raw_steps, dtype=np.int64).reshape(n)
        in_range = None
    except OverflowError:
        in_range = np.array([INT64_MIN <= s <= INT64_MAX for s in raw_steps], dtype=bool)
        steps = np.array([s if ok else 0 for s, ok in zip(raw_steps, in_range, strict=True)])
        steps = steps.astype(np.int64).reshape(n)
    times = np.fromiter(
        ((t if (t := as_int(m.get("timestamp"))) is not None else np.nan) for m in metrics),
        np.float64,
        n,
    )
    raw = [m.get("value", 0.0) for m in metrics]
    try:
        values = np.array(raw, dtype=np.float64).reshape(n)
        keep = None
    except (TypeError, ValueError):
        parsed = [as_float(v) for v in raw]
        keep = np.array([v is not None for v in parsed], dtype=bool)
        values = np.array([v if v is not None else np.nan for v in parsed], dtype=np.float64)
    if in_range is not None:
        keep = in_range if keep is None else keep & in_range
    if keep is not None:
        steps, times, values = steps[keep], times[keep], values[keep]
    beyond = 0 if in_range is None else int(n - np.count_nonzero(in_range))
    return Points(steps, times / 1000.0, values, beyond)


def masked_run(run: RemoteRun, credentials: Credentials) -> RemoteRun:
    """``run`` without the client's secrets in its name, params or tags (a server echoing them).

    Metric keys stay as sent: they name the histories to ask the server for.
    """
    if not credentials.present:
        return run
    mask = credentials.mask
    return replace(
        run,
        name=mask(run.name) if run.name else run.name,
        params=tuple((mask(k), mask(v)) for k, v in run.params),
        tags={mask(k): mask(v) for k, v in run.tags.items()},
        artifact_uri=mask(run.artifact_uri) if run.artifact_uri else run.artifact_uri,
    )


def state_path(url: str, native_id: str) -> str:
    """The pseudo-path a run's sync state is kept under in the store's file states."""
    return f"mlflow+{url}#run/{native_id}"


def state_head(meta: str, hist: str) -> str:
    return f"meta:{meta} hist:{hist}"


def parse_state_head(head: str) -> tuple[str, str]:
    meta = hist = ""
    for part in head.split():
        name, _, value = part.partition(":")
        if name == "meta":
            meta = value
        elif name == "hist":
            hist = value
    return meta, hist


def sync_digest(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:20]


def run_link(url: str, experiment_id: str | None, native_id: str) -> str:
    """The run's page in the MLflow UI: where it lives, and a link a terminal can open."""
    if experiment_id is None:
        return f"{url}/#/runs/{native_id}"
    return f"{url}/#/experiments/{experiment_id}/runs/{native_id}"


def to_record(url: str, run: RemoteRun, deleted_experiments: set[str]) -> RunRecord:
    """A remote run as a RunRecord, through the mapping shared with MLflow's local stores."""
    times = [t for _, _, t, _ in run.latest if t is not None]
    record = common.make_record(
        kind=KIND,
        source=url,
        native_id=run.native_id,
        experiment_native_id=run.experiment_id,
        name=run.name,
        status=run.status,
        lifecycle=common.lifecycle_of(run.lifecycle, run.experiment_id in deleted_experiments),
        start_ms=run.start_ms,
        end_ms=run.end_ms,
        artifact_uri=scrub(run.artifact_uri) if run.artifact_uri else None,
        tags=run.tags,
        updated=common.ms_to_s(max(times)) if times else None,
    )
    return replace(record, location=run_link(url, run.experiment_id, run.native_id), source=url)


@dataclass(frozen=True)
class HistoryJob:
    """One run whose histories phase 2 must fetch."""

    run_id: str
    native_id: str
    name: str
    keys: tuple[str, ...]
    meta: str
    hist: str
    # (key, step, timestamp ms) of each latest value: a history without it is incomplete
    latest: tuple[tuple[str, int, int | None], ...] = ()


@dataclass
class SyncPlan:
    """What :func:`sync_runs` found: the histories still to fetch, and counts."""

    url: str
    jobs: list[HistoryJob] = field(default_factory=list)
    runs_seen: int = 0
    runs_written: int = 0
    runs_removed: int = 0

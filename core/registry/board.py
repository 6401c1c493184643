"""One model's versions beside the runs that made them: what the Models screen draws.

Each version gets its run (name, experiment, or why there is none: the version or the run was
deleted, or the run is not imported), the run's primary metrics (for a version without a run,
those of the MLflow 3 logged model it was registered from), and each metric's change
against the ``@champion`` version, judged by the metric's direction exactly as a diff judges it
(:mod:`mltop.core.compare.directions`), so a version is "better" here when it would pass a gate
there. Built in one worker call: two store reads (the runs, their metric summaries).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from mltop.core.compare.diff import Verdict
from mltop.core.compare.directions import Direction, DirectionRules
from mltop.core.entities import LoggedModel, ModelVersion, Run
from mltop.core.registry.gto import KIND as GTO
from mltop.core.registry.resolve import ModelListing, with_versions
from mltop.core.store import Store

CHAMPION = "champion"
DEFAULT_METRICS = 6
# A logged model's id in the run column, shortened visibly (m- and 8 of its 32 hex digits).
SHORT_ID = 10
# Names that say "held-out": shown before training-set metrics of the same popularity.
_HELD_OUT = ("val", "valid", "test", "eval")


@dataclass(frozen=True)
class MetricCell:
    """A version's value of one metric and its change against @champion's (as a diff's cell);
    ``verdict`` is None when the model has no @champion to compare with."""

    value: float | None
    delta: float | None = None
    verdict: Verdict | None = None


@dataclass(frozen=True)
class VersionRow:
    """A version, its run, its metric cells (the run's, or when it has no run its logged
    model's) and the MLflow 3 logged model it was registered from."""

    version: ModelVersion
    run: Run | None
    cells: tuple[MetricCell, ...]
    logged: LoggedModel | None = None

    @property
    def no_run(self) -> str:
        """Why the version has no run to open."""
        if not self.version.run_native_id:
            return "(no run)"
        if self.version.source_kind == GTO:  # a GTO version's run id is its tagged commit
            return f"(no run at commit {self.version.run_native_id[:7]})"
        return "(run deleted or not imported)"

    @property
    def run_text(self) -> str:
        """``name (experiment)``, or why the version has no run to show."""
        if self.version.deleted:
            return "(version deleted)"
        if self.run is None:
            if self.logged is not None:  # its metrics stand in for the run's: say whose
                short = self.logged.model_id
                short = short[:SHORT_ID] + "…" if len(short) > SHORT_ID + 1 else short
                return f"logged model {short}"
            return self.no_run
        if self.run.experiment:
            return f"{self.run.name} ({self.run.experiment})"
        return self.run.name


@dataclass(frozen=True)
class ModelBoard:
    listing: ModelListing
    metrics: tuple[tuple[str, Direction], ...]
    rows: tuple[VersionRow, ...]
    champion: str | None


def _judge(value: float | None, base: float | None, direction: Direction) -> MetricCell:
    if value is None:
        return MetricCell(None, None, Verdict.MISSING if base is not None else Verdict.SAME)
    if base is None:
        return MetricCell(value, None, Verdict.ADDED)
    if math.isnan(value) or math.isnan(base):
        same = math.isnan(value) and math.isnan(base)
        return MetricCell(value, None, Verdict.SAME if same else Verdict.CHANGED)
    delta = value - base
    if delta == 0:
        return MetricCell(value, 0.0, Verdict.SAME)
    if direction is Direction.NEUTRAL or math.isnan(delta):
        return MetricCell(value, delta, Verdict.CHANGED)
    better = delta > 0 if direction is Direction.MAX else delta < 0
    return MetricCell(value, delta, Verdict.BETTER if better else Verdict.WORSE)


def _rank(key: str, count: int, directions: DirectionRules) -> tuple:
    tokens = key.lower().replace("/", "_").split("_")
    held_out = any(t in _HELD_OUT for t in tokens)
    known = directions.direction(key) is not Direction.NEUTRAL
    return (-count, not held_out, not known, key)


def model_board(
    store: Store,
    listing: ModelListing,
    directions: DirectionRules,
    max_metrics: int = DEFAULT_METRICS,
) -> ModelBoard:
    """The versions of ``listing`` (read here) with their runs' primary metrics against
    @champion.

    The primary metrics are those most of the versions' runs have, held-out ones (``val_*``,
    ``test_*``) and ones with a known direction first.
    """
    listing = with_versions(store, listing)
    versions = listing.versions
    run_ids = [v.run_id for v in versions if v.run_id and not v.deleted]
    runs = store.runs_by_id(run_ids) if run_ids else {}
    summaries = store.summaries(list(runs)) if runs else {}
    # Each version's metrics: its run's, else (no run to read) its logged model's.
    own: dict[str, dict[str, float]] = {}
    for v in versions:
        run = runs.get(v.run_id or "") if not v.deleted else None
        logged = listing.logged_model(v)
        if run is not None:
            own[v.version] = {k: s.last for k, s in summaries.get(run.id, {}).items()}
        elif logged is not None and logged.metrics:
            own[v.version] = logged.final_metrics()
    counts = Counter(key for values in own.values() for key in values)
    keys = sorted(counts, key=lambda k: _rank(k, counts[k], directions))[:max_metrics]
    metrics = tuple((k, directions.direction(k)) for k in keys)
    champion = listing.alias_version(CHAMPION)
    base = own.get(champion.version) if champion else None
    rows = []
    for v in versions:
        run = runs.get(v.run_id or "") if not v.deleted else None
        values = own.get(v.version, {})
        cells = []
        for key, direction in metrics:
            value = values.get(key)
            if champion is None or base is None:
                cells.append(MetricCell(value))
            elif v.version == champion.version:
                cells.append(MetricCell(value, None, Verdict.BASELINE))
            else:
                cells.append(_judge(value, base.get(key), direction))
        rows.append(VersionRow(v, run, tuple(cells), listing.logged_model(v)))
    return ModelBoard(listing, metrics, tuple(rows), champion.version if champion else None)

"""Comparing runs: params and metrics side by side, against a baseline run.

:func:`compare_runs` reads what it needs in three batched store calls (runs, params with their
numeric reading, metric summaries) and never touches metric histories: the best-of-history
aggregates (min, max and the step of each) are kept in ``metric_summary`` on import. The result
is a :class:`Comparison` of frozen rows and cells, with everything a screen or a renderer needs
(values, deltas, percent changes, better/worse verdicts, best-of-history); changing the baseline
or hiding unchanged rows is :meth:`Comparison.rebuild`, which does not go back to the store.

Rules the cells follow:

* Metric values are each run's last value (the value at its highest step), whatever the step
  grids; ``Row.steps_differ`` says when the last steps are not the same.
* A delta is ``run − baseline`` when both are numbers; NaN propagates (the delta of a NaN is NaN)
  and infinities follow IEEE arithmetic. The percent change is ``delta / |baseline| × 100``; it is
  0 when both are 0 and undefined (None) when only the baseline is 0.
* Params are equal when their text is equal (``1`` and ``1.0`` differ, ``0.1`` and ``"0.1"`` do
  not); a param gets a delta only when both readings are numbers.
* Better/worse comes from the metric's direction (:mod:`mltop.core.compare.directions`); a
  change of a metric with no known direction, of a param, or to or from NaN is just "changed".

:func:`parse_gates` and :func:`check_gates` turn ``--fail-on`` thresholds into regressions, so a
CI job can refuse a model that got worse.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from mltop.core.common.formatting import fmt_value
from mltop.core.common.thresholds import Threshold, ThresholdError, parse_thresholds
from mltop.core.compare.directions import Direction, DirectionRules, load_directions
from mltop.core.entities import MetricSummary, Run
from mltop.core.store import RunQuery, Store

RowKind = Literal["param", "metric"]


class Verdict(StrEnum):
    """How one run's cell compares with the baseline's cell in the same row."""

    BASELINE = "baseline"  # the baseline's own cell
    SAME = "same"
    BETTER = "better"
    WORSE = "worse"
    CHANGED = "changed"  # differs, and no direction says which way is better
    MISSING = "missing"  # the baseline has a value, this run has none
    ADDED = "added"  # this run has a value, the baseline has none


@dataclass(frozen=True)
class RunColumn:
    """One compared run and the name it goes by in headers and legends."""

    run: Run
    label: str

    @property
    def id(self) -> str:
        return self.run.id


@dataclass(frozen=True)
class Cell:
    """One run's value in one row, with its change against the baseline.

    ``value`` is a float for metrics and the text for params (None when the run has no value);
    ``number`` is its numeric reading. The summary fields (``step`` .. ``best_step``) are set for
    metrics only: ``step`` is the step of the last value, ``best`` the minimum of the history for
    a lower-is-better metric (at ``min_step``), the maximum for a higher-is-better one.
    """

    value: float | str | None
    number: float | None
    delta: float | None
    pct: float | None
    verdict: Verdict
    step: int | None = None
    count: int | None = None
    min: float | None = None
    max: float | None = None
    min_step: int | None = None
    max_step: int | None = None
    best: float | None = None
    best_step: int | None = None

    @property
    def present(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class Row:
    """One param or metric across the compared runs (cells in :attr:`Comparison.runs` order)."""

    kind: RowKind
    key: str
    cells: tuple[Cell, ...]
    differs: bool
    direction: Direction = Direction.NEUTRAL
    direction_source: str = "none"  # "user" (an override file), "rule" (the name) or "none"
    steps_differ: bool = False

    @property
    def present_in(self) -> int:
        return sum(1 for c in self.cells if c.present)


@dataclass(frozen=True)
class CompareData:
    """What the store gave for a comparison; enough to rebuild it with other options."""

    runs: tuple[Run, ...]
    params: dict[str, dict[str, tuple[str, float | None]]]
    summaries: dict[str, dict[str, MetricSummary]]
    directions: DirectionRules


@dataclass(frozen=True)
class Comparison:
    """Two or more runs compared against one of them.

    ``rows`` holds the params (sorted by key) and then the metrics (sorted by key) that are
    shown: those matching ``metrics_regex`` and, with ``only_changed``, those where the runs do
    not all agree. ``total_rows`` and ``changed_rows`` count before hiding unchanged rows.
    """

    runs: tuple[RunColumn, ...]
    baseline: int
    rows: tuple[Row, ...]
    only_changed: bool
    metrics_regex: str | None
    total_rows: int
    changed_rows: int
    data: CompareData = field(repr=False, compare=False)

    @property
    def baseline_column(self) -> RunColumn:
        return self.runs[self.baseline]

    @property
    def params(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "param"]

    @property
    def metrics(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "metric"]

    @property
    def identical(self) -> bool:
        """No param or (selected) metric differs between the runs."""
        return self.changed_rows == 0

    @property
    def hidden_rows(self) -> int:
        return self.total_rows - len(self.rows)

    def find(self, key: str, kind: RowKind = "metric") -> Row | None:
        """The shown row for ``key`` (a metric unless ``kind="param"``), if any."""
        return next((r for r in self.rows if r.key == key and r.kind == kind), None)

    def headline(self) -> str:
        """One sentence for the top of any rendering."""
        n = len(self.runs)
        scope = f" in metrics matching {self.metrics_regex!r}" if self.metrics_regex else ""
        if n == 1:
            return f"1 run, nothing to compare it with{scope}"
        if self.identical:
            return f"no differences between the {n} runs{scope}"
        # Hiding unchanged rows never hides a differing one, so the shown rows suffice.
        params = sum(1 for r in self.params if r.differs)
        metrics = sum(1 for r in self.metrics if r.differs)
        return (
            f"{self.changed_rows} of {self.total_rows} rows differ across {n} runs "
            f"({_plural(metrics, 'metric')}, {_plural(params, 'param')}){scope}"
        )

    def rebuild(
        self,
        *,
        baseline: int | str | None = None,
        only_changed: bool | None = None,
        metrics_regex: str | re.Pattern[str] | Literal[False] | None = False,
        directions: DirectionRules | None = None,
    ) -> Comparison:
        """The same runs with other options, without going back to the store.

        ``metrics_regex=False`` (the default) keeps the current regex; ``None`` drops it.
        """
        data = self.data if directions is None else replace(self.data, directions=directions)
        return build_comparison(
            data,
            baseline=self.baseline if baseline is None else baseline,
            only_changed=self.only_changed if only_changed is None else only_changed,
            metrics_regex=self.metrics_regex if metrics_regex is False else metrics_regex,
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- building ----------------------------------------------------------------------------------


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Names for headers and legends; a name shared by several runs gets a short id after it.

    The id part grows until the labels are unique (ids share prefixes in large stores).
    """
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.name] = counts.get(run.name, 0) + 1
    labels = [run.name for run in runs]
    clashing = [i for i, run in enumerate(runs) if counts[run.name] > 1]
    width = 7
    while clashing:
        for i in clashing:
            labels[i] = f"{runs[i].name} ({runs[i].id[:width]})"
        seen: dict[str, int] = {}
        for label in labels:
            seen[label] = seen.get(label, 0) + 1
        still = [i for i in clashing if seen[labels[i]] > 1]
        if not still or width >= max(len(runs[i].id) for i in still):
            break
        width += 2
    return labels


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def change(value: float | None, base: float | None) -> tuple[float | None, float | None]:
    """``(delta, percent)`` of ``value`` against ``base``; never raises on NaN, inf or zero."""
    if value is None or base is None:
        return None, None
    delta = value - base
    if base == 0:
        if delta == 0:
            return delta, 0.0
        return delta, (math.nan if math.isnan(delta) else None)
    return delta, delta / abs(base) * 100.0


def _metric_verdict(value: float | None, base: float | None, direction: Direction) -> Verdict:
    if value is None:
        return Verdict.MISSING
    if base is None:
        return Verdict.ADDED
    if _same(value, base):
        return Verdict.SAME
    if math.isnan(value) or math.isnan(base) or direction is Direction.NEUTRAL:
        return Verdict.CHANGED
    lower = value < base
    return Verdict.BETTER if lower == (direction is Direction.MIN) else Verdict.WORSE


def _text_verdict(value: str | None, base: str | None) -> Verdict:
    if value is None:
        return Verdict.MISSING
    if base is None:
        return Verdict.ADDED
    return Verdict.SAME if value == base else Verdict.CHANGED


def _param_row(key: str, values: list[tuple[str, float | None] | None], baseline: int) -> Row:
    base = values[baseline]
    cells = []
    for i, pair in enumerate(values):
        text, number = pair if pair is not None else (None, None)
        if i == baseline:
            cells.append(Cell(text, number, None, None, Verdict.BASELINE))
            continue
        delta, pct = change(number, base[1]) if base is not None else (None, None)
        cells.append(Cell(text, number, delta, pct, _text_verdict(text, base[0] if base else None)))
    texts = [p[0] if p is not None else None for p in values]
    differs = any(t != texts[0] for t in texts)
    return Row("param", key, tuple(cells), differs)


def _metric_row(
    key: str,
    summaries: list[MetricSummary | None],
    baseline: int,
    direction: Direction,
    source: str,
) -> Row:
    base = summaries[baseline]
    base_value = base.last if base is not None else None
    cells = []
    for i, s in enumerate(summaries):
        if s is None:
            verdict = Verdict.BASELINE if i == baseline else Verdict.MISSING
            cells.append(Cell(None, None, None, None, verdict))
            continue
        value = s.last if s.last is not None else math.nan
        if i == baseline:
            delta, pct, verdict = None, None, Verdict.BASELINE
        else:
            delta, pct = change(value, base_value)
            verdict = _metric_verdict(value, base_value, direction)
        best, best_step = None, None
        if direction is Direction.MIN:
            best, best_step = s.min, s.min_step
        elif direction is Direction.MAX:
            best, best_step = s.max, s.max_step
        cells.append(
            Cell(
                value,
                value,
                delta,
                pct,
                verdict,
                step=s.last_step,
                count=s.count,
                min=s.min,
                max=s.max,
                min_step=s.min_step,
                max_step=s.max_step,
                best=best,
                best_step=best_step,
            )
        )
    values = [c.value for c in cells]
    first = values[0]
    differs = any(
        not _same(v, first)  # type: ignore[arg-type]
        for v in values[1:]
    )
    steps = {c.step for c in cells if c.present}
    return Row("metric", key, tuple(cells), differs, direction, source, len(steps) > 1)


def _key_order(key: str) -> tuple[str, str]:
    return key.lower(), key


def _baseline_index(runs: Sequence[Run], baseline: int | str | None) -> int:
    if baseline is None:
        return 0
    if isinstance(baseline, int):
        if not -len(runs) <= baseline < len(runs):
            raise ValueError(f"baseline index {baseline} is out of range for {len(runs)} runs")
        return baseline % len(runs)
    for i, run in enumerate(runs):
        if run.id == baseline:
            return i
    raise ValueError(f"baseline {baseline!r} is not one of the compared runs")


def build_comparison(
    data: CompareData,
    *,
    baseline: int | str | None = None,
    only_changed: bool = False,
    metrics_regex: str | re.Pattern[str] | None = None,
) -> Comparison:
    """The comparison of already-loaded runs (the pure half of :func:`compare_runs`)."""
    runs = data.runs
    if not runs:
        raise ValueError("no runs to compare")
    base = _baseline_index(runs, baseline)
    pattern = re.compile(metrics_regex) if isinstance(metrics_regex, str) else metrics_regex
    ids = [r.id for r in runs]

    param_keys = sorted({k for i in ids for k in data.params.get(i, {})}, key=_key_order)
    metric_keys = sorted({k for i in ids for k in data.summaries.get(i, {})}, key=_key_order)
    if pattern is not None:
        metric_keys = [k for k in metric_keys if pattern.search(k)]

    rows: list[Row] = []
    for key in param_keys:
        rows.append(_param_row(key, [data.params.get(i, {}).get(key) for i in ids], base))
    for key in metric_keys:
        direction, source = data.directions.lookup(key)
        rows.append(
            _metric_row(
                key,
                [data.summaries.get(i, {}).get(key) for i in ids],
                base,
                direction,
                source,
            )
        )
    changed = sum(1 for r in rows if r.differs)
    shown = [r for r in rows if r.differs] if only_changed else rows
    labels = run_labels(runs)
    return Comparison(
        runs=tuple(RunColumn(run, label) for run, label in zip(runs, labels, strict=True)),
        baseline=base,
        rows=tuple(shown),
        only_changed=only_changed,
        metrics_regex=pattern.pattern if pattern is not None else None,
        total_rows=len(rows),
        changed_rows=changed,
        data=data,
    )


def load_compare_data(
    store: Store, run_ids: Sequence[str], directions: DirectionRules | None = None
) -> CompareData:
    """Read the runs, params and metric summaries of ``run_ids`` (duplicates dropped)."""
    ids = list(dict.fromkeys(run_ids))
    found = store.runs_by_id(ids)
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValueError(f"unknown run ids: {', '.join(unknown)}")
    return CompareData(
        runs=tuple(found[i] for i in ids),
        params=store.param_values(ids),
        summaries=store.summaries(ids),
        directions=directions if directions is not None else load_directions(None),
    )


def compare_runs(
    store: Store,
    run_ids: Sequence[str],
    baseline: int | str | None = None,
    only_changed: bool = False,
    metrics_regex: str | re.Pattern[str] | None = None,
    directions: DirectionRules | None = None,
) -> Comparison:
    """Compare runs (in the given order) against ``baseline`` (an id or an index; default first).

    ``directions`` defaults to the built-in rules plus the user's override file; pass
    ``load_directions(root)`` to include a project's own file. Raises ValueError for no runs,
    unknown ids or a baseline that is not among them (and re.error for a bad regex).
    """
    data = load_compare_data(store, run_ids, directions)
    return build_comparison(
        data, baseline=baseline, only_changed=only_changed, metrics_regex=metrics_regex
    )


def previous_run(store: Store, run_id: str) -> Run | None:
    """The run of the same experiment that started just before ``run_id`` (None if none).

    "Before" is the store's newest-first order (start time, then name and id), so runs started
    in the same second still have a previous one. A run without a start time or an experiment
    has no previous run: there is nothing to say which run came before it.
    """
    run = store.run(run_id)
    if run is None or run.start_time is None or run.experiment_id is None:
        return None
    newest_first = store.runs(RunQuery.experiment(run.experiment_id), order="start")
    ids = [r.id for r in newest_first]
    if run_id not in ids:
        return None
    for older in newest_first[ids.index(run_id) + 1 :]:
        if older.start_time is not None:
            return older
    return None


# -- regression gates ----------------------------------------------------------------------------

GATE_HELP = """\
Each threshold is KEY<LIMIT or KEY>LIMIT (also <= and >=), comma-separated. The change of each
compared run against the baseline is tested: the run fails when the change is below (<) or above
(>) LIMIT. LIMIT is an absolute change (run - baseline) or, with a trailing %, a relative change
in percent of |baseline|. KEY is a metric key or a glob (val_*).
  val_acc<-0.01  fail when val_acc dropped by more than 0.01
  loss>+5%       fail when loss grew by more than 5%
  val_acc<0      fail on any drop
A gated metric that is missing from a run or the baseline, or is NaN in either, fails too."""


GateError = ThresholdError


@dataclass(frozen=True)
class Gate(Threshold):
    """One threshold: fail when the change of ``key`` (a key or a glob) is ``op`` ``limit``."""

    def breached(self, delta: float, pct: float) -> bool:
        return self.crossed(pct if self.relative else delta)

    def matches(self, key: str) -> bool:
        if any(c in self.key for c in "*?["):
            return fnmatch.fnmatchcase(key, self.key)
        return key == self.key


@dataclass(frozen=True)
class GateFailure:
    """A run that failed a gate, with a one-line reason that names the metric and run."""

    gate: Gate
    key: str | None
    run: str | None
    message: str

    def __str__(self) -> str:
        return self.message


def parse_gates(text: str) -> list[Gate]:
    """Thresholds from ``--fail-on`` text; raises :class:`GateError` naming the bad part."""
    return [
        Gate(t.key, t.op, t.limit, t.relative, t.text)
        for t in parse_thresholds(text, "val_acc<-0.01 or loss>+5%")
    ]


def _fmt_change(delta: float, pct: float | None, relative: bool) -> str:
    if relative:
        return f"{pct:+.4g}%" if pct is not None else "from 0"
    return f"{delta:+.4g}"


def check_gates(comparison: Comparison, gates: Sequence[Gate]) -> list[GateFailure]:
    """Every (gate, metric, run) whose change against the baseline breaches the threshold.

    Gates see all metrics, whatever the comparison hides for display. Missing or NaN values of
    a gated metric fail, because a CI gate must not pass a run it could not check.
    """
    if comparison.only_changed or comparison.metrics_regex:
        comparison = comparison.rebuild(only_changed=False, metrics_regex=None)
    metric_rows = comparison.metrics
    base = comparison.baseline
    base_label = comparison.baseline_column.label
    failures: list[GateFailure] = []
    for gate in gates:
        rows = [r for r in metric_rows if gate.matches(r.key)]
        if not rows:
            failures.append(
                GateFailure(gate, None, None, f"{gate.text}: no metric {gate.key!r} in these runs")
            )
            continue
        for row in rows:
            base_cell = row.cells[base]
            for i, cell in enumerate(row.cells):
                if i == base:
                    continue
                label = comparison.runs[i].label
                reason = _gate_reason(gate, row.key, cell, base_cell, label, base_label)
                if reason is not None:
                    failures.append(GateFailure(gate, row.key, comparison.runs[i].id, reason))
    return failures


def _gate_reason(
    gate: Gate, key: str, cell: Cell, base_cell: Cell, label: str, base_label: str
) -> str | None:
    where = f"{key} in {label}"
    if cell.number is None:
        return f"{where}: missing (gate {gate.text})"
    if base_cell.number is None:
        return f"{where}: missing in the baseline {base_label} (gate {gate.text})"
    if math.isnan(cell.number) or math.isnan(base_cell.number):
        return f"{where}: NaN (gate {gate.text})"
    delta = cell.number - base_cell.number
    if math.isnan(delta):  # inf - inf
        values = f"{fmt_value(base_cell.number)} to {fmt_value(cell.number)}"
        return f"{where}: change is undefined ({values}, gate {gate.text})"
    pct = cell.pct
    if pct is None or math.isnan(pct):
        # Baseline 0 (or infinite): any change is an unbounded relative change.
        pct = 0.0 if delta == 0 else math.copysign(math.inf, delta)
    if not gate.breached(delta, pct):
        return None
    return (
        f"{where}: {fmt_value(base_cell.number)} -> {fmt_value(cell.number)} "
        f"({_fmt_change(delta, cell.pct, gate.relative)} vs baseline {base_label}) "
        f"breaks {gate.text}"
    )


__all__ = [
    "GATE_HELP",
    "Cell",
    "CompareData",
    "Comparison",
    "Gate",
    "GateError",
    "GateFailure",
    "Row",
    "RunColumn",
    "Verdict",
    "build_comparison",
    "change",
    "check_gates",
    "compare_runs",
    "load_compare_data",
    "parse_gates",
    "previous_run",
    "run_labels",
]

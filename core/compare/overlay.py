"""One metric of several runs on one chart: aligned histories, downsampled and smoothed.

The x axis is the step, the wall-clock time, or the time since each run started (so a run
started yesterday overlays one started today). Downsampling happens in SQL
(:meth:`Store.overlay_points`): the shared x range is split into ``buckets`` equal widths and each
run keeps at most one point per bucket, so 100 runs of a million steps cost what 100 × 200
points cost. Smoothing is TensorBoard's debiased exponential moving average, applied to the
points that are drawn (as TensorBoard applies it to its sampled points); non-finite values are
shown as they are and do not disturb the average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mltop.core.compare.diff import run_labels
from mltop.core.store import Store

XAxis = Literal["step", "time", "relative"]
X_AXES: tuple[XAxis, ...] = ("step", "time", "relative")
MAX_SMOOTHING = 0.99


@dataclass(frozen=True)
class Series:
    """One run's line: ``x`` and smoothed ``y`` (``raw`` before smoothing), one entry a point.

    ``y_min``/``y_max`` bound each bucket (for a band behind the line), ``steps`` gives the last
    step in each. ``points`` counts the run's points of the metric, ``placed`` those on the axis
    (with a timestamp, inside the range); a run without the metric has an empty series, so the
    legend can still name it.
    """

    run_id: str
    label: str
    key: str
    axis: XAxis
    x: tuple[float, ...]
    y: tuple[float, ...]
    raw: tuple[float, ...]
    y_min: tuple[float | None, ...]
    y_max: tuple[float | None, ...]
    steps: tuple[int, ...]
    points: int
    placed: int
    nonfinite: int

    @property
    def empty(self) -> bool:
        return not self.x

    @property
    def downsampled(self) -> bool:
        return self.placed > len(self.x)

    @property
    def note(self) -> str | None:
        """Why the line looks odd, for the legend ("no data", "single point", ...)."""
        if self.points == 0:
            return "no data"
        if self.placed == 0:
            return "no timestamps" if self.axis != "step" else "nothing in range"
        if self.placed == 1:
            return "single point"
        if self.placed < self.points:
            return f"{self.points - self.placed} points off the axis"
        return None


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's debiased EMA: early points are not pulled towards zero.

    ``last = last * w + (1 - w) * v`` divided by ``1 - w ** n`` (n = finite points so far).
    Non-finite values pass through unchanged and are left out of the average; a constant series
    stays exactly constant.
    """
    if not 0 <= weight <= MAX_SMOOTHING:
        raise ValueError(f"smoothing must be between 0 and {MAX_SMOOTHING}, not {weight}")
    if weight == 0 or not values:
        return list(values)
    finite = [v for v in values if math.isfinite(v)]
    if finite and all(v == finite[0] for v in finite):
        return list(values)
    out: list[float] = []
    last = 0.0
    n = 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return out


def overlay(
    store: Store,
    run_ids: Sequence[str],
    key: str,
    x: XAxis = "step",
    smoothing: float = 0.6,
    buckets: int = 200,
    x_range: tuple[float | None, float | None] = (None, None),
) -> list[Series]:
    """One series per run (in ``run_ids`` order, duplicates dropped) for metric ``key``.

    ``x``: "step", "time" (epoch seconds) or "relative" (seconds since the run's start).
    ``x_range`` keeps only points inside it (a zoom); ``buckets`` caps the points per run.
    Raises ValueError for an unknown axis, a smoothing weight outside 0..0.99, or unknown ids.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
    if not 0 <= smoothing <= MAX_SMOOTHING:
        raise ValueError(f"smoothing must be between 0 and {MAX_SMOOTHING}, not {smoothing}")
    ids = list(dict.fromkeys(run_ids))
    found = store.runs_by_id(ids)
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ValueError(f"unknown run ids: {', '.join(unknown)}")
    runs = [found[i] for i in ids]
    labels = run_labels(runs)
    table = store.overlay_points(ids, key, x=x, buckets=buckets, x_range=x_range)
    # Rows come ordered by run position, then x: slice each run's stretch out of the columns.
    ords = table.column("ord").to_numpy()
    spans: dict[int, tuple[int, int]] = {}
    if len(ords):
        starts = [0, *(np.flatnonzero(ords[1:] != ords[:-1]) + 1).tolist()]
        ends = [*starts[1:], len(ords)]
        spans = {int(ords[a]): (a, b) for a, b in zip(starts, ends, strict=True)}
    cols = {
        name: table.column(name).to_pylist()
        for name in ("x", "y", "y_min", "y_max", "step", "nonfinite")
    }
    total = table.column("total")
    placed = table.column("placed")

    series = []
    for pos, run in enumerate(runs):
        span = spans.get(pos)
        if span is None:  # the run has no point of this metric
            series.append(Series(run.id, labels[pos], key, x, (), (), (), (), (), (), 0, 0, 0))
            continue
        a, b = span
        if cols["x"][a] is None:  # points, but none on this axis: a single row without x
            b = a
        raw = [math.nan if v is None else v for v in cols["y"][a:b]]
        series.append(
            Series(
                run_id=run.id,
                label=labels[pos],
                key=key,
                axis=x,
                x=tuple(cols["x"][a:b]),
                y=tuple(smooth(raw, smoothing)),
                raw=tuple(raw),
                y_min=tuple(cols["y_min"][a:b]),
                y_max=tuple(cols["y_max"][a:b]),
                steps=tuple(cols["step"][a:b]),
                points=int(total[a].as_py()),
                placed=int(placed[a].as_py()),
                nonfinite=sum(cols["nonfinite"][a:b]),
            )
        )
    return series


__all__ = ["MAX_SMOOTHING", "X_AXES", "Series", "XAxis", "overlay", "smooth"]

"""When a run started, for formats that record no start of their own but time every point.

TensorBoard event files and dvclive's TSV histories stamp each point with the wall clock of the
machine that wrote it, and nothing else says when the run began. The earliest stamp is the
natural start, but one stray stamp moves it by years: a board whose clock was not set yet when
the writer started (1970), an old event file left in a resumed run's folder, a bogus point. So a
stamp is not trusted as the start when

* it is before 2000-01-01: no training run is that old, it is a clock that was not set; or
* it lies before the run's first tenth of stamps (their 10th percentile) by more than a day
  *and* by more than ten times the run's spread (the median distance of its stamps to their
  median: robust, a handful of strays cannot widen it). At most a tenth of the stamps can be
  set aside so, and a run resumed after a long pause keeps a first session holding more than a
  tenth of its points: the percentile then sits in that session.

The start is the earliest stamp left. What was set aside is said in the run's
``mltop.start_note`` tag (shown with the run's tags), never silently. When every stamp is
before 2000 there is no start to trust: the start stays unknown (``—``) and the note says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.entities import Run
from mltop.core.store import Store

#: The tag that says which stamps were not trusted as the run's start, and why.
START_NOTE_TAG = "mltop.start_note"
CLOCK_SET = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
FAR_SPREADS = 10.0
FIRST_SHARE = 0.1
FAR_MIN_SECONDS = 86_400.0


@dataclass(frozen=True)
class RunStart:
    """The start to record and, when stamps were set aside, the note that says so."""

    start: float | None
    note: str | None = None

    def tags(self, run_id: str) -> list[tuple[str, str, object]]:
        """The run's tag rows that carry the note (none without one)."""
        return [] if self.note is None else [(run_id, START_NOTE_TAG, self.note)]


def kept_start(store: Store, run: Run | None) -> RunStart | None:
    """The start (and its note) the store holds for ``run`` from its last whole read."""
    if run is None:
        return None
    return RunStart(run.start_time, store.tags(run.id).get(START_NOTE_TAG))


def _utc(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return repr(epoch)


def trusted_start(stamps: np.ndarray | Sequence[float]) -> RunStart:
    """The run's start from its points' wall times by the rule of the module docstring.

    Vectorised: a median and a comparison over the stamps, whatever their number.
    """
    times = np.asarray(stamps, dtype=np.float64)
    times = times[np.isfinite(times)]
    if not len(times):
        return RunStart(None)
    clock_set = times[times >= CLOCK_SET]
    if not len(clock_set):
        return RunStart(
            None,
            f"start unknown: all {len(times)} timestamps are before 2000 "
            f"(earliest {_utc(float(times.min()))}), the writer's clock was not set",
        )
    middle = float(np.median(clock_set))
    spread = float(np.median(np.abs(clock_set - middle)))
    first_tenth = float(np.quantile(clock_set, FIRST_SHARE))
    floor = first_tenth - max(FAR_SPREADS * spread, FAR_MIN_SECONDS)
    start = float(clock_set[clock_set >= floor].min())
    early = times[times < start]
    if not len(early):
        return RunStart(start)
    unset = int((early < CLOCK_SET).sum())
    why = []
    if unset:
        why.append(f"{unset} before 2000 (a clock not set)")
    if len(early) > unset:
        why.append(f"{len(early) - unset} far before the rest of the run")
    return RunStart(
        start,
        f"{len(early)} earlier timestamp(s) not taken as the start: {'; '.join(why)}; "
        f"earliest {_utc(float(early.min()))}",
    )


def start_of_history(
    stamps: pa.ChunkedArray | pa.Array | None, kept: RunStart | None, mtimes: Sequence[float]
) -> RunStart:
    """The start of a run whose history is read whole (``stamps``: its points' wall times) or
    only in part (``stamps`` None: the ``kept`` start of the last whole read still holds).

    A run with no stamps at all keeps what it had, or else starts when its oldest file was last
    written: the best there is for a history with no times.
    """
    if stamps is not None:
        found = trusted_start(pc.fill_null(stamps, math.nan).to_numpy(zero_copy_only=False))
        if found.start is not None or found.note is not None:
            return found
    if kept is not None and (kept.start is not None or kept.note is not None):
        return kept
    return RunStart(min(mtimes) if mtimes else None)

"""Time windows over the log: the timestamp as UTC microseconds, and hour/day/week buckets.

Windows are whole UTC hours, days or ISO weeks (Monday 00:00 UTC), numbered from the one the
first row falls in; every row with a timestamp belongs to exactly one. Without a choice the
span picks: up to 3 days hourly, up to 120 days daily, weekly beyond. Naive timestamps are
read as UTC; text is parsed by DuckDB (ISO 8601); numbers are epoch seconds, or milliseconds
when they are past the year 5138 as seconds (> 1e11).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mltop.core.monitor.source import MonitorError, is_numeric, quote

WIDTH_US = {"hour": 3_600_000_000, "day": 86_400_000_000, "week": 7 * 86_400_000_000}
_MONDAY_US = 4 * 86_400_000_000  # 1970-01-05, the first Monday after the epoch
MAX_WINDOWS = 5000


@dataclass(frozen=True)
class Windows:
    """``count`` windows of ``unit`` starting at ``origin_us`` (UTC microseconds)."""

    unit: str
    origin_us: int
    count: int

    @property
    def width_us(self) -> int:
        return WIDTH_US[self.unit]

    def index_sql(self, ts_us: str) -> str:
        return f"(({ts_us} - {self.origin_us}) // {self.width_us})"

    def bounds(self, index: int) -> tuple[str, str]:
        start = self.origin_us + index * self.width_us
        return iso(start), iso(start + self.width_us)


def timestamp_sql(column: str, duck_type: str, where: str) -> str:
    """SQL for ``column`` as UTC epoch microseconds (NULL where it is not a time)."""
    col = quote(column)
    if duck_type.startswith("TIMESTAMP") or duck_type == "DATE":
        return f"epoch_us({col}::TIMESTAMPTZ)"
    if duck_type == "VARCHAR":
        return f"epoch_us(try_cast({col} AS TIMESTAMPTZ))"
    if is_numeric(duck_type):
        return (
            f"CASE WHEN abs({col}) > 1e11 THEN ({col} * 1000)::BIGINT "
            f"ELSE ({col} * 1000000)::BIGINT END"
        )
    raise MonitorError(f"{where}: column {column!r} ({duck_type}) does not hold times")


def choose(unit: str | None, lo_us: int, hi_us: int, where: str) -> Windows:
    """The windows covering ``lo_us..hi_us``: ``unit``, or the one the span suggests."""
    span = hi_us - lo_us
    if unit is None:
        unit = (
            "hour"
            if span <= 3 * WIDTH_US["day"]
            else "day"
            if span <= 120 * WIDTH_US["day"]
            else "week"
        )
    width = WIDTH_US[unit]
    anchor = _MONDAY_US if unit == "week" else 0
    origin = (lo_us - anchor) // width * width + anchor
    count = (hi_us - origin) // width + 1
    if count > MAX_WINDOWS:
        raise MonitorError(
            f"{where}: {count:,} {unit} windows from {iso(lo_us)} to {iso(hi_us)}; "
            "choose a longer window"
        )
    return Windows(unit, origin, int(count))


def parse_range(text: str, where: str) -> tuple[int, int]:
    """``A..B`` (dates or ISO times, UTC unless they say otherwise) as microseconds, B excluded."""
    parts = text.split("..")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise MonitorError(f"{where}: a reference window is START..END, not {text!r}")
    lo, hi = (_parse_time(p.strip(), where) for p in parts)
    if hi <= lo:
        raise MonitorError(f"{where}: the reference window {text!r} ends before it starts")
    return lo, hi


def _parse_time(text: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MonitorError(f"{where}: {text!r} is not a date or ISO time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso(us: int) -> str:
    """UTC microseconds as ISO 8601 with ``Z`` (seconds unless the time has a fraction)."""
    seconds, micros = divmod(us, 1_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"

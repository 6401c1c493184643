"""How numbers, times and durations read in a terminal, shared by the CLI and the TUI."""

from __future__ import annotations

import math
import time
from datetime import datetime


def fmt_value(value: float | None, digits: int = 4) -> str:
    """A metric value in at most ``digits`` significant digits; NaN and infinities spelled out."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def fmt_time(epoch: float | None, now: float | None = None) -> str:
    """Today's times as HH:MM, this year's as 'Nov 24 13:05', older ones with the year."""
    if epoch is None or math.isnan(epoch):
        return "—"
    now = time.time() if now is None else now
    moment = datetime.fromtimestamp(epoch)
    today = datetime.fromtimestamp(now)
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    if moment.year == today.year:
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%Y-%m-%d")


def fmt_iso(epoch: float | None) -> str | None:
    if epoch is None or math.isnan(epoch):
        return None
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")

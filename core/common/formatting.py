"""How numbers, times and durations read in a terminal, shared by the CLI and the TUI.

One rule holds for every cell, panel, chart label and CLI column that shows a number: the text
is the value, or the value rounded to fit (fewer significant digits, or ``1.2e-5``), or it ends
in ``…``. A number is never cut silently, because a cut ``0.96`` reads ``0.9`` and a cut ``15``
reads ``1``: both are believable and wrong. :func:`fit_value` is that rule.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich.cells import cell_len, get_character_cell_size

ELLIPSIS = "…"


def non_finite(value: float) -> str | None:
    """How NaN and the infinities are spelled wherever mltop shows a number (``nan``, ``inf``,
    ``-inf``: what MLflow's and TensorBoard's files hold, not Python's ``float`` repr); None
    for a finite value."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def fmt_value(value: float | None, digits: int = 4) -> str:
    """A metric value in at most ``digits`` significant digits; NaN and infinities spelled out."""
    if value is None:
        return "—"
    if (spelled := non_finite(value)) is not None:
        return spelled
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def fit_value(value: float | None, width: int, digits: int = 4) -> str:
    """``value`` as :func:`fmt_value` writes it, in at most ``width`` terminal cells.

    Too wide, it is rounded to fewer significant digits (plain or in e-notation, whichever
    keeps more of it); when even one digit does not fit it is cut and ends in ``…``.
    """
    width = max(1, width)
    text = fmt_value(value, digits)
    if len(text) <= width:
        return text
    if value is None or not math.isfinite(value):
        return fit_text(text, width)
    for shown in range(digits - 1, 0, -1):
        for candidate in (_plain(value, shown), _scientific(value, shown)):
            if candidate is not None and len(candidate) <= width:
                return candidate
    return fit_text(text, width)


def _plain(value: float, digits: int) -> str | None:
    """``value`` in ``digits`` significant digits without an exponent, or None if it needs one.

    Where ``g`` would switch to an exponent for a large value, the value rounded to a whole
    number is still plain (and exact to its last digit); tiny values have no plain short form.
    """
    text = f"{value:.{digits}g}"
    if "e" not in text:
        return text
    return f"{value:.0f}" if abs(value) >= 1 else None


def _scientific(value: float, digits: int) -> str:
    """``value`` in e-notation with ``digits`` significant digits and no exponent padding."""
    mantissa, _, exponent = f"{value:.{digits - 1}e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


def fit_text(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending in ``…`` when it had to be shortened."""
    width = max(1, width)
    if len(text) <= width:
        return text
    return text[: width - 1] + ELLIPSIS


def fit_cells(text: str, width: int, keep: Literal["start", "end"] = "start") -> str:
    """``text`` in at most ``width`` terminal cells (a wide character takes two), with ``…``
    where it was cut: at the end, or with ``keep="end"`` at the start, as a path is cut so its
    last folders stay readable (``…/runs/digits/sgd``)."""
    if cell_len(text) <= width:
        return text
    chars = text if keep == "start" else reversed(text)
    out: list[str] = []
    used = 0
    for char in chars:
        size = get_character_cell_size(char)
        if used + size > width - 1:
            break
        out.append(char)
        used += size
    if keep == "start":
        return "".join(out) + ELLIPSIS
    return ELLIPSIS + "".join(reversed(out))


def fmt_duration(seconds: float | None) -> str:
    """A duration in its two largest units; one between invalid times reads ``—``."""
    if seconds is None or not math.isfinite(seconds) or abs(seconds) > MAX_DURATION:
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


#: Durations longer than this (about 317 years) come from a time that is not one (a
#: millisecond stamp read as seconds, a garbage wall time): they are shown as invalid.
MAX_DURATION = 1e10


#: The epoch seconds a date can hold (years 1 to 9999).
MIN_TIME = -62_135_596_800.0
MAX_TIME = 253_402_300_799.0


def valid_time(epoch: float | None) -> bool:
    """Whether ``epoch`` is a time a date can show (not missing, finite, years 1 to 9999)."""
    return epoch is not None and math.isfinite(epoch) and MIN_TIME <= epoch <= MAX_TIME


def local_moment(epoch: float | None) -> datetime | None:
    """``epoch`` as a local datetime, or None when it is missing or no date can hold it.

    Sources do write such times (milliseconds as seconds, ``start_time=1e15``, a wild wall time
    in an event file); the store keeps them as they are and every formatter asks here first, so
    none of them can fail with ``year 33658 is out of range``.
    """
    if not valid_time(epoch):
        return None
    assert epoch is not None
    try:
        return datetime.fromtimestamp(epoch)
    except (ValueError, OverflowError, OSError):
        return None


def fmt_time(epoch: float | None, now: float | None = None) -> str:
    """Today's times as HH:MM, this year's as 'Nov 24 13:05', older ones with the year."""
    moment = local_moment(epoch)
    if moment is None:
        return "—"
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now)
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    if moment.year == today.year:
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%Y-%m-%d")


def fmt_clock(epoch: float | None) -> str:
    """A full local date and time; an invalid one says so and shows the raw number."""
    if epoch is None:
        return "—"
    moment = local_moment(epoch)
    if moment is None:
        return f"— (not a valid time: {epoch!r})"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def fmt_iso(epoch: float | None) -> str | None:
    moment = local_moment(epoch)
    if moment is None:
        return None
    return moment.astimezone().isoformat(timespec="seconds")


def short_path(path: Path) -> str:
    """``~/proj`` rather than ``/home/ana/proj``: a header's folder, in the width it has."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)

"""How one log line is shown: progress-bar redraws collapsed, timestamps found, trouble marked.

The Logs screen and ``mltop tail`` both show lines through :func:`render`, so a line looks the
same in the TUI and in a shell. Everything here works on one line (plus, for tracebacks, the line
before it), because a view reads only the lines it shows.
"""

from __future__ import annotations

import re
from enum import Enum

from rich.style import Style
from rich.text import Text

from mltop.core.common.sanitize import decode, inert_plain, inert_text

__all__ = [
    "Level",
    "classify",
    "clean_line",
    "render",
    "timestamp_length",
]

#: Longest line prefix looked at for a timestamp or a level word (a level sits near the start).
_PREFIX = 160


class Level(Enum):
    """What a line says about the run's health, most severe last."""

    NONE = 0
    WARNING = 1
    TRACEBACK = 2
    ERROR = 3


STYLES = {
    Level.WARNING: Style(color="yellow"),
    Level.TRACEBACK: Style(color="red"),
    Level.ERROR: Style(color="red"),
}
KEYWORD_STYLE = Style(bold=True)
TIMESTAMP_STYLE = Style(dim=True)
MATCH_STYLE = Style(color="black", bgcolor="yellow")


def clean_line(raw: bytes) -> str:
    """A raw line (without its newline) as the text a terminal would have left on screen.

    A carriage return redraws the line (tqdm and friends write hundreds of partial states that
    way), so only the text after the last one counts. NUL bytes at the start are dropped: they are
    the hole a ``copytruncate`` rotation leaves in front of a writer that does not append.
    """
    if raw[:1] == b"\0":
        raw = raw.lstrip(b"\0")
    text = decode(raw)
    if "\r" in text:
        text = text.rstrip("\r")
        cut = text.rfind("\r")
        if cut >= 0:
            text = text[cut + 1 :]
    return text


# Leading timestamps in the shapes training logs use: ISO 8601 and Python logging's
# "2024-05-01 12:00:00,123", slashes, syslog "May  1 12:00:00", bare times, each maybe in brackets
# and followed by a separator that goes with it when hidden.
_TIMESTAMP = re.compile(
    r"""
    \s*[\[(]?
    (?:
        \d{4}-\d{2}-\d{2}[T\x20]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?
            (?:\x20?(?:Z|UTC|[+-]\d{2}:?\d{2}))?
      | \d{4}/\d{2}/\d{2}\x20\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?
      | \d{1,2}/\d{1,2}/\d{2,4}\x20\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?
      | (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\x20[\x20\d]\d\x20\d{2}:\d{2}:\d{2}
      | \d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?
    )
    [\])]?
    (?:\s*[-|:]\s+|\s+|$)
    """,
    re.VERBOSE,
)


def timestamp_length(plain: str) -> int:
    """Length of the timestamp (with its separator) that starts ``plain``; 0 when there is none."""
    match = _TIMESTAMP.match(plain, 0, _PREFIX)
    if match is None or match.end() == 0:
        return 0
    return match.end()


_ERROR = re.compile(
    r"(?<![\w.-])(?:ERROR|ERR|CRITICAL|CRIT|FATAL|PANIC|EMERG)(?![\w-])"
    r"|(?<![\w.-])(?:[Ee]rror|[Ff]atal|FAILED|[Ff]ailed)(?=:)"
)
_WARNING = re.compile(r"(?<![\w.-])(?:WARNING|WARN|[Ww]arning(?=:))(?![\w-])|\b[A-Z]\w*Warning\b")
# glog/absl (TensorFlow, JAX): "E1126 20:00:29.123456 ..." and "W1126 ...".
_GLOG = re.compile(r"([EFW])\d{4} \d{2}:\d{2}:\d{2}")
_TRACE_START = re.compile(
    r"Traceback \(most recent call last\):"
    r"|During handling of the above exception"
    r"|The above exception was the direct cause"
)
_TRACE_FRAME = re.compile(r"\s+File \"[^\"]*\", line \d+")
# Python 3.11+ points at the failing expression under its source line: "    ~~~~^^^^^".
_TRACE_CARETS = re.compile(r"\s+[~^]+\s*")
# The last line of a traceback: "ValueError: bad", "torch.OutOfMemoryError", "KeyboardInterrupt".
_EXCEPTION = re.compile(r"(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Exit)(?::|$)")


def classify(plain: str, previous: str | None = None) -> Level:
    """The level of one line, from its words; ``previous`` lets a traceback's code lines count."""
    head = plain[:_PREFIX]
    if _TRACE_START.match(head) or _TRACE_FRAME.match(head) or _TRACE_CARETS.fullmatch(plain):
        return Level.TRACEBACK
    if _EXCEPTION.match(head) or _ERROR.search(head):
        return Level.ERROR
    glog = _GLOG.match(head)
    if glog:
        return Level.WARNING if glog.group(1) == "W" else Level.ERROR
    if _WARNING.search(head):
        return Level.WARNING
    if previous is not None and plain.startswith("    ") and _TRACE_FRAME.match(previous[:_PREFIX]):
        return Level.TRACEBACK  # the source line Python prints under a frame
    return Level.NONE


def render(
    line: str,
    *,
    previous: str | None = None,
    hide_timestamp: bool = False,
    search: re.Pattern[str] | None = None,
    tab_size: int = 8,
) -> Text:
    """One cleaned line (see :func:`clean_line`) as inert, highlighted Rich ``Text``.

    SGR colours from the log are kept; the level colours the rest of the line; a leading
    timestamp is dimmed, or cut when ``hide_timestamp``; ``search`` matches are marked last so
    they stay visible on any colour.
    """
    text = inert_text(line)
    plain = text.plain
    level = classify(plain, None if previous is None else inert_plain(previous))
    stamp = timestamp_length(plain)
    if stamp:
        if hide_timestamp:
            text = text[stamp:]
        else:
            text.stylize(TIMESTAMP_STYLE, 0, stamp)
    if level is not Level.NONE:
        text.style = STYLES[level]
        keyword = (_ERROR if level is Level.ERROR else _WARNING).search(text.plain, 0, _PREFIX)
        if keyword:
            text.stylize(KEYWORD_STYLE, keyword.start(), keyword.end())
    if "\t" in text.plain:
        text.expand_tabs(tab_size)
    if search is not None:
        text.highlight_regex(search, MATCH_STYLE)
    return text

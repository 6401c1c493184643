"""Make text from outside inert before a terminal shows it.

Run names, params, tags, metric keys and log lines come from files anyone could have written. A
terminal acts on control characters: ``ESC [ 31 m`` recolours the screen, ``ESC ] 52`` writes the
clipboard, a bare carriage return draws over the line. Shown through :func:`inert`, every such
character becomes a visible stand-in and the text cannot drive the terminal.

Rich markup is a separate concern: the UI shows these strings as ``rich.text.Text``, which never
parses markup, so ``[bold red]x[/]`` already displays literally.

Log lines get one exception: their SGR colour sequences (``ESC [ 31 m``) are worth keeping, so
:func:`inert_text` turns those into Rich styles, parsed here rather than by ``Text.from_ansi``
(which also honours OSC 8 hyperlinks and concealed text). Every other escape sequence is either
dropped (cursor and erase commands: a log view shows lines, it does not replay a terminal) or
shown literally (string commands such as OSC 52 clipboard writes and window titles, so a reader
sees that the log tried one).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

from rich.color import Color
from rich.style import Style
from rich.text import Text

__all__ = ["decode", "inert", "inert_json", "inert_plain", "inert_text", "is_inert"]


def _build_table(keep_newlines: bool) -> dict[int, str]:
    table: dict[int, str] = {}
    # C0 controls become their Unicode "control pictures" (U+2400 + code): ESC reads as ␛.
    for code in range(0x20):
        table[code] = chr(0x2400 + code)
    del table[0x09]  # a tab is layout, not a command
    if keep_newlines:
        del table[0x0A]
    table[0x7F] = "\u2421"  # ␡
    # C1 controls (CSI, OSC, ... as single bytes) have no pictures: spell them as escapes.
    for code in range(0x80, 0xA0):
        table[code] = f"\\x{code:02x}"
    # Bidirectional overrides reorder what a reader sees (the "trojan source" trick).
    for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[code] = f"\\u{code:04x}"
    # Line and paragraph separators break a one-line cell as a newline would.
    for code in (0x2028, 0x2029):
        table[code] = f"\\u{code:04x}"
    # Lone surrogates cannot be encoded: printed raw they stop the output with an error. Python
    # reads a file name's undecodable byte 0xNN as U+DCNN, so those show as the byte, \xNN.
    for code in range(0xD800, 0xE000):
        table[code] = f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code < 0xDD00 else f"\\u{code:04x}"
    return table


_ONE_LINE = _build_table(keep_newlines=False)
_MULTI_LINE = _build_table(keep_newlines=True)


def inert(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character replaced by a visible stand-in.

    Tabs survive; newlines survive only with ``keep_newlines`` (log views), since a cell or a
    header has one line and a newline in a run name is more likely an attack than a layout.
    ``None`` becomes an empty string so callers can pass optional fields straight through.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():  # the common case costs one C-level scan
        return text
    return text.translate(_MULTI_LINE if keep_newlines else _ONE_LINE)


def is_inert(text: str, *, keep_newlines: bool = False) -> bool:
    """Whether ``text`` is already safe to show (nothing :func:`inert` would replace)."""
    return inert(text, keep_newlines=keep_newlines) == text


# What ``json.dumps(ensure_ascii=False)`` leaves raw that ``inert`` would replace: DEL, C1 controls,
# bidi overrides, line separators and lone surrogates (it escapes C0 controls itself).
_JSON_RAW = re.compile("[" + "".join(chr(code) for code in _ONE_LINE if code >= 0x7F) + "]")


def inert_json(value: Any, **options: Any) -> str:
    """``json.dumps(value)`` that a terminal can show safely and a parser reads back exactly.

    Text stays readable (``ensure_ascii=False``: a run named "学习" prints as such), but every
    character :func:`inert` would replace is written as a ``\\uXXXX`` escape. Outside strings
    JSON is plain ASCII, so the escapes land only inside strings and decode to the same value.
    """
    text = json.dumps(value, ensure_ascii=False, **options)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SCALAR_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def inert_json_indented(value: Any, pad: str = "") -> str:
    """``inert_json(value, indent=2, allow_nan=False)``, the same text, several times faster.

    json.dumps with an indent runs its pure-Python encoder; here the nesting is laid out by
    hand and each scalar goes through the C encoder. ``pad`` indents every line but the first
    (for an item inside a list written a piece at a time). Keys must be strings.
    """
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", _indented(value, pad))


#: What the encoder above does with a string, without its dispatch (most scalars are strings).
_STRING_JSON = json.encoder.encode_basestring


def _indented(value: Any, pad: str) -> str:
    if type(value) is str:
        return _STRING_JSON(value)
    if value is None:
        return "null"
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = pad + "  "
        items = [f"{inner}{_SCALAR_JSON(k)}: {_indented(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = pad + "  "
        return "[\n" + ",\n".join(inner + _indented(v, inner) for v in value) + "\n" + pad + "]"
    return _SCALAR_JSON(value)


def decode(data: bytes) -> str:
    """Bytes from a file as text: invalid UTF-8 becomes U+FFFD instead of an error."""
    return data.decode("utf-8", errors="replace")


# -- escape sequences in log lines ----------------------------------------------------------------

# One alternative per ECMA-48 sequence family; a string command with no terminator runs to the end
# of the line (the line is all a reader has).
_ESCAPE = re.compile(
    r"""
      \x1b\[ (?P<params>[0-?]*) (?P<inter>[\x20-/]*) (?P<final>[@-~])    # CSI
    | (?P<osc>(?:\x1b\]|\x9d) (?P<osc_body>[^\x07\x1b\x9c]*) (?:\x07|\x1b\\|\x9c)?)  # OSC
    | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f]) [^\x1b\x9c]* (?:\x1b\\|\x9c)?   # DCS SOS PM APC
    | \x9b [0-?]* [\x20-/]* [@-~]?                                            # 8-bit CSI
    | \x1b [\x20-/]* [0-~]?                                                   # any other ESC
    """,
    re.VERBOSE,
)
_SGR_PARAMS = re.compile(r"[0-9;:]*")
_OSC8 = re.compile(r"8;[^;]*;")

# The 16 basic colours by SGR code offset, as Rich numbers them.
_BRIGHT = 8


@lru_cache(maxsize=1024)
def _style(
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    reverse: bool,
    strike: bool,
    fg: Color | None,
    bg: Color | None,
) -> Style:
    return Style(
        bold=bold or None,
        dim=dim or None,
        italic=italic or None,
        underline=underline or None,
        reverse=reverse or None,
        strike=strike or None,
        color=fg,
        bgcolor=bg,
    )


class _SgrState:
    """The attributes SGR sequences switch on and off, as a log line's colours need them.

    Blink, conceal and fonts are ignored on purpose: concealed text would hide log content, and
    blinking text is noise.
    """

    __slots__ = ("bg", "bold", "dim", "fg", "italic", "reverse", "strike", "underline")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.bold = self.dim = self.italic = self.underline = False
        self.reverse = self.strike = False
        self.fg: Color | None = None
        self.bg: Color | None = None

    @property
    def plain(self) -> bool:
        return not (
            self.bold
            or self.dim
            or self.italic
            or self.underline
            or self.reverse
            or self.strike
            or self.fg
            or self.bg
        )

    def style(self) -> Style:
        return _style(
            self.bold,
            self.dim,
            self.italic,
            self.underline,
            self.reverse,
            self.strike,
            self.fg,
            self.bg,
        )

    def apply(self, params: str) -> None:
        groups = [g.split(":") for g in params.split(";")] if params else [["0"]]
        codes: list[list[int]] = []
        for group in groups:
            try:
                codes.append([int(x) if x else 0 for x in group])
            except ValueError:
                return
        i = 0
        while i < len(codes):
            group = codes[i]
            code = group[0]
            i += 1
            if code in (38, 48):
                if len(group) > 1:  # colon form: 38:5:n or 38:2:[space]:r:g:b
                    color = _extended(group[1], group[2:][-3:] if group[1] == 2 else group[2:])
                else:  # semicolon form: the colour's numbers are the next parameters
                    kind = codes[i][0] if i < len(codes) else None
                    take = 3 if kind == 2 else 1
                    values = [c[0] for c in codes[i + 1 : i + 1 + take]]
                    i += 1 + take
                    color = _extended(kind, values)
                if code == 38:
                    self.fg = color
                else:
                    self.bg = color
            elif code == 0:
                self.reset()
            elif code == 1:
                self.bold = True
            elif code == 2:
                self.dim = True
            elif code == 3:
                self.italic = True
            elif code in (4, 21):
                self.underline = True
            elif code == 7:
                self.reverse = True
            elif code == 9:
                self.strike = True
            elif code == 22:
                self.bold = self.dim = False
            elif code == 23:
                self.italic = False
            elif code == 24:
                self.underline = False
            elif code == 27:
                self.reverse = False
            elif code == 29:
                self.strike = False
            elif 30 <= code <= 37:
                self.fg = Color.from_ansi(code - 30)
            elif code == 39:
                self.fg = None
            elif 40 <= code <= 47:
                self.bg = Color.from_ansi(code - 40)
            elif code == 49:
                self.bg = None
            elif 90 <= code <= 97:
                self.fg = Color.from_ansi(code - 90 + _BRIGHT)
            elif 100 <= code <= 107:
                self.bg = Color.from_ansi(code - 100 + _BRIGHT)


def _extended(kind: int | None, values: list[int]) -> Color | None:
    if kind == 5 and len(values) == 1 and 0 <= values[0] <= 255:
        return Color.from_ansi(values[0])
    if kind == 2 and len(values) == 3 and all(0 <= v <= 255 for v in values):
        return Color.from_rgb(*values)
    return None


def _literal(sequence: str) -> str:
    return sequence.translate(_ONE_LINE)


def _pieces(text: str, state: _SgrState | None) -> list[tuple[str, Style | None]]:
    """``text`` cut into inert pieces, each with the SGR style in force (given a ``state``)."""
    out: list[tuple[str, Style | None]] = []
    pos = 0

    def emit(piece: str) -> None:
        if piece:
            style = None if state is None or state.plain else state.style()
            out.append((piece, style))

    for match in _ESCAPE.finditer(text):
        emit(inert(text[pos : match.start()]))
        pos = match.end()
        final = match.group("final")
        if final is not None:
            # CSI: colours become styles; cursor, erase and mode commands are dropped.
            params = match.group("params")
            if (
                final == "m"
                and not match.group("inter")
                and _SGR_PARAMS.fullmatch(params)
                and state is not None
            ):
                state.apply(params)
            continue
        if match.group("osc") is not None and _OSC8.match(match.group("osc_body")):
            continue  # a hyperlink's envelope: keep the visible text, never the link
        emit(_literal(match.group()))
    emit(inert(text[pos:]))
    return out


def inert_text(text: str, style: Style | str = "") -> Text:
    """Log text as a Rich ``Text``: SGR colours kept as styles, nothing else able to act.

    Markup is never parsed; control characters and non-colour escape sequences are dropped or
    shown as visible stand-ins (``␛]0;title␇``), so rendering the result sends the terminal only
    the escapes Rich itself writes for styles.
    """
    if text.isprintable():
        return Text(text, style=style, end="")
    result = Text(style=style, end="")
    for piece, piece_style in _pieces(text, _SgrState()):
        result.append(piece, piece_style)
    return result


def inert_plain(text: str) -> str:
    """The characters :func:`inert_text` shows, without styles: for matching and plain output."""
    if text.isprintable():
        return text
    return "".join(piece for piece, _ in _pieces(text, None))

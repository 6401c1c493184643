"""Rich ``Text`` as the segments a Line-API widget draws."""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text


def text_segments(text: Text, console: Console) -> list[Segment]:
    """The segments of one line of ``text``, styled as a console would print it.

    ``Text.render`` leaves the text's own style out of its segments when the text has no spans
    (a console printing it puts that style under every segment itself), so a line coloured only
    as a whole, such as a traceback line, would come out plain. Empty and newline segments are
    dropped: a widget line has no line breaks.
    """
    segments = [s for s in text.render(console, end="") if s.text and s.text != "\n"]
    own = console.get_style(text.style, default=Style.null())
    return list(Segment.apply_style(segments, own))

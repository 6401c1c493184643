"""What the run detail's line chart and the compare overlay share as widgets.

Both draw a braille chart whose resolution follows the widget's width: each asks its screen for
``buckets`` points per series when the width changes (a :class:`ChartResized`), and draws its
lines once per size and settings, kept until something changes, so scrolling past it costs no
redraw. The drawing itself stays each chart's own (:func:`~mltop.tui.widgets.chart.draw_chart`,
:func:`~mltop.tui.widgets.overlay_chart.draw_overlay`).
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget


class ChartResized(Message):
    """The chart's width changed: it wants ``buckets`` points per series."""

    def __init__(self, chart: BucketChart, buckets: int) -> None:
        super().__init__()
        self.chart = chart
        self.buckets = buckets

    @property
    def control(self) -> BucketChart:
        return self.chart


class BucketChart(Widget):
    """A chart that asks for as many buckets as its width holds and caches its drawn lines.

    A subclass names its ``Resized`` message (so handlers read ``on_line_chart_resized``),
    says what its drawing depends on (:meth:`cache_key`) and draws (:meth:`draw`).
    """

    Resized: ClassVar[type[ChartResized]] = ChartResized
    #: The width assumed before the first layout, in cells.
    FIRST_WIDTH: ClassVar[int] = 60

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.message_text: str | None = "loading…"
        self._cache: tuple[object, list[Strip]] | None = None
        self._asked = 0

    def wanted_buckets(self, width: int | None = None) -> int:
        """Dot columns of the plot area at the current (or a given) width."""
        inner = (width if width is not None else self.content_size.width) or self.FIRST_WIDTH
        return max(2, (inner - 7) * 2)

    def redraw(self) -> None:
        """Forget the drawn lines: the data or a setting changed."""
        self._cache = None
        self.refresh()

    def on_mount(self) -> None:
        # Textual sends no Resize to a widget that entered its map of widgets through a lazy
        # rebuild (something asked where a widget is, a focus or a scroll, between the mount and
        # the layout): the run detail, which mounts its charts and focuses the first at once,
        # then had charts that never asked for their data (about one time in thirty). So a
        # chart also asks once it has been laid out, and when it paints (see _strips).
        self.call_after_refresh(self._ask, laid_out=True)

    def on_resize(self) -> None:
        self._cache = None
        self._ask()

    def _ask(self, laid_out: bool = False) -> None:
        """Post a Resized when the width wants another number of buckets than was asked for;
        with ``laid_out``, only once the chart has a width (a chart not shown has none)."""
        if laid_out and not self.content_size.width:
            return
        wanted = self.wanted_buckets()
        if wanted != self._asked:
            self._asked = wanted
            self.post_message(self.Resized(self, wanted))

    def cache_key(self) -> object:
        """What the drawn lines depend on besides the data (the size, the theme...)."""
        raise NotImplementedError

    def draw(self, width: int, height: int) -> list[list[Segment]]:
        raise NotImplementedError

    def _strips(self) -> list[Strip]:
        size = self.content_size
        self._ask(laid_out=True)  # painted at a width no Resize told of (see on_mount)
        key = self.cache_key()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        lines = self.draw(size.width, size.height)
        strips = [Strip(segs).adjust_cell_length(size.width) for segs in lines]
        self._cache = (key, strips)
        return strips

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.content_size.width)

"""Tables that scroll sideways say where a column is cut by the edge of the view.

textual-fastdatatable draws whole columns and crops the line to the view, so a column half
scrolled out of sight shows the part that is left: ``0.114`` at the right edge reads ``0.1``
and ``0.9756@20`` at the left edge reads ``.9756@20``. Both look like real values. This mixin
puts ``…`` where text of a column runs past either edge, so a number is shown whole or visibly
shortened, never silently cut; and keeps a cell cursor's whole column in view.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from mltop.core.formatting import ELLIPSIS


class CutEdges:
    """Mix into a textual-fastdatatable ``DataTable`` subclass (before it in the bases)."""

    def _column_spans(self) -> tuple[int, list[tuple[int, int]]]:
        """The width of the fixed columns, and each scrolling column's (start, end) in the
        scrolling part of the line."""
        columns = self.ordered_columns  # type: ignore[attr-defined]
        fixed = self.fixed_columns  # type: ignore[attr-defined]
        fixed_width = sum(c.render_width for c in columns[:fixed])
        spans = []
        x = 0
        for column in columns[fixed:]:
            spans.append((x, x + column.render_width))
            x += column.render_width
        return fixed_width, spans

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        render = super()._render_line  # type: ignore[misc]
        strip: Strip = render(y, x1, x2, base_style)
        width: int = self.size.width  # type: ignore[attr-defined]
        fixed_width, spans = self._column_spans()
        visible = width - fixed_width
        if visible < 2 or not spans:
            return strip
        left, right = x1, x1 + visible
        for start, end in spans:
            if start < right < end:
                # The part past the right edge, drawn as if scrolled to it.
                tail = render(y, right, right + width, base_style)
                if tail.crop(fixed_width, fixed_width + end - right).text.strip():
                    strip = _replace_cell(strip, width - 1)
            if start < left < end:
                head = render(y, start, start + width, base_style)
                if head.crop(fixed_width, fixed_width + left - start).text.strip():
                    strip = _replace_cell(strip, fixed_width)
        return strip

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        """Scroll so the cell cursor's column is whole on screen, not just a part of it."""
        super()._scroll_cursor_into_view(animate)  # type: ignore[misc]
        if self.cursor_type != "cell":  # type: ignore[attr-defined]
            return
        column = self.cursor_column - self.fixed_columns  # type: ignore[attr-defined]
        fixed_width, spans = self._column_spans()
        if not 0 <= column < len(spans):
            return
        start, end = spans[column]
        visible = self.scrollable_content_region.width - fixed_width  # type: ignore[attr-defined]
        x = int(self.scroll_target_x)  # type: ignore[attr-defined]
        if start < x or end - start > visible:
            x = start
        elif end > x + visible:
            x = end - visible
        else:
            return
        self.scroll_to(x=x, animate=False, immediate=True)  # type: ignore[attr-defined]


def _replace_cell(strip: Strip, x: int) -> Strip:
    """``strip`` with the cell at ``x`` replaced by an ellipsis in that cell's style."""
    length = strip.cell_length
    if not 0 <= x < length:
        return strip
    at = strip.crop(x, x + 1)
    style = next((s.style for s in at if s.text), None)
    return Strip.join(
        [strip.crop(0, x), Strip([Segment(ELLIPSIS, style)], 1), strip.crop(x + 1, length)]
    )

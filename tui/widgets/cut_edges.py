"""Tables that scroll sideways say where a column is cut by the edge of the view.

textual-fastdatatable draws whole columns and crops the line to the view, so a column half
scrolled out of sight shows the part that is left: ``0.114`` at the right edge reads ``0.1``
and ``0.9756@20`` at the left edge reads ``.9756@20``. Both look like real values. This mixin
puts ``…`` where text of a column runs past either edge, so a number is shown whole or visibly
shortened, never silently cut; and keeps a cell cursor's whole column in view.
"""

from __future__ import annotations

from itertools import chain

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.strip import Strip

from mltop.core.common.formatting import ELLIPSIS


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
        # Keyed as the table keys its own line cache, so a line is marked once per look.
        key = (
            y, x1, x2, self.size.width, base_style,  # type: ignore[attr-defined]
            self._update_count, self.cursor_coordinate,  # type: ignore[attr-defined]
            self.hover_coordinate, self.selection_anchor_coordinate,  # type: ignore[attr-defined]
            self.cursor_type, self._show_hover_cursor,  # type: ignore[attr-defined]
            self._pseudo_class_state,  # type: ignore[attr-defined]
        )  # fmt: skip
        cache: LRUCache[tuple[object, ...], Strip] | None = getattr(self, "_edge_cache", None)
        if cache is None:
            cache = self._edge_cache = LRUCache(1000)
        marked = cache.get(key)
        if marked is None:
            marked = cache[key] = self._mark_edges(y, x1, x2, base_style)
        return marked

    def _clear_caches(self) -> None:
        """The table drops its drawn lines (new data, styles, sizes): the marked ones go too."""
        super()._clear_caches()  # type: ignore[misc]
        cache: LRUCache[tuple[object, ...], Strip] | None = getattr(self, "_edge_cache", None)
        if cache is not None:
            cache.clear()

    def _mark_edges(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        strip: Strip = super()._render_line(y, x1, x2, base_style)  # type: ignore[misc]
        width: int = self.size.width  # type: ignore[attr-defined]
        fixed_width, spans = self._column_spans()
        visible = width - fixed_width
        row = y - 1
        if visible < 2 or not spans:
            return strip
        if row != -1 and not self.is_valid_row_index(row):  # type: ignore[attr-defined]
            return strip
        left, right = x1, x1 + visible
        cut = [(s, e) for s, e in spans if s < left < e or s < right < e]
        if not cut:
            return strip
        # The visible columns drawn whole (cached by the table), the first starting at
        # ``hidden``: what lies past either edge is read from there, not drawn again.
        _, scrollable, hidden, _ = self._render_line_in_row(  # type: ignore[attr-defined]
            row,
            0,
            x1,
            x2,
            base_style,
            cursor_location=self.cursor_coordinate,  # type: ignore[attr-defined]
            hover_location=self.hover_coordinate,  # type: ignore[attr-defined]
            selection_anchor_location=self.selection_anchor_coordinate,  # type: ignore[attr-defined]
        )
        whole = Strip(list(chain.from_iterable(scrollable)))
        for start, end in cut:
            if start < right < end and whole.crop(right - hidden, end - hidden).text.strip():
                strip = _replace_cell(strip, width - 1)
            if start < left < end and whole.crop(start - hidden, left - hidden).text.strip():
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
    segments = list(strip)
    at = 0
    for i, segment in enumerate(segments):
        length = segment.cell_length
        if at <= x < at + length:
            text = segment.text
            if len(text) != length:  # wide characters: let Strip do the cell arithmetic
                return _replace_by_crop(strip, x)
            offset = x - at
            text = text[:offset] + ELLIPSIS + text[offset + 1 :]
            segments[i] = Segment(text, segment.style, segment.control)
            return Strip(segments, strip.cell_length)
        at += length
    return strip


def _replace_by_crop(strip: Strip, x: int) -> Strip:
    length = strip.cell_length
    style = next((s.style for s in strip.crop(x, x + 1) if s.text), None)
    return Strip.join(
        [strip.crop(0, x), Strip([Segment(ELLIPSIS, style)], 1), strip.crop(x + 1, length)]
    )

"""The header, cursor and fixed-column styles both tables share.

The runs table and the compare table are DataTables that must look alike: the same cursor
when focused and when not, the same header, hover and fixed columns. One function writes those
rules for a widget's CSS type name, so a change of the cursor's look reaches both tables.
"""

from __future__ import annotations


def table_css(name: str) -> str:
    """The header, cursor, hover and fixed-column rules of the DataTable subclass ``name``."""
    return f"""
    {name} > .datatable--header {{
        background: $panel;
        color: $text-muted;
        text-style: bold;
    }}
    {name} > .datatable--cursor {{
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }}
    {name}:focus > .datatable--cursor {{
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }}
    {name} > .datatable--hover {{ background: $block-hover-background; }}
    {name} > .datatable--fixed {{ background: $surface; color: $text; }}
    {name} > .datatable--fixed-cursor {{
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
    }}
    {name}:focus > .datatable--fixed-cursor {{
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }}
    """

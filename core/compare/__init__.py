"""Runs side by side: deltas by each metric's direction, overlays, and their text formats.

Owns the comparison itself (``diff``: baseline, verdicts, CI gates), where directions come from
(``directions``: built-in rules and the project's ``directions.yaml``), the table/JSON/Markdown
renderings (``diff_format``) and aligned histories for overlay charts (``overlay``). May import
the store, entities, ``runs`` and ``common``; never the importers, the TUI or Textual.
"""

"""Runs as a person lists them: the filter language, the runs view and the CLI listing.

Owns turning a filter or sort into parameterised SQL for the store (``query``), the columns and
widths of the runs table (``runs_view``) and what ``mltop runs`` prints (``runs_listing``). May
import the store, entities and ``common``; never the importers, the TUI or Textual.
"""

"""Console logs: indexed by byte offset, highlighted, followed through rotation and truncation.

Owns the line index of a growing file (``logfile``), the lines a log view shows and searches
(``logmodel``), highlighting of tracebacks, levels and numbers (``loghighlight``) and
``mltop tail`` (``logtail``). May import ``common`` and entities; never the store's SQL, the
TUI or Textual.
"""

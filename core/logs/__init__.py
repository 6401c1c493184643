"""Console logs: indexed by byte offset, highlighted, followed through rotation and truncation.

Owns following one file through rotation and truncation (``cursor``), the line index of a
growing file (``logfile``), streaming it as ``tail -F`` does (``tailer``), waking followers
when files change (``filewatch``), the lines a log view shows and searches
(``logmodel``), highlighting of tracebacks, levels and numbers (``loghighlight``) and
``mltop tail`` (``logtail``). May import ``common`` and entities; never the store's SQL, the
TUI or Textual.
"""

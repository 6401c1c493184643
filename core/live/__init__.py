"""Following live training: the watcher that re-imports what changed as files are written.

Owns the watchfiles loop, batching and the incremental re-import of changed sources
(``watch``). May import discovery, the importers, the store, entities, ``runs`` and ``common``;
never the TUI or Textual (the TUI runs the watcher in a worker and receives its updates).
"""

"""mltop's domain logic: store, importers, discovery, queries, diffs and pipelines (no UI)."""

__version__ = "0.1.0"

"""Logs screen: a run's log files followed as they grow, searched and filtered.

Mirrors ``mltop.core.logs``; also runs stand-alone as ``mltop FILE.log``.
"""

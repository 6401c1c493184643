"""Runs screens: the runs table, one run's detail with its charts and values, a chart focused.

Mirrors ``mltop.core.runs``: these screens show what the query language and the runs view give.
"""

"""Pipelines screens: CI stages beside ML pipeline stages by lifecycle phase, and one DAG.

Mirrors ``mltop.core.pipelines``.
"""

"""The Models screen: the model registry and the runs behind each version.

Mirrors ``mltop.core.registry``.
"""

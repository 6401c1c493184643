"""Compare screen: runs side by side, deltas by each metric's direction, overlays.

Mirrors ``mltop.core.compare``.
"""

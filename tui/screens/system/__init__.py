"""Host screen: the machine now, its GPUs, and the runs its processes belong to.

Mirrors ``mltop.core.system``.
"""

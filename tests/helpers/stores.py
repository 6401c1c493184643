"""Reading a whole store back, to compare two imports of the same files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mltop.core.store import Store


def snapshot(
    store: Store, *, summaries: bool = False, drop: Iterable[str] = ("updated",)
) -> list[Any]:
    """Everything the store holds about its runs, in name order: each run's fields (but those
    named in ``drop``, which differ between two imports by design: ``updated`` is when the row
    was written), params and tags, then each metric's history (and, with ``summaries``, its
    summary)."""
    out: list[Any] = []
    for run in store.runs(order="name"):
        fields = dict(run.__dict__)
        for name in drop:
            fields.pop(name)
        out.append((fields, store.params(run.id), store.tags(run.id)))
        for key, summary in sorted(store.summaries([run.id])[run.id].items()):
            history = store.history(run.id, key).to_pylist()
            out.append((key, summary, history) if summaries else (key, history))
    return out

"""A chunk of an MLflow SQLite database's runs as the store's ``runs`` columns, a column at a
time.

:func:`mlflow_common.make_record` maps one run onto a RunRecord, and the store turns records
back into columns: at a hundred thousand runs that is a 13-argument call, a dataclass and its
repr (the old digest) per run, 1.1 s of CPU of a 13 s import. Here each column is one list
built in one pass, what repeats (statuses, stages, experiments) is mapped once per distinct
value, and the tags a record reads are looked at only for the runs that have them. The rules
are make_record's, through the same helpers; tests/test_mlflow_sqlite_runs.py checks the two
give the same table for hostile rows (SQLite keeps any type in any column).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from mltop.core.importers import mlflow_common as common
from mltop.core.importers.mlflow_sqlite_db import db_text
from mltop.core.store import (
    RUN_TEXTS,
    RUN_TIMES,
    numbers_array,
    run_table,
    string_array,
    text_array,
)

_T = TypeVar("_T")


def run_columns(
    rows: Sequence[tuple[Any, ...]],
    ids: Sequence[str],
    record_tags: Mapping[str, Mapping[str, str]],
    last_ms: Sequence[float | None],
    *,
    kind: str,
    source: str,
    id_source: str,
    deleted_experiments: set[str],
) -> pa.Table:
    """The runs of ``rows`` (run_uuid, name, status, start_time, end_time, lifecycle_stage,
    artifact_uri, experiment_id as SQLite gave them; one row per run_uuid) as the table
    :meth:`Store.put_runs` takes: what :func:`common.make_record` would make of each row with
    its record tags (by run_uuid), its run id and its latest metric time (epoch ms)."""
    n = len(rows)
    if not n:
        return run_table([], source)
    uuids, names, statuses, starts, ends, stages, uris, exps = (
        list(c) for c in zip(*rows, strict=True)
    )
    exp_natives = _mapped(exps, lambda e: db_text(e) if e is not None else None)
    no_tags: Mapping[str, str] = {}
    # A name column holds the name; the tag (MLflow 1.x) or the uuid stand in for it.
    name_col = [v if type(v) is str and v else None for v in names]
    for i in [i for i, v in enumerate(name_col) if v is None]:
        name_col[i] = common.run_name(names[i], record_tags.get(uuids[i], no_tags), uuids[i])
    parents: list[str | None] = [None] * n
    commits: list[str | None] = [None] * n
    hosts: list[str | None] = [None] * n
    position = {u: i for i, u in enumerate(uuids)}
    for uuid, tags in record_tags.items():
        i = position.get(uuid)
        if i is None:
            continue
        parent = tags.get(common.TAG_PARENT)
        parents[i] = common.run_id(kind, id_source, parent) if parent else None
        commits[i] = tags.get(common.TAG_GIT_COMMIT) or None
        hosts[i] = common.host_of(tags)
    stage_lifecycles = _mapped(stages, common.lifecycle_of)
    start = _seconds(starts)
    end = _seconds(ends)
    latest = np.array([np.nan if v is None else v for v in last_ms], np.float64) / 1000.0
    # The latest of the run's times (a time is never NaN here: NaN stands for none); a run
    # with none has no "updated".
    updated = np.fmax(np.fmax(start, end), latest)
    columns = {
        "id": string_array(list(ids)),
        "source_kind": string_array([kind] * n),
        "location": string_array([source] * n),
        "native_id": string_array(uuids),
        "experiment_id": text_array(
            _mapped(
                exp_natives,
                lambda e: common.experiment_id(kind, id_source, e) if e is not None else None,
            )
        ),
        "name": text_array(name_col),
        "status": string_array(_mapped(statuses, lambda s: str(common.parse_status(s)))),
        # A run of a deleted experiment is deleted whatever its own stage says.
        "lifecycle": string_array(
            [
                common.DELETED if e in deleted_experiments else life
                for life, e in zip(stage_lifecycles, exp_natives, strict=True)
            ]
        ),
        "parent_id": text_array(parents),
        "git_commit": text_array(commits),
        "host": text_array(hosts),
        "artifact_uri": text_array([str(a) if a not in (None, "") else None for a in uris]),
        "error": text_array([None] * n),
        "source": string_array([source] * n),
        "start_time": numbers_array(start, np.isnan(start)),
        "end_time": numbers_array(end, np.isnan(end)),
        "updated": numbers_array(updated, np.isnan(updated)),
    }
    return pa.table({name: columns[name] for name in RUN_TEXTS + RUN_TIMES})


def _mapped(values: list[Any], convert: Callable[[Any], _T]) -> list[_T]:
    """``convert`` of each value, computed once per distinct value (by type too: SQLite gives
    1 and 1.0 and "1" apart, and they read differently)."""
    seen: dict[tuple[type, Hashable], _T] = {}
    out = []
    for value in values:
        key = (type(value), value)
        if key not in seen:
            seen[key] = convert(value)
        out.append(seen[key])
    return out


def _seconds(values: list[Any]) -> np.ndarray:
    """Epoch-millisecond values as seconds, NaN where :func:`common.ms_to_s` gives None."""
    return np.array([np.nan if s is None else s for s in map(common.ms_to_s, values)], np.float64)

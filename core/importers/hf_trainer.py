"""Importer for Hugging Face ``Trainer`` output folders (``trainer_state.json``).

Each ``output_dir`` is one run, named after the folder, in an experiment named after its parent.
The Trainer saves a ``trainer_state.json`` in every ``checkpoint-N/`` and, on
``trainer.save_state()``, one at the top of ``output_dir``; each holds the whole ``log_history``
up to that moment, so they are copies of one history at different lengths. Only the newest is
read (highest ``global_step``, then the longest history, then the top-level file), so no point
is counted twice.

``log_history`` mixes train entries (``loss``, ``grad_norm``, ``learning_rate``), eval entries
(``eval_*``) and a final summary (``train_runtime``, ``train_loss``...), each with ``step`` and a
fractional ``epoch``; every numeric field becomes a metric at that step (``epoch`` included, once
per step). The file is rewritten as a whole, so a change re-reads the run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from mltop.core.entities import FileState, ImportReport, RunRecord, SourceRef, Status, stable_id
from mltop.core.importers.base import Change, Detection, classify, file_state, states_by_run
from mltop.core.importers.params import read_json_object
from mltop.core.store import POINTS_SCHEMA, Store

KIND = "hf-trainer"
STATE_FILE = "trainer_state.json"
CHECKPOINT = re.compile(r"checkpoint-\d+$")
MAX_STATE_BYTES = 256 * 1024 * 1024
BATCH_RUNS = 200
PARAM_FIELDS = (
    "train_batch_size",
    "num_train_epochs",
    "max_steps",
    "logging_steps",
    "eval_steps",
    "save_steps",
)
TAG_FIELDS = (
    "global_step",
    "epoch",
    "best_metric",
    "best_global_step",
    "best_model_checkpoint",
    "trial_name",
)


def experiment_id(folder: Path | str) -> str:
    """``folder`` as :meth:`Store.id_path` gives it."""
    return stable_id("hf-trainer-experiment", str(folder))


def _read_state(path: Path) -> dict[str, Any]:
    """A trainer_state.json as a dict; ValueError with a one-line reason otherwise."""
    state = read_json_object(path, MAX_STATE_BYTES, "a trainer state")
    if not isinstance(state.get("log_history"), list):
        raise ValueError("no log_history list")
    return state


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: object) -> int | None:
    number = _number(value)
    if number is None or number != number or abs(number) >= 2**62 or not number.is_integer():
        return None
    return int(number)


def _points(run_id: str, history: list[Any]) -> pa.Table:
    """Every numeric field of every entry at its step; a (key, step) seen twice keeps the last."""
    latest: dict[tuple[str, int], float] = {}
    for entry in history:
        if not isinstance(entry, dict):
            continue
        step = _int(entry.get("step"))
        if step is None:
            continue
        for key, value in entry.items():
            number = _number(value)
            if key != "step" and number is not None:
                latest[(str(key), step)] = number
    if not latest:
        return POINTS_SCHEMA.empty_table()
    n = len(latest)
    return pa.table(
        {
            "run_id": pa.array([run_id] * n, pa.string()),
            "key": pa.array([k for k, _ in latest], pa.string()),
            "step": pa.array([s for _, s in latest], pa.int64()),
            "ts": pa.nulls(n, pa.float64()),
            "value": pa.array(list(latest.values()), pa.float64()),
        }
    )


def _finished(state: dict[str, Any]) -> bool:
    control = state.get("stateful_callbacks", {})
    control = control.get("TrainerControl", {}) if isinstance(control, dict) else {}
    args = control.get("args", {}) if isinstance(control, dict) else {}
    if isinstance(args, dict) and args.get("should_training_stop") is True:
        return True
    step, limit = _int(state.get("global_step")), _int(state.get("max_steps"))
    return step is not None and limit is not None and limit > 0 and step >= limit


def _params(state: dict[str, Any]) -> dict[str, object]:
    params: dict[str, object] = {k: state[k] for k in PARAM_FIELDS if state.get(k) is not None}
    trial = state.get("trial_params")
    if isinstance(trial, dict):
        for key, value in trial.items():
            params[str(key)] = json.dumps(value) if isinstance(value, list | dict) else value
    return params


def _tags(state: dict[str, Any], chosen: Path, folder: Path) -> dict[str, object]:
    tags: dict[str, object] = {k: state[k] for k in TAG_FIELDS if state.get(k) is not None}
    tags["trainer_state"] = str(chosen.relative_to(folder))
    return tags


def _candidates(folder: Path) -> list[Path]:
    """The top-level trainer_state.json and those of the checkpoints, as they exist now."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    paths = [folder / STATE_FILE] if STATE_FILE in names else []
    for name in sorted(names):
        if CHECKPOINT.match(name) and (folder / name / STATE_FILE).is_file():
            paths.append(folder / name / STATE_FILE)
    return paths


@dataclass
class _Choice:
    path: Path
    state: dict[str, Any]
    mtime: float


def _newest(choices: list[_Choice], folder: Path) -> _Choice:
    def rank(choice: _Choice) -> tuple[int, int, int, float]:
        step = _int(choice.state.get("global_step"))
        return (
            step if step is not None else -1,
            len(choice.state["log_history"]),
            1 if choice.path.parent == folder else 0,
            choice.mtime,
        )

    return max(choices, key=rank)


class HfTrainerImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if CHECKPOINT.match(dirpath.name):
            if STATE_FILE not in filenames:
                return None
            # A checkpoint belongs to its output_dir; nothing inside it is a run of its own.
            return Detection([SourceRef(KIND, dirpath.parent)], claimed=set(filenames), prune=True)
        if STATE_FILE in filenames or any(CHECKPOINT.match(d) for d in dirnames):
            claimed = {STATE_FILE} if STATE_FILE in filenames else set()
            return Detection([SourceRef(KIND, dirpath)], claimed=claimed)
        return None

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        by_run = states_by_run(known)
        batch: list[_Update] = []
        for ref in {ref.key: ref for ref in refs}.values():
            try:
                update = self._read_run(store, ref.location, known, by_run, report)
            except Exception as exc:  # one broken run must not stop the others
                report.problem(ref.location, f"cannot import: {type(exc).__name__}: {exc}")
                continue
            if update is not None:
                batch.append(update)
            if len(batch) >= BATCH_RUNS:
                _write(store, batch, report)
                batch = []
        if batch:
            _write(store, batch, report)

    def _read_run(
        self,
        store: Store,
        folder: Path,
        known: dict[str, FileState],
        by_run: dict[str, list[FileState]],
        report: ImportReport,
    ) -> _Update | None:
        source = str(folder)
        run_id = stable_id(KIND, store.id_path(source))
        paths = _candidates(folder)
        previous = by_run.get(run_id, [])
        current = {str(p) for p in paths}
        deleted = [s.path for s in previous if s.path not in current]
        stats: dict[Path, os.stat_result] = {}
        changed = bool(deleted)
        for path in paths:
            change, st = classify(path, known.get(str(path)))
            if st is not None:
                stats[path] = st
            changed |= change is not Change.UNCHANGED
        if not changed:
            return None
        choices: list[_Choice] = []
        for path, st in stats.items():
            try:
                choices.append(_Choice(path, _read_state(path), st.st_mtime))
            except (OSError, ValueError) as exc:
                reason = str(exc) if isinstance(exc, ValueError) else f"cannot read ({exc})"
                report.problem(path, reason)
        update = _Update(
            run_id,
            existed=bool(previous),
            states=[file_state(p, st, st.st_size, run_id, source) for p, st in stats.items()],
            deleted_files=deleted,
        )
        if not choices:
            return update
        best = _newest(choices, folder)
        state = best.state
        update.record = RunRecord(
            id=run_id,
            source_kind=KIND,
            location=source,
            name=folder.name,
            status=Status.FINISHED if _finished(state) else Status.RUNNING,
            experiment_id=experiment_id(store.id_path(folder.parent)),
            updated=max(c.mtime for c in choices),
            source=source,
        )
        update.experiment = (experiment_id(store.id_path(folder.parent)), folder.parent.name)
        update.params = _params(state)
        update.tags = _tags(state, best.path, folder)
        update.points = _points(run_id, state["log_history"])
        return update


@dataclass
class _Update:
    """One run's share of a write batch; ``record`` is None when no state file was readable."""

    run_id: str
    existed: bool
    states: list[FileState]
    deleted_files: list[str]
    record: RunRecord | None = None
    experiment: tuple[str, str] | None = None
    params: dict[str, object] = field(default_factory=dict)
    tags: dict[str, object] = field(default_factory=dict)
    points: pa.Table | None = None


def _write(store: Store, batch: list[_Update], report: ImportReport) -> None:
    """Write whole runs in one transaction: all of them or none."""
    live = [u for u in batch if u.record is not None]
    gone = [u.run_id for u in batch if u.record is None and u.existed]
    experiments = {u.experiment[0]: u.experiment[1] for u in live if u.experiment}
    tables = [u.points for u in live if u.points is not None and u.points.num_rows]
    with store.transaction():
        store.delete_files([p for u in batch for p in u.deleted_files])
        if gone:
            store.delete_runs(gone)
        store.put_experiments([(e, KIND, "", None, name) for e, name in experiments.items()])
        store.put_runs(
            None,
            [u.record for u in live if u.record is not None],
            [(u.run_id, k, v) for u in live for k, v in u.params.items()],
            [(u.run_id, k, v) for u in live for k, v in u.tags.items()],
        )
        if live:
            store.delete_points([u.run_id for u in live])
        added = store.add_points(pa.concat_tables(tables)) if tables else 0
        if live:
            store.refresh_summaries([u.run_id for u in live])
        store.put_files(None, [s for u in batch for s in u.states])
    report.add(KIND, runs=sum(1 for u in live if not u.existed), points=added)


IMPORTER = HfTrainerImporter()

"""Importer for PyTorch Lightning's CSVLogger: ``<save_dir>/<name>/version_N/metrics.csv``.

Each version folder is one run (named after the folder), in an experiment named after the
logger's name folder (``lightning_logs`` by default). ``metrics.csv`` is sparse: a row holds only
the metrics logged at that moment, keyed by ``step``. Its ``epoch`` column, written on every
row, is a metric like the others: Lightning's logger connector adds ``epoch`` to every batch of
metrics it hands its loggers, so TensorBoardLogger (Lightning's default) charts it too.
``hparams.yaml`` gives the params.

The CSV grows while training runs, so only its new complete lines are read on a re-scan; when a
new metric appears Lightning rewrites the whole file with a wider header, which reads as a
replaced file and is re-read in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from mltop.core.common.regular_files import read_limited
from mltop.core.common.safe_yaml import YamlRefused, load_yaml
from mltop.core.entities import (
    FileState,
    ImportReport,
    RunRecord,
    SourceRef,
    Status,
    stable_id,
)
from mltop.core.importers.base import Change, Detection, classify, file_state
from mltop.core.importers.linefiles import LineFile, newest_mtime, read_line_files
from mltop.core.importers.params import flatten_params
from mltop.core.store import Store

KIND = "lightning"
METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.yaml"
BATCH_RUNS = 500
MAX_HPARAMS_BYTES = 4 * 1024 * 1024


def experiment_id(folder: Path | str) -> str:
    """``folder`` as :meth:`Store.id_path` gives it."""
    return stable_id("lightning-experiment", str(folder))


def read_hparams(path: Path) -> dict[str, object]:
    """hparams.yaml as flat params (nested keys dotted); ValueError with a one-line reason."""
    raw = read_limited(path, MAX_HPARAMS_BYTES, "a hparams file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from exc
    try:
        data = load_yaml(text)  # python tags (a Namespace in hparams) come back as text
    except YamlRefused as exc:
        raise ValueError(f"refused: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"malformed YAML{where}") from exc
    except RecursionError as exc:
        raise ValueError("YAML nested too deeply") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"expected a mapping of hyperparameters, found {type(data).__name__}")
    out: dict[str, object] = {}
    flatten_params(data, out=out)
    return out


class LightningImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if METRICS_FILE not in filenames:
            return None
        if HPARAMS_FILE not in filenames and not dirpath.name.startswith("version_"):
            return None
        claimed = {METRICS_FILE} | ({HPARAMS_FILE} if HPARAMS_FILE in filenames else set())
        # Not pruned: a TensorBoardLogger may write event files into the same version folder.
        return Detection([SourceRef(KIND, dirpath)], claimed=claimed)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        # A version folder's files are recorded with the folder as their source.
        known = store.file_states(sources=(str(ref.location) for ref in refs))
        unique = list({ref.key: ref for ref in refs}.values())
        for start in range(0, len(unique), BATCH_RUNS):
            try:
                self._import_batch(store, unique[start : start + BATCH_RUNS], known, report)
            except Exception as exc:  # a bug on one batch must not hide the other sources
                where = unique[start].location
                report.problem(where, f"cannot import: {type(exc).__name__}: {exc}")

    def _import_batch(
        self,
        store: Store,
        refs: Sequence[SourceRef],
        known: dict[str, FileState],
        report: ImportReport,
    ) -> None:
        files: list[LineFile] = []
        folders: dict[str, Path] = {}
        hparams_changed: set[str] = set()
        hparams_states: dict[str, FileState] = {}
        for ref in refs:
            folder = ref.location
            run_id = stable_id(KIND, store.id_path(folder))
            folders[run_id] = folder
            metrics = folder / METRICS_FILE
            files.append(LineFile(metrics, run_id, known.get(str(metrics)), str(folder)))
            hp = folder / HPARAMS_FILE
            change, st = classify(hp, known.get(str(hp)))
            if change is not Change.UNCHANGED:
                hparams_changed.add(run_id)
            if st is not None:
                hparams_states[run_id] = file_state(hp, st, st.st_size, run_id, str(folder))
        batch = read_line_files(files, "csv", report, delimiter=",", step_col="step", time_col="")
        deleted = {lf.run_id for lf in batch.deleted}
        changed = (batch.changed_runs | hparams_changed) - deleted
        if not changed and not deleted:
            return
        # A run whose metrics.csv grew while its hparams stayed is the live case (a job logging
        # every step): its record, params and experiment are as stored, only `updated` moves.
        grown_only = {
            run_id: batch.mtimes[run_id]
            for run_id in batch.changed_runs - deleted - hparams_changed - batch.replaced_runs
            if run_id in batch.mtimes
        }
        records: list[RunRecord] = []
        params: list[tuple[str, str, object]] = []
        experiments: dict[str, str] = {}
        for run_id in sorted(changed - grown_only.keys()):
            folder = folders[run_id]
            run_params: dict[str, object] = {}
            hp = folder / HPARAMS_FILE
            if run_id in hparams_states:
                try:
                    run_params = read_hparams(hp)
                except (OSError, ValueError) as exc:
                    reason = str(exc) if isinstance(exc, ValueError) else f"cannot read ({exc})"
                    report.problem(hp, reason)
            params.extend((run_id, k, v) for k, v in run_params.items())
            exp_id = experiment_id(store.id_path(folder.parent))
            experiments[exp_id] = folder.parent.name
            records.append(
                RunRecord(
                    id=run_id,
                    source_kind=KIND,
                    location=str(folder),
                    name=folder.name,
                    status=Status.FINISHED,
                    experiment_id=exp_id,
                    updated=newest_mtime([folder / METRICS_FILE, hp]),
                    source=str(folder),
                )
            )
        states = [s for s in batch.states if s.run_id not in deleted]
        states += [s for r, s in hparams_states.items() if r in changed]
        new_runs = sum(1 for r in records if str(Path(r.location) / METRICS_FILE) not in known)
        with store.transaction():
            store.put_experiments([(e, KIND, "", None, n) for e, n in experiments.items()])
            store.put_runs(None, records, params)
            store.touch_runs(grown_only)
            added = batch.write_points(store, deleted, changed)
            store.delete_files([str(lf.path) for lf in batch.deleted])
            store.put_files(None, states)
        report.add(KIND, runs=new_runs, points=added)


IMPORTER = LightningImporter()

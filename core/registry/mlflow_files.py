"""An MLflow file store's registry: ``mlruns/models/<name>/`` read as MLflow's FileStore writes it.

``<name>/meta.yaml`` holds the model, ``<name>/tags/<key>`` and ``<name>/aliases/<alias>`` hold
one value per file (MLflow also copies the aliases into meta.yaml but reads only the files),
``<name>/version-N/meta.yaml`` and ``version-N/tags/<key>`` the versions. Files are read as the
run importer reads them (regular files only, bounded, YAML through the bounded loader): a
truncated or damaged ``meta.yaml`` costs its model or version one problem line, never the rest
of the registry.

MLflow 3 keeps a logged model, which a version registered from ``models:/m-...`` points at, in
``<experiment id>/models/<model id>/``: ``meta.yaml``, ``metrics/<key>`` (one
``timestamp value step run_id`` line per value) and ``params/<key>``. Only the logged models
versions point at are read; their files' stats join the registry's fingerprint, so a metric
logged to one after it was registered is read on the next scan.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from mltop.core.entities import ImportReport, LoggedModel, ModelVersion, RegisteredModel
from mltop.core.importers import mlflow_files as tracking
from mltop.core.importers.mlflow_common import ms_to_s
from mltop.core.registry import fields

KIND = tracking.KIND
MODELS = "models"
META = "meta.yaml"
VERSION_PREFIX = "version-"


def fingerprint(root: Path, logged: Iterable[Path] = ()) -> str:
    """A digest of every path, size and mtime under ``root/models`` ("" when there is none)
    and under the ``logged`` model folders."""
    folder = root / MODELS
    if not folder.is_dir():
        return ""
    digest = hashlib.sha1()
    for dirpath, dirnames, filenames in (
        walked for top in (folder, *sorted(logged)) for walked in os.walk(top)
    ):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except OSError:
        return []


def _values(folder: Path, report: ImportReport) -> dict[str, str]:
    """One value per file (tags, aliases, params); unreadable files become problem lines."""
    out: dict[str, str] = {}
    for name in _files(folder):
        try:
            out[name] = tracking.read_value(folder / name)
        except tracking.UnitError as exc:
            report.problem(folder / name, str(exc))
    return out


def _subfolders(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def read_tree(root: Path, report: ImportReport) -> tuple[list[RegisteredModel], list[ModelVersion]]:
    """Every model and version under ``root/models`` (deleted versions flagged)."""
    source = str(root)
    models: list[RegisteredModel] = []
    versions: list[ModelVersion] = []
    for folder_name in _subfolders(root / MODELS):
        folder = root / MODELS / folder_name
        try:
            meta = tracking.read_yaml(folder / META)
        except tracking.UnitError as exc:
            report.problem(folder / META, f"{exc}; model {folder_name!r} left out")
            continue
        name = fields.text(meta.get("name")) or folder_name
        # Only the aliases/ files count, as MLflow's FileStore reads them: the aliases: map in
        # meta.yaml can outlive them (a rename drops the files and keeps the map).
        aliases = _values(folder / "aliases", report) if (folder / "aliases").is_dir() else {}
        aliases = {k: v.strip() for k, v in aliases.items()}
        row = {
            "description": meta.get("description"),
            "created": meta.get("creation_timestamp"),
            "updated": meta.get("last_updated_timestamp"),
        }
        models.append(
            fields.make_model(KIND, source, name, row, _values(folder / "tags", report), aliases)
        )
        by_version = fields.aliases_by_version(aliases)
        for sub in _subfolders(folder):
            if not sub.startswith(VERSION_PREFIX):
                continue
            try:
                vmeta = tracking.read_yaml(folder / sub / META)
            except tracking.UnitError as exc:
                report.problem(folder / sub / META, f"{exc}; {name} {sub} left out")
                continue
            version = fields.text(vmeta.get("version")) or sub[len(VERSION_PREFIX) :]
            vrow = {**vmeta, "name": name, "version": version}
            versions.append(
                fields.make_version(
                    KIND,
                    source,
                    vrow,
                    _values(folder / sub / "tags", report),
                    by_version.get(version, []),
                )
            )
    return models, versions


def logged_folder(root: Path, model: LoggedModel) -> Path:
    return root / str(model.experiment_id) / MODELS / model.model_id


def _logged_folders(root: Path, ids: set[str]) -> dict[str, Path]:
    """Where each of ``ids`` lives: ``<experiment>/models/<id>`` (one listing per experiment)."""
    found: dict[str, Path] = {}
    for experiment in _subfolders(root):
        if experiment == MODELS or experiment.startswith("."):
            continue
        for model_id in _subfolders(root / experiment / MODELS):
            if model_id in ids:
                found[model_id] = root / experiment / MODELS / model_id
    return found


def _metric_rows(path: Path, key: str) -> list[tuple[str, float, int, int | None, str | None]]:
    """A logged model's metric file: ``timestamp value step [run_id]`` per line."""
    rows = []
    for number, line in enumerate(tracking.read_value(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            ts, value, step = int(parts[0]), float(parts[1]), int(parts[2])
        except (IndexError, ValueError):
            raise tracking.UnitError(f"line {number} is not 'timestamp value step'") from None
        rows.append((key, value, step, ts, None))
    return rows


def read_logged_models(root: Path, ids: Iterable[str], report: ImportReport) -> list[LoggedModel]:
    """The logged models ``ids`` (those the versions point at) with their metrics and params;
    a damaged file costs its model that value and one problem line."""
    wanted = set(ids)
    if not wanted:
        return []
    out = []
    for model_id, folder in sorted(_logged_folders(root, wanted).items()):
        try:
            meta = tracking.read_yaml(folder / META)
        except tracking.UnitError as exc:
            report.problem(folder / META, f"{exc}; logged model {model_id} left out")
            continue
        metrics: list[tuple[str, float, int, int | None, str | None]] = []
        for key in sorted(_files(folder / "metrics")):
            try:
                metrics += _metric_rows(folder / "metrics" / key, key)
            except tracking.UnitError as exc:
                report.problem(folder / "metrics" / key, str(exc))
        status = fields.text(meta.get("status"))
        out.append(
            LoggedModel(
                model_id=model_id,
                name=fields.text(meta.get("name")),
                experiment_id=fields.text(meta.get("experiment_id")) or folder.parent.parent.name,
                run_native_id=fields.text(meta.get("source_run_id")),
                status=fields.logged_status(status),
                created=ms_to_s(meta.get("creation_timestamp")),
                updated=ms_to_s(meta.get("last_updated_timestamp")),
                metrics=tuple(metrics),
                params=tuple(sorted(_values(folder / "params", report).items())),
            )
        )
    return out

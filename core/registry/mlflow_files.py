"""An MLflow file store's registry: ``mlruns/models/<name>/`` read as MLflow's FileStore writes it.

``<name>/meta.yaml`` holds the model, ``<name>/tags/<key>`` and ``<name>/aliases/<alias>`` hold
one value per file (MLflow also copies the aliases into meta.yaml but reads only the files),
``<name>/version-N/meta.yaml`` and ``version-N/tags/<key>`` the versions. Files are read as the
run importer reads them (regular files only, bounded, YAML through the bounded loader): a
truncated or damaged ``meta.yaml`` costs its model or version one problem line, never the rest
of the registry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mltop.core.entities import ImportReport, ModelVersion, RegisteredModel
from mltop.core.importers import mlflow_files as tracking
from mltop.core.registry import fields

KIND = tracking.KIND
MODELS = "models"
META = "meta.yaml"
VERSION_PREFIX = "version-"


def fingerprint(root: Path) -> str:
    """A digest of every path, size and mtime under ``root/models`` ("" when there is none)."""
    folder = root / MODELS
    if not folder.is_dir():
        return ""
    digest = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return digest.hexdigest()


def _values(folder: Path, report: ImportReport) -> dict[str, str]:
    """One value per file (tags, aliases); unreadable files become problem lines."""
    out: dict[str, str] = {}
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except OSError:
        return out
    for name in names:
        try:
            out[name] = tracking.read_value(folder / name)[0]
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

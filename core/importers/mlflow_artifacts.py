"""Which MLflow run an artifact on disk belongs to.

MLflow keeps a run's artifacts in ``<root>/<experiment_id>/<run_id>/artifacts/``: inside the
``mlruns/`` file store itself, or in the ``mlruns/`` artifact root beside an ``mlflow.db``.
MLflow's TensorFlow/Keras autologging copies the run's TensorBoard logs there, under
``tensorboard_logs/``; those event files are that run's charts, so the TensorBoard reader files
them under the run (see :func:`artifact_owner`) instead of leaving them to nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mltop.core.importers import mlflow_common as common
from mltop.core.importers import mlflow_files, mlflow_sqlite
from mltop.core.store import Store

ARTIFACTS = "artifacts"
TENSORBOARD_LOGS = "tensorboard_logs"  # the artifact path MLflow's autologging writes them to


@dataclass(frozen=True)
class ArtifactOwner:
    """The MLflow run (and experiment) whose artifacts folder holds a path."""

    run_id: str
    experiment_id: str
    artifacts: Path


def tensorboard_roots(mlruns: Path, experiments: list[str]) -> list[Path]:
    """Each run's ``artifacts/tensorboard_logs`` folder under an ``mlruns/`` tree.

    One listing per experiment and one stat per run: the rest of the artifacts (models, data)
    is never walked.
    """
    roots = []
    for experiment in experiments:
        try:
            runs = sorted(e.name for e in os.scandir(mlruns / experiment) if e.is_dir())
        except OSError:
            continue
        for run in runs:
            folder = mlruns / experiment / run / ARTIFACTS / TENSORBOARD_LOGS
            if folder.is_dir():
                roots.append(folder)
    return roots


def artifact_owner(store: Store, path: Path) -> ArtifactOwner | None:
    """The MLflow run whose ``artifacts/`` folder holds ``path``, by the ids its importer gives.

    A run folder with its own ``meta.yaml`` is in a file store; otherwise the tree is the artifact
    root of the MLflow database beside it. None when ``path`` is in no run's artifacts.
    """
    artifacts = next((p for p in (path, *path.parents) if p.name == ARTIFACTS), None)
    if artifacts is None:
        return None
    run_dir = artifacts.parent
    experiment_dir = run_dir.parent
    root = experiment_dir.parent
    if (run_dir / "meta.yaml").is_file():
        kind, source = mlflow_files.KIND, root
    else:
        databases = sorted(
            p
            for p in _children(root.parent)
            if p.name.endswith(mlflow_sqlite.DB_SUFFIXES) and mlflow_sqlite.is_mlflow_db(p)
        )
        if not databases:
            return None
        kind, source = mlflow_sqlite.KIND, databases[0]
    ids = store.id_path(source)
    return ArtifactOwner(
        common.run_id(kind, ids, run_dir.name),
        common.experiment_id(kind, ids, experiment_dir.name),
        artifacts,
    )


def _children(folder: Path) -> list[Path]:
    try:
        return [folder / name for name in os.listdir(folder)]
    except OSError:
        return []

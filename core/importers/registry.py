"""The importers, in the order discovery offers each folder to them.

Order matters: a specific format claims its files first (an mltop run folder claims its
``metrics.jsonl``; Lightning claims ``metrics.csv`` beside ``hparams.yaml``), and the generic
JSONL/CSV reader only sees what nobody claimed.
"""

from __future__ import annotations

import importlib

from mltop.core.importers.base import Importer

# module name in mltop.core.importers -> attribute holding the Importer instance
_IMPORTERS: list[str] = [
    "mltop_runs",
    "mlflow_sqlite",
    "mlflow_files",
    "wandb_offline",
    "trackio",
    "dvc",
    "gto_repo",
    "dvclive",
    "tensorboard",
    "mlflow_tensorboard",
    "lightning",
    "keras_csv",
    "hf_trainer",
    "generic_logs",
]


def importers() -> list[Importer]:
    out: list[Importer] = []
    for name in _IMPORTERS:
        module = importlib.import_module(f"mltop.core.importers.{name}")
        out.append(module.IMPORTER)
    return out

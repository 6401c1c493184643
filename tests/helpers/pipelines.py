"""Pipeline projects for the pipelines tests: the sample project's own files, and a DVC stage.

The sample project (``sample_project/``, shipped with mltop for ``mltop demo``) holds a real
dvc.yaml and a GitHub Actions workflow; tests copy those into a folder of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "sample_project"

# What `dvc repro` records: the sample project's three stages ran with their current commands.
SAMPLE_LAST_RUN = (
    "schema: '2.0'\nstages:\n  prepare:\n    cmd: python prepare.py\n"
    "  train:\n    cmd: python train.py --from-params\n  evaluate:\n    cmd: python evaluate.py\n"
)

# One DVC stage that trains a model from train.py; tests add stages after it.
DVC_TRAIN_STAGE = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [model.pkl]
"""


def sample_pipelines(root: Path) -> Path:
    """``root`` holding the sample project's dvc.yaml and CI workflow, and a dvc.lock saying
    its stages last ran with their current commands."""
    (root / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(SAMPLE / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(SAMPLE / ".github" / "workflows" / "ci.yml", root / ".github/workflows/ci.yml")
    (root / "dvc.lock").write_text(SAMPLE_LAST_RUN, encoding="utf-8")
    return root


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (a path under ``root``: its text) as UTF-8, making their folders; returns
    ``root``. Pipeline readers find files by name and place, so tests lay out whole projects."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root

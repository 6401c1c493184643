"""TensorBoard logs that MLflow's autologging keeps in a run's artifacts belong to that run.

MLflow's TensorFlow/Keras autologging copies the run's TensorBoard log folder to the artifact
path ``tensorboard_logs/`` (``train/`` and ``validation/`` inside, as Keras's TensorBoard
callback writes them). Here the real MLflow stores of tests/fixtures/mlflow get real event files
from tests/fixtures/tensorboard laid out that way; the oracle is the TensorBoard fixture's
EventAccumulator dump.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import FIXTURES

from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store

TB = FIXTURES / "tensorboard"


def _extract(archive: str, dest: Path) -> Path:
    with tarfile.open(FIXTURES / "mlflow" / archive) as tar:
        tar.extractall(dest, filter="data")
        return dest / tar.getnames()[0].split("/")[0]


def _oracle(run: str, tag: str) -> list[tuple[int, float]]:
    rows = json.loads((TB / "expected.json").read_text())
    return sorted((r["step"], r["value"]) for r in rows if r["run"] == run and r["tag"] == tag)


@pytest.mark.parametrize("archive", ["small-sqlite.tar.gz", "small-filestore.tar.gz"])
def test_autologged_tensorboard_logs_are_children_of_their_mlflow_run(
    tmp_path: Path, archive: str
) -> None:
    project = _extract(archive, tmp_path)
    artifacts = sorted(project.glob("mlruns/*/*/artifacts"))[0]
    logs = artifacts / "tensorboard_logs"
    shutil.copytree(TB / "runs" / "mlp-lr0.1", logs / "train")
    shutil.copytree(TB / "runs" / "mlp-lr0.01", logs / "validation")

    store = open_memory_store()
    report = ingest(project, store)
    assert report.problems == []
    runs = {r.name: r for r in store.runs()}
    (owner,) = [r for r in runs.values() if r.native_id == artifacts.parent.name]
    assert owner.source_kind.startswith("mlflow")
    for name, fixture in (("train", "mlp-lr0.1"), ("validation", "mlp-lr0.01")):
        child = runs[f"tensorboard_logs/{name}"]
        assert (child.source_kind, child.parent_id) == ("tensorboard", owner.id)
        assert child.experiment == owner.experiment
        history = store.history(child.id, "loss/train").to_pydict()
        points = list(zip(history["step"], history["value"], strict=True))
        assert points == _oracle(fixture, "loss/train")
        (hparams,) = [r for r in runs.values() if r.name.startswith(f"tensorboard_logs/{name}/")]
        assert hparams.parent_id == child.id

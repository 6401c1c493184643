"""Fast checks of the training code; the full sweep and the pipeline run in CI's other jobs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from prepare import load_prepared, make_split, save_prepared
from train import SWEEP, Config, train_one


def test_split_is_deterministic_and_scaled_on_training_rows():
    a = make_split("digits", seed=0)
    b = make_split("digits", seed=0)
    assert np.array_equal(a.X_train, b.X_train)
    assert np.array_equal(a.y_val, b.y_val)
    assert np.allclose(a.X_train.mean(axis=0), 0.0, atol=1e-9)
    assert len(a.y_train) + len(a.y_val) == 1797


def test_prepared_file_round_trips(tmp_path: Path):
    split = make_split("diabetes", test_size=0.2, seed=1)
    save_prepared(split, tmp_path / "prepared.npz")
    back = load_prepared(tmp_path / "prepared.npz")
    assert (back.dataset, back.task) == ("diabetes", "regression")
    assert np.array_equal(back.X_val, split.X_val)


@pytest.mark.parametrize("model", ["sgd", "mlp", "logreg", "rf"])
def test_each_model_logs_one_line_per_epoch(tmp_path: Path, model: str):
    cfg = Config("breast_cancer", f"{model}-test", model, {"lr": 0.01, "max_depth": 3}, epochs=3)
    result = train_one(cfg, make_split("breast_cancer"), tmp_path)
    assert result.status == "FINISHED", result.error
    folder = tmp_path / "breast_cancer" / f"{model}-test"
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert "epoch 3/3" in (folder / "output.log").read_text()
    assert result.final["val_acc"] > 0.8


def test_diverging_configuration_fails_with_a_message(tmp_path: Path):
    cfg = next(c for c in SWEEP if c.expect_failure)
    split = make_split(cfg.dataset)
    result = train_one(replace(cfg, name="diverge"), split, tmp_path)
    assert result.status == "FAILED"
    assert "diverged" in (result.error or "")
    meta = json.loads((tmp_path / cfg.exp / "diverge" / "mltop-run.json").read_text())
    assert meta["status"] == "FAILED"

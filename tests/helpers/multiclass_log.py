"""A multi-class prediction log written with pandas, for the monitor's multi-class tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def multiclass_log(folder: Path, labels: list[Any]) -> pd.DataFrame:
    """Three classes over ten days, scores per class (softmax), labels on about 70% of rows,
    two model versions and a group whose predictions are noisier."""
    rng = np.random.default_rng(11)
    n = 4000
    ts = pd.Timestamp("2025-06-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 10 * 86400, n)), "s"
    )
    group = np.where(rng.uniform(size=n) < 0.35, "B", "A")
    truth = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.6 * np.eye(3)[truth]
    logits += np.where(group == "B", 1.5, 0.0)[:, None] * rng.normal(size=(n, 3))
    probas = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    guess = probas.argmax(axis=1)
    labelled = rng.uniform(size=n) < 0.7
    names = np.array(labels, dtype=object)
    frame = pd.DataFrame(
        {
            "timestamp": ts,
            "x": rng.normal(size=n),
            "model_version": np.where(np.arange(n) < n // 2, "v1", "v2"),
            "group": group,
            "prediction": names[guess],
            "label": pd.array(np.where(labelled, names[truth], None)),
            **{f"p_{labels[k]}": probas[:, k] for k in range(3)},
        }
    )
    if isinstance(labels[0], int):
        frame["prediction"] = frame["prediction"].astype("int64")
        frame["label"] = frame["label"].astype("Int64")
    frame.to_parquet(folder / "log.parquet")
    frame.iloc[:1000].to_parquet(folder / "ref.parquet")
    return frame

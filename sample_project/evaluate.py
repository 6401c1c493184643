"""Score the trained model on the validation rows and write ``metrics.json``.

The ``evaluate`` stage of ``dvc.yaml``: it reads the split written by ``prepare.py`` and the model
written by ``train.py --from-params``, so the figures describe exactly what the pipeline built.
``dvc metrics show`` and ``mltop`` both read the JSON file.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

from prepare import PREPARED, Split, load_prepared

MODEL_FILE = Path("models/model.joblib")
METRICS_FILE = Path("metrics.json")


def evaluate(model: Any, data: Split) -> dict[str, float]:
    pred = model.predict(data.X_val)
    if data.task == "regression":
        return {
            "rmse": float(np.sqrt(mean_squared_error(data.y_val, pred))),
            "mae": float(mean_absolute_error(data.y_val, pred)),
            "r2": float(r2_score(data.y_val, pred)),
        }
    scores = {
        "accuracy": float(accuracy_score(data.y_val, pred)),
        "f1_macro": float(f1_score(data.y_val, pred, average="macro")),
    }
    if hasattr(model, "predict_proba"):
        scores["log_loss"] = float(log_loss(data.y_val, model.predict_proba(data.X_val)))
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(MODEL_FILE), help="model written by train.py")
    parser.add_argument("--data", default=str(PREPARED), help="split written by prepare.py")
    parser.add_argument("--out", default=str(METRICS_FILE), help="where to write the metrics")
    args = parser.parse_args(argv)
    model_path = Path(args.model)
    if not model_path.exists():
        raise SystemExit(f"{model_path} not found: run `python train.py --from-params` first")
    data = load_prepared(Path(args.data))
    # joblib files are pickles: this one comes from this pipeline's own train stage.
    model = joblib.load(model_path)
    scores = evaluate(model, data)
    if not all(math.isfinite(v) for v in scores.values()):
        raise SystemExit(f"non-finite metrics: {scores}")
    Path(args.out).write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    print(f"{data.dataset} validation: " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

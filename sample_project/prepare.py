"""Load a bundled scikit-learn data set, split it and scale it.

The sweep in ``train.py`` calls :func:`make_split` directly; the ``prepare`` stage of ``dvc.yaml``
runs this file, which writes the same split to ``data/prepared.npz`` so the ``train`` and
``evaluate`` stages read exactly the rows this stage produced. Only data sets that ship inside
scikit-learn are used, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

PREPARED = Path("data/prepared.npz")

# name -> (loader, task)
DATASETS: dict[str, tuple[Callable[..., tuple[np.ndarray, np.ndarray]], str]] = {
    "digits": (load_digits, "classification"),
    "breast_cancer": (load_breast_cancer, "classification"),
    "diabetes": (load_diabetes, "regression"),
}


@dataclass(frozen=True)
class Split:
    """Train and validation rows, scaled with statistics of the training rows only."""

    dataset: str
    task: str
    X_train: np.ndarray
    X_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y_train)

    def describe(self) -> str:
        return (
            f"{self.dataset}: {len(self.y_train)} train / {len(self.y_val)} val rows, "
            f"{self.X_train.shape[1]} features ({self.task})"
        )


def make_split(dataset: str, test_size: float = 0.25, seed: int = 0) -> Split:
    """A deterministic split: the same arguments always give the same rows."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    loader, task = DATASETS[dataset]
    X, y = loader(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(
        X,
        y,
        test_size=test_size,
        random_state=seed,
        stratify=y if task == "classification" else None,
    )
    # Fitting the scaler on the training rows alone keeps validation rows unseen.
    scaler = StandardScaler().fit(X_train)
    return Split(
        dataset,
        task,
        scaler.transform(X_train),
        scaler.transform(X_val),
        np.asarray(y_train),
        np.asarray(y_val),
    )


def save_prepared(split: Split, path: Path = PREPARED) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        dataset=np.array(split.dataset),
        task=np.array(split.task),
        X_train=split.X_train,
        X_val=split.X_val,
        y_train=split.y_train,
        y_val=split.y_val,
    )


def load_prepared(path: Path = PREPARED) -> Split:
    """Read what :func:`save_prepared` wrote; plain arrays only, so no pickle is involved."""
    if not path.exists():
        raise SystemExit(f"{path} not found: run `python prepare.py` first")
    with np.load(path, allow_pickle=False) as data:
        return Split(
            str(data["dataset"]),
            str(data["task"]),
            data["X_train"],
            data["X_val"],
            data["y_train"],
            data["y_val"],
        )


def read_params(path: Path = Path("params.yaml")) -> dict:
    with open(path, encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise SystemExit(f"{path}: expected a mapping of stage names to parameters")
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    parser.add_argument("--out", default=str(PREPARED), help="where to write the split")
    args = parser.parse_args(argv)
    prep = read_params(Path(args.params)).get("prepare", {})
    split = make_split(
        str(prep.get("dataset", "digits")),
        float(prep.get("test_size", 0.25)),
        int(prep.get("seed", 0)),
    )
    save_prepared(split, Path(args.out))
    print(f"prepared {split.describe()} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a small sweep of scikit-learn models and log every run with mltop's run writer.

    python train.py                      # the whole sweep, about 10 s; one run fails on purpose
    python train.py --no-fail            # the sweep without the failing run
    python train.py --only digits/sgd-lr0.1 --only logreg-C1
    python train.py --live               # one slow run (about a minute) to watch live in mltop
    python train.py --from-params        # the dvc.yaml `train` stage: params.yaml -> model file
    python train.py --register           # the sweep, then register.py's releases (GTO tags)

Each run becomes a folder ``runs/<experiment>/<name>/`` holding its parameters, one metrics line
per epoch and the console output, so ``mltop`` (or ``tail -f``) can follow it while it trains.
Models are trained one epoch at a time (``partial_fit``, or ``warm_start`` growth for models
without it) so every run has a metric history rather than a single final number.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import joblib  # installed with scikit-learn
import numpy as np
from mltop.core.tracking import Run, start_run
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, r2_score
from sklearn.neural_network import MLPClassifier

from prepare import Split, load_prepared, make_split, read_params

MODEL_FILE = Path("models/model.joblib")


@dataclass(frozen=True)
class Config:
    """One training configuration of the sweep."""

    dataset: str
    name: str
    model: str  # a key of TRAINERS
    hp: dict[str, float] = field(default_factory=dict)
    epochs: int = 30
    seed: int = 0
    experiment: str = ""  # defaults to the data set's name
    expect_failure: bool = False
    sleep: float = 0.0  # seconds to wait after each epoch (the live run)

    @property
    def exp(self) -> str:
        return self.experiment or self.dataset

    @property
    def label(self) -> str:
        return f"{self.exp}/{self.name}"


SWEEP: list[Config] = [
    # digits: 10 classes, 64 pixel features
    Config("digits", "sgd-lr0.01", "sgd", {"lr": 0.01, "alpha": 1e-4}),
    Config("digits", "sgd-lr0.1", "sgd", {"lr": 0.1, "alpha": 1e-4}),
    Config("digits", "sgd-lr0.1-alpha0.01", "sgd", {"lr": 0.1, "alpha": 1e-2}),
    Config("digits", "mlp-lr0.1", "mlp", {"lr": 0.1, "alpha": 1e-4, "hidden": 64}),
    # Too large a learning rate: the weights overflow, the loss turns NaN and the run fails.
    Config(
        "digits",
        "mlp-lr3",
        "mlp",
        {"lr": 3.0, "alpha": 1e-4, "hidden": 64},
        40,
        expect_failure=True,
    ),
    Config("digits", "logreg-C0.1", "logreg", {"C": 0.1}, 20),
    Config("digits", "logreg-C1", "logreg", {"C": 1.0}, 20),
    Config("digits", "rf-depth4", "rf", {"max_depth": 4}, 20),
    Config("digits", "rf-depth12", "rf", {"max_depth": 12}, 20),
    # breast_cancer: 2 classes, 30 features
    Config("breast_cancer", "sgd-lr0.01", "sgd", {"lr": 0.01, "alpha": 1e-4}),
    Config("breast_cancer", "sgd-lr0.1", "sgd", {"lr": 0.1, "alpha": 1e-3}),
    Config("breast_cancer", "logreg-C1", "logreg", {"C": 1.0}, 20),
    Config("breast_cancer", "rf-depth6", "rf", {"max_depth": 6}, 20),
    # diabetes: regression of disease progression, 10 features
    Config("diabetes", "sgd-lr0.001", "sgd", {"lr": 0.001, "alpha": 1e-4}, 40),
    Config("diabetes", "sgd-lr0.01", "sgd", {"lr": 0.01, "alpha": 1e-4}, 40),
    Config("diabetes", "rf-depth6", "rf", {"max_depth": 6}, 20),
]

# A run slow enough to watch: one epoch per second for about a minute.
LIVE = Config("digits", "sgd-live", "sgd", {"lr": 0.05, "alpha": 1e-4}, 60, sleep=1.0)

# The learning rate of SGD runs decays as lr / (1 + DECAY * epoch).
DECAY = 0.05
TREES_PER_STEP = 5
LOGREG_ITERS_PER_STEP = 5


# -- metrics -------------------------------------------------------------------------------------


def _scores(model: Any, X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(log_loss, accuracy) from one predict_proba call; the loss is NaN for a diverged model."""
    with np.errstate(all="ignore"):
        proba = model.predict_proba(X)
    acc = float(np.mean(model.classes_[np.argmax(proba, axis=1)] == y))
    if not np.all(np.isfinite(proba)):
        return math.nan, acc
    return float(log_loss(y, proba, labels=classes)), acc


def classification_metrics(model: Any, data: Split) -> dict[str, float]:
    train_loss, train_acc = _scores(model, data.X_train, data.y_train, data.classes)
    val_loss, val_acc = _scores(model, data.X_val, data.y_val, data.classes)
    return {
        "train_loss": train_loss,
        "val_loss": val_loss,
        "train_acc": train_acc,
        "val_acc": val_acc,
    }


def regression_metrics(model: Any, data: Split) -> dict[str, float]:
    train_pred = model.predict(data.X_train)
    val_pred = model.predict(data.X_val)
    return {
        "train_rmse": float(np.sqrt(mean_squared_error(data.y_train, train_pred))),
        "val_rmse": float(np.sqrt(mean_squared_error(data.y_val, val_pred))),
        "val_mae": float(mean_absolute_error(data.y_val, val_pred)),
        "val_r2": float(r2_score(data.y_val, val_pred)),
    }


def metrics_for(model: Any, data: Split) -> dict[str, float]:
    if data.task == "classification":
        return classification_metrics(model, data)
    return regression_metrics(model, data)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def report_epoch(run: Run, cfg: Config, step: int, steps: int, values: dict[str, float]) -> None:
    """Log one step and print the line that ends up in the run's output.log."""
    run.log(step=step, **values)
    shown = {k: v for k, v in values.items() if k not in ("epoch_time", "lr")}
    if "train_loss" in shown:
        shown = {"loss": shown.pop("train_loss"), **shown}
    parts = " ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
    print(f"epoch {step}/{steps} {parts} ({values['epoch_time'] * 1000:.0f} ms)", flush=True)
    if cfg.sleep:
        time.sleep(cfg.sleep)


def check_finite(
    values: dict[str, float], step: int, cfg: Config, cause: BaseException | None = None
) -> None:
    """Stop a diverged run: nothing useful comes after a NaN loss."""
    bad = sorted(k for k, v in values.items() if not math.isfinite(v))
    if bad or cause is not None:
        lr = cfg.hp.get("lr")
        raise FloatingPointError(
            f"training diverged at epoch {step}: {', '.join(bad) or 'weights'} not finite"
            + (f" (learning rate {lr:g} is too high)" if lr is not None else "")
        ) from cause


# -- trainers: each fits one model step by step, logging as it goes ------------------------------


def _steps(cfg: Config) -> Iterator[tuple[int, float]]:
    """Yield (step, start time) for each epoch."""
    for step in range(1, cfg.epochs + 1):
        yield step, time.perf_counter()


def fit_sgd(cfg: Config, data: Split, run: Run) -> BaseEstimator:
    """SGD, one shuffled pass over the training rows per epoch, with a decaying learning rate."""
    rng = np.random.default_rng(cfg.seed)
    common = {
        "learning_rate": "constant",
        "eta0": cfg.hp["lr"],
        "alpha": cfg.hp.get("alpha", 1e-4),
        "random_state": cfg.seed,
    }
    if data.task == "classification":
        model: Any = SGDClassifier(loss="log_loss", **common)
    else:
        model = SGDRegressor(**common)
    for step, t0 in _steps(cfg):
        lr = cfg.hp["lr"] / (1 + DECAY * (step - 1))
        model.set_params(eta0=lr)
        order = rng.permutation(len(data.y_train))
        if data.task == "classification":
            model.partial_fit(data.X_train[order], data.y_train[order], classes=data.classes)
        else:
            model.partial_fit(data.X_train[order], data.y_train[order])
        values = {**metrics_for(model, data), "epoch_time": time.perf_counter() - t0, "lr": lr}
        report_epoch(run, cfg, step, cfg.epochs, values)
        check_finite(values, step, cfg)
    return model


def fit_mlp(cfg: Config, data: Split, run: Run) -> BaseEstimator:
    """A one-hidden-layer network trained with SGD and momentum, one epoch per partial_fit."""
    if data.task != "classification":
        raise ValueError("the mlp configuration is for classification data sets")
    model = MLPClassifier(
        hidden_layer_sizes=(int(cfg.hp.get("hidden", 64)),),
        solver="sgd",
        learning_rate_init=cfg.hp["lr"],
        momentum=0.9,
        alpha=cfg.hp.get("alpha", 1e-4),
        batch_size=64,
        random_state=cfg.seed,
    )
    for step, t0 in _steps(cfg):
        diverged: ValueError | None = None
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                model.partial_fit(data.X_train, data.y_train, classes=data.classes)
            except ValueError as exc:  # scikit-learn's own guard against non-finite weights
                if "non-finite" not in str(exc):
                    raise
                diverged = exc
            values = classification_metrics(model, data)
        values.update(
            # The objective the solver minimises: log loss plus the L2 penalty on the weights.
            objective=float(model.loss_),
            epoch_time=time.perf_counter() - t0,
            lr=cfg.hp["lr"],
        )
        report_epoch(run, cfg, step, cfg.epochs, values)
        check_finite(values, step, cfg, diverged)
    return model


def fit_logreg(cfg: Config, data: Split, run: Run) -> BaseEstimator:
    """L-BFGS logistic regression, resumed a few iterations at a time (``warm_start``)."""
    if data.task != "classification":
        raise ValueError("the logreg configuration is for classification data sets")
    model = LogisticRegression(
        C=cfg.hp.get("C", 1.0), max_iter=LOGREG_ITERS_PER_STEP, warm_start=True
    )
    for step, t0 in _steps(cfg):
        with warnings.catch_warnings():
            # Stopping after a few iterations is the point here, not a problem.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(data.X_train, data.y_train)
        values = {
            **classification_metrics(model, data),
            "epoch_time": time.perf_counter() - t0,
            "iterations": float(step * LOGREG_ITERS_PER_STEP),
        }
        report_epoch(run, cfg, step, cfg.epochs, values)
    return model


def fit_rf(cfg: Config, data: Split, run: Run) -> BaseEstimator:
    """A random forest grown a few trees per step (``warm_start`` keeps the earlier trees)."""
    kind = RandomForestClassifier if data.task == "classification" else RandomForestRegressor
    model = kind(
        n_estimators=TREES_PER_STEP,
        max_depth=int(cfg.hp["max_depth"]),
        warm_start=True,
        random_state=cfg.seed,
        n_jobs=1,
    )
    for step, t0 in _steps(cfg):
        model.set_params(n_estimators=step * TREES_PER_STEP)
        model.fit(data.X_train, data.y_train)
        values = {
            **metrics_for(model, data),
            "epoch_time": time.perf_counter() - t0,
            "n_trees": float(step * TREES_PER_STEP),
        }
        report_epoch(run, cfg, step, cfg.epochs, values)
    return model


TRAINERS: dict[str, Callable[[Config, Split, Run], BaseEstimator]] = {
    "sgd": fit_sgd,
    "mlp": fit_mlp,
    "logreg": fit_logreg,
    "rf": fit_rf,
}


# -- running configurations ----------------------------------------------------------------------


@dataclass
class Result:
    """How one configuration ended, for the summary and the exit code."""

    cfg: Config
    status: str
    final: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    model: BaseEstimator | None = None


def run_params(cfg: Config, data: Split) -> dict[str, Any]:
    return {
        "model": cfg.model,
        "dataset": data.dataset,
        "task": data.task,
        "epochs": cfg.epochs,
        "seed": cfg.seed,
        "n_train": len(data.y_train),
        "n_val": len(data.y_val),
        "n_features": data.X_train.shape[1],
        **cfg.hp,
    }


def train_one(cfg: Config, data: Split, out: Path, tags: dict[str, str] | None = None) -> Result:
    """Train one configuration as one mltop run; a failure is recorded, not raised."""
    if cfg.model not in TRAINERS:
        raise SystemExit(f"{cfg.label}: unknown model {cfg.model!r}; choose from {list(TRAINERS)}")
    run_tags = {"dataset": data.dataset, "model": cfg.model, **(tags or {})}
    if cfg.expect_failure:
        run_tags["expected"] = "diverges"
    t0 = time.perf_counter()
    model: BaseEstimator | None = None
    try:
        with start_run(
            out / cfg.exp,
            cfg.name,
            run_params(cfg, data),
            experiment=cfg.exp,
            tags=run_tags,
            capture_output=True,
        ) as run:
            hp = " ".join(f"{k}={v:g}" for k, v in cfg.hp.items())
            print(f"training {cfg.label}: {cfg.model} {hp} on {data.describe()}", flush=True)
            model = TRAINERS[cfg.model](cfg, data, run)
            final = metrics_for(model, data)
            shown = " ".join(f"{k}={_fmt(v)}" for k, v in final.items())
            print(f"done in {time.perf_counter() - t0:.1f} s: {shown}", flush=True)
    except Exception as exc:
        return Result(cfg, "FAILED", error=f"{type(exc).__name__}: {exc}")
    return Result(cfg, "FINISHED", final, model=model)


def print_summary(results: list[Result]) -> None:
    width = max((len(r.cfg.label) for r in results), default=10)
    print()
    for r in results:
        if r.status == "FINISHED":
            key = "val_acc" if "val_acc" in r.final else "val_rmse"
            detail = f"{key}={_fmt(r.final[key])}"
        else:
            detail = (r.error or "") + ("  (failed on purpose)" if r.cfg.expect_failure else "")
        print(f"{r.cfg.label:<{width}}  {r.status:<8}  {detail}")


def select(args: argparse.Namespace) -> list[Config]:
    if args.live:
        chosen = [LIVE]
    elif args.only:
        chosen = []
        for wanted in args.only:
            found = [c for c in [*SWEEP, LIVE] if wanted in (c.name, c.label)]
            if not found:
                names = ", ".join(c.label for c in SWEEP)
                raise SystemExit(f"no configuration named {wanted!r}; choose from {names}")
            chosen.extend(c for c in found if c not in chosen)
    else:
        chosen = [c for c in SWEEP if not (args.no_fail and c.expect_failure)]
    if args.epochs is not None:
        chosen = [replace(c, epochs=args.epochs) for c in chosen]
    if args.sleep is not None:
        chosen = [replace(c, sleep=args.sleep) for c in chosen]
    return chosen


def train_from_params(params_path: Path, out: Path) -> int:
    """The dvc ``train`` stage: train the ``train:`` section of params.yaml on the prepared data."""
    section = read_params(params_path).get("train", {})
    if not isinstance(section, dict) or "model" not in section:
        raise SystemExit(f"{params_path}: the train section needs at least `model:`")
    data = load_prepared()
    hp = {k: float(v) for k, v in section.items() if k not in ("model", "epochs", "seed")}
    cfg = Config(
        data.dataset,
        f"train-{section['model']}",
        str(section["model"]),
        hp,
        epochs=int(section.get("epochs", 30)),
        seed=int(section.get("seed", 0)),
        experiment="pipeline",
    )
    result = train_one(cfg, data, out, tags={"stage": "train"})
    if result.model is None:
        print(f"{cfg.label} failed: {result.error}", file=sys.stderr)
        return 1
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    # joblib pickles the model: load such files only from a pipeline you trust, as evaluate.py does.
    joblib.dump(result.model, MODEL_FILE)
    print(f"saved {MODEL_FILE}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the sample sweep and log each run with mltop.",
        epilog="Configurations: " + ", ".join(c.label for c in SWEEP),
    )
    parser.add_argument("--out", default="runs", help="folder for the runs (default: runs)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="train only this configuration (NAME or EXPERIMENT/NAME; repeatable)",
    )
    parser.add_argument(
        "--no-fail", action="store_true", help="skip the configuration that fails on purpose"
    )
    parser.add_argument(
        "--live", action="store_true", help="train one slow run (one epoch a second, ~1 minute)"
    )
    parser.add_argument("--epochs", type=int, help="override the number of epochs (steps)")
    parser.add_argument("--sleep", type=float, help="seconds to wait after each epoch")
    parser.add_argument(
        "--from-params",
        action="store_true",
        help="train the params.yaml configuration on data/prepared.npz (the dvc train stage)",
    )
    parser.add_argument(
        "--register",
        action="store_true",
        help="then release the best runs with GTO tags, as `python register.py` does",
    )
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if args.list:
        for c in [*SWEEP, LIVE]:
            print(f"{c.label:<32} {c.model:<7} epochs={c.epochs}" + (" (fails)" * c.expect_failure))
        return 0
    if args.from_params:
        return train_from_params(Path("params.yaml"), out)
    splits: dict[str, Split] = {}
    results: list[Result] = []
    try:
        for cfg in select(args):
            if cfg.dataset not in splits:
                splits[cfg.dataset] = make_split(cfg.dataset, seed=0)
            result = train_one(cfg, splits[cfg.dataset], out)
            if result.status == "FAILED":
                print(f"{cfg.label} failed: {result.error}", file=sys.stderr, flush=True)
            results.append(result)
    except KeyboardInterrupt:
        # The run being trained is already marked KILLED by the run writer.
        print("\ninterrupted", file=sys.stderr)
        return 130
    print_summary(results)
    print(f"\nruns written to {out}/ - open them with: mltop {out}")
    unexpected = [r for r in results if r.status == "FAILED" and not r.cfg.expect_failure]
    if args.register and not unexpected:
        # In this process: scikit-learn is imported already, a second of the release's time.
        from register import register

        return register(out, sorted({r.cfg.dataset for r in results}))
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())

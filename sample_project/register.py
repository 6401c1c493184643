"""Release the sweep's best models into the repository's model registry, the way GTO does it.

    python train.py && python register.py    # or: python train.py --register

For each data set, the two best finished sweep runs (by the primary metric: ``val_acc`` for
classification, ``val_rmse`` for regression) become two versions of that data set's artifact
(declared under ``artifacts:`` in dvc.yaml). Each release is a commit recording the chosen
configuration in ``releases/<artifact>.json``; the configuration is then trained once more at
that commit (a run in the ``release`` experiment, which records the commit, and the model file
the artifact's ``path`` names), and the commit is tagged as ``gto register`` and ``gto assign``
tag it: ``digits@v1.0.0`` (runner-up), ``digits@v1.1.0`` (best), then ``digits#prod#1`` on
v1.0.0 (what is served) and ``digits#champion#2`` on v1.1.0 (what should be served next).
All tags are annotated, as GTO makes them, so ``gto show`` reads the same registry.

Needs ``git`` and a repository (``git init && git add -A && git commit -m project``).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib  # installed with scikit-learn

from prepare import make_split
from train import Config, train_one

#: The artifact each data set's models are released as (GTO names: lowercase, digits, dashes).
ARTIFACTS = {"digits": "digits", "breast_cancer": "breast-cancer", "diabetes": "diabetes"}
#: The metric a release is chosen by, and whether higher is better.
PRIMARY = {"classification": ("val_acc", True), "regression": ("val_rmse", False)}
RELEASES = Path("releases")
EXPERIMENT = "release"
#: The sweep's params that describe the data or the schedule rather than the model.
_NOT_HP = {"model", "dataset", "task", "epochs", "seed", "n_train", "n_val", "n_features"}


@dataclass(frozen=True)
class Candidate:
    """A finished sweep run and its final value of the primary metric."""

    name: str
    value: float
    params: dict[str, Any]


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def _last_values(metrics: Path) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        if line.strip():
            values.update({k: v for k, v in json.loads(line).items() if k not in ("step", "ts")})
    return values


def candidates(runs: Path, dataset: str) -> tuple[str, list[Candidate]]:
    """The data set's finished sweep runs, best first, and the metric they were ranked by."""
    found: list[Candidate] = []
    key, higher = "", True
    for meta_file in sorted((runs / dataset).glob("*/mltop-run.json")):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("status") != "FINISHED":
            continue
        params = json.loads((meta_file.parent / "params.json").read_text(encoding="utf-8"))
        key, higher = PRIMARY[params["task"]]
        value = _last_values(meta_file.parent / "metrics.jsonl").get(key, math.nan)
        if math.isfinite(value):
            found.append(Candidate(str(meta["name"]), float(value), params))
    found.sort(key=lambda c: -c.value if higher else c.value)
    return key, found


def release(artifact: str, dataset: str, chosen: Candidate, key: str, version: str) -> str:
    """Commit the chosen configuration, train it at that commit and tag the commit; its sha."""
    p = chosen.params
    hp = {k: v for k, v in p.items() if k not in _NOT_HP}
    epochs, seed = int(p["epochs"]), int(p["seed"])
    cfg = Config(dataset, f"{artifact}-v{version}", p["model"], hp, epochs, seed, EXPERIMENT)
    RELEASES.mkdir(exist_ok=True)
    config = {"model": cfg.model, "epochs": epochs, "seed": seed, **hp}
    record = {"artifact": artifact, "version": version, "from_run": f"{dataset}/{chosen.name}"}
    record.update({key: chosen.value, "config": config})
    path = RELEASES / f"{artifact}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    message = f"{artifact} v{version}: {chosen.name} ({key} {chosen.value:.4g})"
    git("add", str(path))
    git("commit", "-q", "-m", f"release {message}")
    sha = git("rev-parse", "HEAD")
    result = train_one(cfg, make_split(dataset, seed=0), Path("runs"), tags={"release": version})
    if result.model is None:
        raise SystemExit(f"{artifact} v{version}: training failed: {result.error}")
    Path("models").mkdir(exist_ok=True)
    # joblib pickles the model: load such files only from a pipeline you trust.
    joblib.dump(result.model, Path("models") / f"{artifact}.joblib")
    git("tag", "-a", f"{artifact}@v{version}", sha, "-m", f"Registering {message}")
    return sha


def register(runs: Path, datasets: list[str]) -> int:
    for dataset in datasets:
        artifact = ARTIFACTS[dataset]
        if git("tag", "--list", f"{artifact}@*"):
            print(f"{artifact}: already registered (git tag --list '{artifact}@*')")
            continue
        key, ranked = candidates(runs, dataset)
        if not ranked:
            print(f"{artifact}: no finished run of {dataset} to release", file=sys.stderr)
            continue
        best, runner_up = ranked[0], ranked[1:2]
        number = 0
        if runner_up:
            first = release(artifact, dataset, runner_up[0], key, "1.0.0")
            number += 1
            git("tag", "-a", f"{artifact}#prod#{number}", first, "-m", f"{artifact} v1.0.0 to prod")
        version = "1.1.0" if runner_up else "1.0.0"
        sha = release(artifact, dataset, best, key, version)
        number += 1
        stage = "champion" if runner_up else "prod"
        git(
            "tag", "-a", f"{artifact}#{stage}#{number}", sha, "-m", f"{artifact} v{version} {stage}"
        )
        print(f"registered {artifact}: v{version} {best.name} ({key} {best.value:.4g}) @{stage}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Release the sweep's best models with GTO tags.")
    parser.add_argument("--runs", default="runs", help="the sweep's runs (default: runs)")
    parser.add_argument("--dataset", action="append", choices=sorted(ARTIFACTS), help="only these")
    args = parser.parse_args(argv)
    return register(Path(args.runs), args.dataset or list(ARTIFACTS))


if __name__ == "__main__":
    raise SystemExit(main())

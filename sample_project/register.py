"""Release the best trained models into the repository's model registry, the way GTO does it.

    python train.py && python register.py    # or: python train.py --register
    dvc repro                                # the pipeline's `register` stage

For each data set, the two best finished runs (by the primary metric: ``val_acc`` for
classification, ``val_rmse`` for regression) become two versions of that data set's artifact
(declared under ``artifacts:`` in dvc.yaml). The runs are the sweep's (``runs/<data set>/``);
without a sweep of a data set, the pipeline's own ``train`` runs of it (``runs/pipeline/``).
Each release is a commit recording the chosen configuration in ``releases/<artifact>.json``;
the configuration is then trained once more at that commit (a run in the ``release``
experiment, which records the commit, and the model file the artifact's ``path`` names), and
the commit is tagged as ``gto register`` and ``gto assign`` tag it: ``digits@v1.0.0``
(runner-up), ``digits@v1.1.0`` (best), then ``digits#prod#1`` on v1.0.0 (what is served) and
``digits#champion#2`` on v1.1.0 (what should be served next). One run of a data set is
released alone, as v1.0.0 at ``prod``. All tags are annotated, as GTO makes them, so
``gto show`` reads the same registry. When this folder is a subfolder of its repository, the
artifacts are GTO's ``path/to:name`` (tags ``path/to=name@v1.0.0``), as DVC names artifacts
declared outside the repository's root.

An artifact's tags are made only once all its releases trained; if one cannot be made, those
already made are deleted again, so an artifact is released whole or not at all. An artifact
that already has versions is left alone, so running it twice changes nothing. Outside a git
repository (GTO's registry is git tags) nothing is released: it says so and exits 0, so a
pipeline run in a plain folder carries on. Either way ``registry.json`` records what happened
(the pipeline stage's output).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
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
RECORD = Path("registry.json")
EXPERIMENT = "release"
#: Where the dvc.yaml `train` stage logs its runs (train.py --from-params).
PIPELINE = "pipeline"
#: The sweep's params that describe the data or the schedule rather than the model.
_NOT_HP = {"model", "dataset", "task", "epochs", "seed", "n_train", "n_val", "n_features"}


@dataclass(frozen=True)
class Candidate:
    """A finished run and its final value of the primary metric."""

    run: str  # experiment/name
    value: float
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return self.run.split("/", 1)[1]


class GitFailed(Exception):
    """A git command failed; the message says which and why."""


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise GitFailed(f"git {' '.join(args)} failed: {last}")
    return out.stdout.strip()


def repository_path() -> str | None:
    """This folder's path in its git repository (``""`` at its root); None outside one."""
    if shutil.which("git") is None:
        return None
    try:
        return git("rev-parse", "--show-prefix").rstrip("/")
    except GitFailed:
        return None


def tag_name(path: str, artifact: str) -> str:
    """How GTO writes an artifact in a tag: ``path/to=name`` (git refuses ``:`` in a tag)."""
    return f"{path}={artifact}" if path else artifact


def _last_values(metrics: Path) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        if line.strip():
            values.update({k: v for k, v in json.loads(line).items() if k not in ("step", "ts")})
    return values


def _finished(folder: Path, dataset: str) -> tuple[str, list[Candidate]]:
    found: list[Candidate] = []
    key, higher = "", True
    for meta_file in sorted(folder.glob("*/mltop-run.json")):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("status") != "FINISHED":
            continue
        params = json.loads((meta_file.parent / "params.json").read_text(encoding="utf-8"))
        if params.get("dataset") != dataset:
            continue
        key, higher = PRIMARY[params["task"]]
        value = _last_values(meta_file.parent / "metrics.jsonl").get(key, math.nan)
        if math.isfinite(value):
            found.append(Candidate(f"{folder.name}/{meta['name']}", float(value), params))
    found.sort(key=lambda c: -c.value if higher else c.value)
    return key, found


def candidates(runs: Path, dataset: str) -> tuple[str, list[Candidate]]:
    """The data set's finished runs, best first, and the metric they were ranked by: the
    sweep's, or without any, the pipeline's ``train`` runs of that data set."""
    key, found = _finished(runs / dataset, dataset)
    if found:
        return key, found
    return _finished(runs / PIPELINE, dataset)


@dataclass(frozen=True)
class Release:
    version: str
    stage: str
    chosen: Candidate
    sha: str


def release(artifact: str, dataset: str, chosen: Candidate, key: str, version: str) -> str:
    """Commit the chosen configuration and train it at that commit; the commit's sha."""
    p = chosen.params
    hp = {k: v for k, v in p.items() if k not in _NOT_HP}
    epochs, seed = int(p["epochs"]), int(p["seed"])
    cfg = Config(dataset, f"{artifact}-v{version}", p["model"], hp, epochs, seed, EXPERIMENT)
    RELEASES.mkdir(exist_ok=True)
    config = {"model": cfg.model, "epochs": epochs, "seed": seed, **hp}
    record = {"artifact": artifact, "version": version, "from_run": chosen.run}
    record.update({key: chosen.value, "config": config})
    path = RELEASES / f"{artifact}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    message = f"{artifact} v{version}: {chosen.name} ({key} {chosen.value:.4g})"
    git("add", str(path))
    # Only the release record: whatever else is staged stays staged, uncommitted.
    git("commit", "-q", "--allow-empty", "-m", f"release {message}", "--", str(path))
    sha = git("rev-parse", "HEAD")
    result = train_one(cfg, make_split(dataset, seed=0), Path("runs"), tags={"release": version})
    if result.model is None:
        raise GitFailed(f"{artifact} v{version}: training failed: {result.error}")
    Path("models").mkdir(exist_ok=True)
    # joblib pickles the model: load such files only from a pipeline you trust.
    joblib.dump(result.model, Path("models") / f"{artifact}.joblib")
    return sha


def tag_releases(name: str, shown: str, releases: list[Release], key: str) -> None:
    """The versions' and stages' annotated tags, all or none of them."""
    made: list[str] = []
    try:
        for number, r in enumerate(releases, 1):
            what = f"{shown} v{r.version}: {r.chosen.name} ({key} {r.chosen.value:.4g})"
            for tag, message in (
                (f"{name}@v{r.version}", f"Registering {what}"),
                (f"{name}#{r.stage}#{number}", f"{shown} v{r.version} {r.stage}"),
            ):
                git("tag", "-a", tag, r.sha, "-m", message)
                made.append(tag)
    except GitFailed:
        for tag in made:
            subprocess.run(["git", "tag", "-d", tag], capture_output=True, check=False)
        raise


def register_artifact(dataset: str, runs: Path, path: str) -> dict[str, Any]:
    """Release one data set's artifact; what was done, for the record."""
    artifact = ARTIFACTS[dataset]
    name = tag_name(path, artifact)
    shown = f"{path}:{artifact}" if path else artifact
    existing = git("tag", "--list", f"{name}@*").split()
    if existing:
        print(f"{shown}: already registered ({', '.join(existing)})")
        return {"artifact": shown, "kept": existing}
    key, ranked = candidates(runs, dataset)
    if not ranked:
        print(f"{shown}: no finished run of {dataset} to release")
        return {"artifact": shown, "released": []}
    best, runner_up = ranked[0], ranked[1:2]
    plan = [("1.0.0", "prod", runner_up[0])] if runner_up else []
    plan.append(("1.1.0", "champion", best) if runner_up else ("1.0.0", "prod", best))
    releases = [
        Release(version, stage, chosen, release(artifact, dataset, chosen, key, version))
        for version, stage, chosen in plan
    ]
    tag_releases(name, shown, releases, key)
    last = releases[-1]
    print(f"registered {shown}: v{last.version} {best.run} ({key} {best.value:.4g}) @{last.stage}")
    return {
        "artifact": shown,
        "released": [
            {"version": r.version, "stage": r.stage, "from_run": r.chosen.run, key: r.chosen.value}
            for r in releases
        ],
    }


def register(runs: Path, datasets: list[str], record: Path = RECORD) -> int:
    path = repository_path()
    if path is None:
        reason = "not a git repository: nothing released (GTO versions are git tags)"
        print(f"register: {Path.cwd()} is {reason}")
        done: dict[str, Any] = {"repository": False, "reason": reason, "artifacts": []}
        record.write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
        return 0
    try:
        git("var", "GIT_COMMITTER_IDENT")
    except GitFailed:
        print(
            "register: git has no user.name and user.email here: nothing released", file=sys.stderr
        )
        return 1
    artifacts: list[dict[str, Any]] = []
    status = 0
    for dataset in datasets:
        try:
            artifacts.append(register_artifact(dataset, runs, path))
        except GitFailed as exc:
            print(f"register: {ARTIFACTS[dataset]} not released: {exc}", file=sys.stderr)
            artifacts.append({"artifact": ARTIFACTS[dataset], "error": str(exc)})
            status = 1
    done = {"repository": True, "artifacts": artifacts}
    record.write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Release the best runs with GTO tags.")
    parser.add_argument("--runs", default="runs", help="the runs (default: runs)")
    parser.add_argument("--dataset", action="append", choices=sorted(ARTIFACTS), help="only these")
    parser.add_argument("--record", default=str(RECORD), help="what was done (registry.json)")
    args = parser.parse_args(argv)
    return register(Path(args.runs), args.dataset or list(ARTIFACTS), Path(args.record))


if __name__ == "__main__":
    raise SystemExit(main())

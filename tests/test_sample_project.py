"""The bundled sample project trains for real, and mltop reads back what it logged.

The demo (the whole default sweep) runs once per module; the flag tests train one or two fast
configurations in their own copies, always with this interpreter in a subprocess, exactly as
``mltop demo`` and a user would.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from mltop.core.demo import IGNORE, prepare_demo, sample_project_dir
from mltop.core.discovery import ingest
from mltop.core.entities import Run
from mltop.core.store import Store, open_memory_store

SWEEP = {
    "digits": {
        "sgd-lr0.01",
        "sgd-lr0.1",
        "sgd-lr0.1-alpha0.01",
        "mlp-lr0.1",
        "mlp-lr3",
        "logreg-C0.1",
        "logreg-C1",
        "rf-depth4",
        "rf-depth12",
    },
    "breast_cancer": {"sgd-lr0.01", "sgd-lr0.1", "logreg-C1", "rf-depth6"},
    "diabetes": {"sgd-lr0.001", "sgd-lr0.01", "rf-depth6"},
}
FAILING = ("digits", "mlp-lr3")


def copy_project(dest: Path) -> Path:
    shutil.copytree(sample_project_dir(), dest, ignore=IGNORE)
    return dest


def run_script(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr[-2000:]}"
    return result


def mltop_runs(store: Store) -> dict[tuple[str, str], Run]:
    return {(r.experiment or "", r.name): r for r in store.runs() if r.source_kind == "mltop"}


def history(store: Store, run: Run, key: str) -> list[float]:
    return store.history(run.id, key).column("value").to_pylist()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    messages: list[str] = []
    folder = prepare_demo(tmp_path_factory.mktemp("demo") / "sample_project", log=messages.append)
    assert not [m for m in messages if "exited with" in m], messages
    return folder


@pytest.fixture(scope="module")
def demo_store(demo: Path) -> Iterator[Store]:
    store = open_memory_store()
    report = ingest(demo, store)
    assert report.problems == []
    yield store
    store.close()


def test_demo_trains_every_configuration_and_one_fails(demo: Path, demo_store: Store):
    runs = mltop_runs(demo_store)
    expected = {(exp, name) for exp, names in SWEEP.items() for name in names}
    # register.py's releases: the two best runs of each data set, trained at their commits.
    releases = {
        ("release", f"{model}-v{version}")
        for model in ("digits", "breast-cancer", "diabetes")
        for version in ("1.0.0", "1.1.0")
    }
    assert set(runs) == expected | releases
    assert {key for key, r in runs.items() if r.status != "FINISHED"} == {FAILING}
    assert (demo / "runs" / "digits" / "sgd-lr0.1" / "metrics.jsonl").exists()
    assert not (demo / "__init__.py").exists()


def test_demo_serves_the_model_for_thirty_days_for_its_monitor(demo: Path):
    assert (demo / ".mltop" / "monitor.yaml").is_file()
    log = pq.read_table(demo / "data" / "predictions.parquet")
    days = pc.unique(pc.floor_temporal(log.column("timestamp"), unit="day"))
    assert len(days) == 30 and log.num_rows >= 30 * 150
    assert pq.read_table(demo / "data" / "reference.parquet").num_rows == 1200


def test_demo_runs_carry_params_tags_and_histories(demo_store: Store):
    for (exp, name), run in mltop_runs(demo_store).items():
        params = demo_store.params(run.id)
        dataset = params["dataset"]
        assert params["seed"] == "0"
        assert demo_store.tags(run.id)["dataset"] == dataset
        if exp == "release":  # register.py's: named for the model and version it releases
            assert name.startswith(dataset.replace("_", "-") + "-v")
        else:
            assert (exp, params["model"]) == (dataset, name.split("-")[0])
        if (exp, name) == FAILING:
            continue
        key = "val_rmse" if dataset == "diabetes" else "val_acc"
        values = history(demo_store, run, key)
        assert 20 <= len(values) <= 50
        assert len(values) == int(params["epochs"])
        assert all(math.isfinite(v) for v in values)
        assert len(history(demo_store, run, "epoch_time")) == len(values)
        log = Path(run.location) / "output.log"
        assert [str(log)] == [f.path for f in demo_store.logs(run.id)]
        text = log.read_text(encoding="utf-8")
        assert f"epoch 1/{len(values)} " in text
        assert f"epoch {len(values)}/{len(values)} " in text


def test_demo_models_learn(demo_store: Store):
    runs = mltop_runs(demo_store)
    sgd = runs[("digits", "sgd-lr0.1")]
    loss = history(demo_store, sgd, "train_loss")
    assert loss[-1] < loss[0] / 2
    assert history(demo_store, sgd, "val_acc")[-1] > 0.9
    lr = history(demo_store, sgd, "lr")
    assert lr[0] == pytest.approx(0.1) and lr[-1] < lr[0]
    assert history(demo_store, runs[("diabetes", "sgd-lr0.01")], "val_r2")[-1] > 0.3
    assert history(demo_store, runs[("digits", "rf-depth12")], "n_trees")[-1] == 100


def test_diverging_run_ends_failed_with_its_message_and_a_nan_loss(demo_store: Store):
    run = mltop_runs(demo_store)[FAILING]
    assert run.status == "FAILED"
    assert run.error is not None
    assert run.error.startswith("FloatingPointError: training diverged at epoch")
    assert "learning rate 3 is too high" in run.error
    loss = history(demo_store, run, "train_loss")
    assert 2 <= len(loss) < 40
    assert math.isnan(loss[-1]) and math.isfinite(loss[0])
    objective = history(demo_store, run, "objective")
    assert objective[-2] > objective[0] * 1e100
    log = (Path(run.location) / "output.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "loss=nan" in log
    assert demo_store.tags(run.id)["expected"] == "diverges"


def test_only_and_out_train_just_the_named_configurations(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    out = tmp_path / "elsewhere"
    run_script(
        project,
        "train.py",
        "--only",
        "diabetes/sgd-lr0.01",
        "--only",
        "logreg-C1",
        "--out",
        str(out),
    )
    assert not (project / "runs").exists()
    store = open_memory_store()
    ingest(out, store)
    runs = mltop_runs(store)
    assert set(runs) == {
        ("diabetes", "sgd-lr0.01"),
        ("digits", "logreg-C1"),
        ("breast_cancer", "logreg-C1"),
    }
    assert all(r.status == "FINISHED" for r in runs.values())
    assert len(history(store, runs[("diabetes", "sgd-lr0.01")], "val_mae")) == 40


def test_live_run_logs_one_line_per_epoch(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    run_script(project, "train.py", "--live", "--epochs", "3", "--sleep", "0")
    folder = project / "runs" / "digits" / "sgd-live"
    lines = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert json.loads((folder / "mltop-run.json").read_text())["status"] == "FINISHED"


def test_dvc_stage_commands_run_in_order_without_dvc(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert list(pipeline["stages"]) == [
        "prepare",
        "train",
        "evaluate",
        "register",
        "serve",
        "monitor",
    ]
    for name, stage in pipeline["stages"].items():
        for dep in stage["deps"]:
            assert (project / dep).exists(), f"{name}: dependency {dep} missing before it runs"
        for param in stage.get("params", []):
            section, _, key = param.partition(".")
            assert section in params and (not key or key in params[section]), param
        argv = shlex.split(stage["cmd"])
        if argv[0] == "mltop":  # mltop's own command, its output redirected to a file
            assert argv[-2] == ">"
            done = run_script(project, "-m", "mltop.core.cli", *argv[1:-2])
            (project / argv[-1]).write_text(done.stdout, encoding="utf-8")
        else:
            assert argv[0] == "python"
            run_script(project, *argv[1:])
        produced = [*stage.get("outs", []), *stage.get("metrics", [])]
        for out in produced:
            path = out if isinstance(out, str) else next(iter(out))
            assert (project / path).exists(), f"{name}: {path} not written"
    metrics = json.loads((project / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["accuracy"] > 0.9
    assert set(metrics) == {"accuracy", "f1_macro", "log_loss"}
    monitor = json.loads((project / "monitor.json").read_text(encoding="utf-8"))
    assert len(monitor["windows"]) == 30
    # No git here: the register stage releases nothing, says so, and the pipeline carries on.
    registered = json.loads((project / "registry.json").read_text(encoding="utf-8"))
    assert registered["repository"] is False and registered["artifacts"] == []
    assert not (project / "releases").exists()
    store = open_memory_store()
    ingest(project / "runs", store)
    assert set(mltop_runs(store)) == {("pipeline", "train-sgd")}


def test_ci_workflow_lints_tests_and_runs_the_pipeline_commands():
    project = sample_project_dir()
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text("utf-8"))
    jobs = workflow["jobs"]
    assert set(jobs) == {"lint", "test", "pipeline"}
    assert jobs["test"]["needs"] == "lint" and jobs["pipeline"]["needs"] == "test"

    def commands(job: str) -> list[str]:
        return [step["run"] for step in jobs[job]["steps"] if "run" in step]

    assert any(c.startswith("ruff check") for c in commands("lint"))
    assert any(
        "pytest tests" in c and "--junitxml=reports/junit.xml" in c for c in commands("test")
    )
    stages = yaml.safe_load((project / "dvc.yaml").read_text("utf-8"))["stages"]
    pipeline_cmds = [c for c in commands("pipeline") if c.startswith(("python ", "mltop "))]
    # Releasing is a tag pushed by whoever releases, not something every CI run does.
    assert pipeline_cmds == [s["cmd"] for name, s in stages.items() if name != "register"]


def test_sample_projects_own_tests_pass_as_its_ci_runs_them(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    run_script(
        project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=reports/junit.xml"
    )
    assert "<testsuite" in (project / "reports" / "junit.xml").read_text(encoding="utf-8")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def _run_ids(folder: Path) -> dict[str, str]:
    """{run id: location} as `mltop runs FOLDER --json` prints them."""
    return {r["id"]: r["location"] for r in json.loads(_cli("runs", str(folder), "--json").stdout)}


def test_a_copied_moved_or_pruned_project_shows_exactly_the_runs_under_it(
    demo: Path, tmp_path: Path
):
    project = tmp_path / "proj"
    shutil.copytree(demo, project, ignore=shutil.ignore_patterns(".mltop"))
    original = _run_ids(project)
    assert len(original) == 16 + 6  # the sweep and register.py's releases

    # `cp -r proj A` copies the store in .mltop/ too: it still indexes only A, by the same ids.
    copied = tmp_path / "A"
    shutil.copytree(project, copied)
    runs = _run_ids(copied)
    assert set(runs) == set(original)
    assert all(Path(where).is_relative_to(copied) for where in runs.values())

    # `mv A B`: nothing changed in the files, so the re-scan reads none of them again.
    moved = tmp_path / "B"
    copied.rename(moved)
    rescan = _cli("ingest", str(moved)).stdout
    assert "points added" not in rescan
    assert rescan.startswith("23 sources, 22 runs, 3,")  # the runs and the GTO registry
    runs = _run_ids(moved)
    assert set(runs) == set(original)
    assert all(Path(where).is_relative_to(moved) for where in runs.values())

    # The original folder goes; then one experiment's runs go from the moved copy.
    shutil.rmtree(project)
    assert set(_run_ids(moved)) == set(original)
    gone = next(p for p in (moved / "runs").iterdir() if p.is_dir())
    lost = {i for i, where in runs.items() if Path(where).is_relative_to(gone)}
    shutil.rmtree(gone)
    assert lost and set(_run_ids(moved)) == set(original) - lost

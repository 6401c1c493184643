"""DVC projects and DVCLive folders against ``dvc exp show --json`` (tests/fixtures/dvc).

The fixture is a real git+DVC project (DVC 3.67, DVCLive 3.49): a 4-stage pipeline, DVCLive
per-epoch TSVs, four experiments in git refs, one queued experiment, an ``exp branch`` and an
``exp apply`` committed on main. Its oracle was captured after those steps (state "B").
"""

from __future__ import annotations

import calendar
import json
import math
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import stores
from helpers.fixtures import untar

from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport, SourceRef, Status
from mltop.core.importers import dvc, dvc_git, dvclive
from mltop.core.importers.dvc import EXP_KIND, KIND, commit_run_id, workspace_id
from mltop.core.store import Store, open_memory_store

FIXTURES = Path(__file__).parent / "fixtures" / "dvc"
ORACLE = FIXTURES / "oracle"
BASELINE = "41e5e79fd0c4259dc377c1b168481411e2199cee"
EXP_PREFIX = f"refs/exps/41/{BASELINE[2:]}/"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return untar(FIXTURES / "dvc-project.tar.gz", tmp_path)


def import_project(store: Store, root: Path) -> ImportReport:
    report = ImportReport()
    dvc.IMPORTER.import_sources(store, [SourceRef(KIND, root)], report)
    return report


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def leaves(data: dict[str, Any], sep: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every value under nested ``data``, named by its keys joined with ``sep``."""
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else key
        if isinstance(value, dict):
            yield from leaves(value, sep, name)
        else:
            yield name, value


def flat_params(data: dict[str, Any]) -> dict[str, str]:
    """params.yaml as DVC lists its params: dotted names, YAML's booleans as written."""
    return {
        name: "true" if value is True else "false" if value is False else str(value)
        for name, value in leaves(data, ".")
    }


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Final values of every metrics file, named as DVCLive names them (``train/loss``), with
    DVCLive's ``step`` among them as ``dvc exp show`` lists it."""
    files = [entry["data"] for entry in metrics.values()]
    return {name: float(value) for data in files for name, value in leaves(data, "/")}


def oracle_entries() -> dict[str, dict[str, Any]]:
    """name -> exp show data, for the workspace, commits and experiments (state B)."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in json.loads((ORACLE / "B_exp_show_all_commits.json").read_text()):
        entries[entry["name"] or entry["rev"]] = {**entry["data"], "status": "done"}
        for exp in entry.get("experiments") or []:
            rev = exp["revs"][0]
            state = (exp.get("executor") or {}).get("state", "done")
            entries[rev["name"]] = {**rev["data"], "status": state, "baseline": entry["rev"]}
    return entries


def local_epoch(text: str) -> float:
    # exp show prints local time without a zone; the fixture's clock was UTC.
    return float(calendar.timegm(datetime.fromisoformat(text).timetuple()))


def by_name(store: Store) -> dict[str, Any]:
    return {run.name: run for run in store.runs()}


def snapshot(store: Store) -> list[Any]:
    # A workspace or dvclive run ends at the ``updated`` time its importer gives it
    # (core/importers/dvc.py, dvclive.py), so end_time differs between imports as updated does.
    return stores.snapshot(store, drop=("updated", "end_time"))


# -- against dvc exp show ------------------------------------------------------------------------


@needs_git
def test_runs_match_dvc_exp_show(project: Path) -> None:
    store = open_memory_store()
    report = import_project(store, project)
    assert report.problems == []
    runs = by_name(store)
    oracle = oracle_entries()
    expected = {"workspace", "main", "baseline", "alpha-high", "snuff-pein", "lr-0.05"}
    expected |= {"lr-0.001", "queued-lr-0.2"}
    assert set(runs) == expected
    for name in expected:
        run, data = runs[name], oracle[name]
        assert store.params(run.id) == flat_params(data["params"]["params.yaml"]["data"]), name
        summaries = store.summaries([run.id])[run.id]
        assert {k: s.last for k, s in summaries.items()} == flat_metrics(data["metrics"]), name
        assert run.experiment == "dvc-project"
        if name == "workspace":
            assert run.source_kind == KIND and run.status == Status.FINISHED
            assert run.git_commit == "471e2de6295d03dbaaaecf2771edec70642abea6"
            continue
        assert run.native_id == data["rev"] == run.git_commit
        assert run.start_time == local_epoch(data["timestamp"]), name
        if "baseline" in data:
            assert run.source_kind == EXP_KIND
            assert run.parent_id == commit_run_id(project, data["baseline"])
            assert store.tags(run.id)["dvc.baseline"] == data["baseline"]
            queued = data["status"] == "queued"
            assert run.status == (Status.SCHEDULED if queued else Status.FINISHED)
        else:
            assert run.source_kind == KIND and run.parent_id is None
    # Experiments carry their per-epoch histories: one point per TSV row.
    for name in ("alpha-high", "lr-0.001"):
        step = oracle[name]["metrics"]["dvclive/metrics.json"]["data"]["step"]
        for key, summary in store.summaries([runs[name].id])[runs[name].id].items():
            if key.startswith(("train/", "val/")):
                assert (summary.count, summary.first_step, summary.last_step) == (
                    step + 1,
                    0,
                    step,
                )


@needs_git
def test_histories_equal_the_tsvs_in_each_experiment_commit(project: Path) -> None:
    store = open_memory_store()
    import_project(store, project)
    run = by_name(store)["snuff-pein"]
    for key in ("train/loss", "val/acc"):
        text = git(project, "show", f"{run.native_id}:dvclive/plots/metrics/{key}.tsv")
        rows = [line.split("\t") for line in text.splitlines()[1:]]
        stored = store.history(run.id, key).to_pylist()
        assert [(p["step"], p["value"]) for p in stored] == [(int(s), float(v)) for s, v in rows]


def test_workspace_matches_exp_show_head(project: Path) -> None:
    store = open_memory_store()
    report = ImportReport()
    dvc.IMPORTER._workspace(store, project, {}, report)
    assert report.problems == []
    head = json.loads((ORACLE / "B_exp_show_head.json").read_text())[0]["data"]
    run = store.run(workspace_id(project))
    assert run is not None and run.name == "workspace"
    assert store.params(run.id) == flat_params(head["params"]["params.yaml"]["data"])
    summaries = store.summaries([run.id])[run.id]
    assert {k: s.last for k, s in summaries.items()} == flat_metrics(head["metrics"])
    assert summaries["val/loss"].count == 20


@needs_git
def test_discovery_reads_the_project_once_and_claims_its_dvclive_folders(project: Path) -> None:
    detection = dvc.IMPORTER.detect(
        project,
        ["data", "dvclive", "eval", "src"],
        sorted(p.name for p in project.iterdir() if p.is_file()),
    )
    assert detection is not None and [r.location for r in detection.refs] == [project]
    assert {"dvc.yaml", "dvc.lock", "params.yaml"} <= detection.claimed
    live = project / "dvclive"
    detection = dvclive.IMPORTER.detect(live, ["plots"], ["metrics.json"])
    assert detection is not None and detection.refs == [] and detection.prune
    store = open_memory_store()
    report = ingest(project, store, importers=[dvc.IMPORTER, dvclive.IMPORTER])
    assert report.problems == []
    assert report.counts[KIND].runs == 3 and report.counts[EXP_KIND].runs == 5
    assert len(store.runs()) == 8


@needs_git
def test_unchanged_rescan_does_not_run_git(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_memory_store()
    import_project(store, project)
    before = (store.table_counts(), snapshot(store))

    def no_git(*args: object, **kwargs: object) -> None:
        raise AssertionError("git ran on an unchanged rescan")

    monkeypatch.setattr(dvc_git.subprocess, "run", no_git)
    report = import_project(store, project)
    assert report.counts == {} and report.problems == []
    assert (store.table_counts(), snapshot(store)) == before


# -- changes -------------------------------------------------------------------------------------


def test_growing_dvclive_tsvs_are_read_incrementally(project: Path) -> None:
    store = open_memory_store()
    report = ImportReport()
    dvc.IMPORTER._workspace(store, project, {}, report)
    plots = project / "dvclive" / "plots" / "metrics"
    for step in range(20, 25):
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            with open(plots / f"{key}.tsv", "a") as fh:
                fh.write(f"{step}\t{1.0 / step}\n")
        with open(plots / "train" / "loss.tsv", "a") as fh:
            fh.write("25\t0.5")  # a line still being written is left for later
        report = ImportReport()
        dvc.IMPORTER._workspace(store, project, store.file_states(), report)
        assert report.problems == []
        # new rows + the metrics files re-read: eval's three, and dvclive's step
        assert report.counts[KIND].points == 4 + 3 + 1
        with open(plots / "train" / "loss.tsv", "rb+") as fh:
            fh.truncate(fh.seek(0, 2) - len("25\t0.5"))
    run_id = workspace_id(project)
    assert store.summaries([run_id])[run_id]["train/loss"].count == 25
    fresh = open_memory_store()
    dvc.IMPORTER._workspace(fresh, project, {}, ImportReport())
    assert snapshot(store) == snapshot(fresh)


@needs_git
def test_new_and_removed_experiment_refs(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_memory_store()
    import_project(store, project)
    sha = by_name(store)["lr-0.05"].native_id
    git(project, "update-ref", f"{EXP_PREFIX}copy-of-lr-0.05", sha)
    git(project, "update-ref", "-d", f"{EXP_PREFIX}lr-0.001")
    listed: list[str] = []
    real = dvc_git.Git.run

    def spy(self: dvc_git.Git, *args: str, **kwargs: Any) -> bytes:
        if args[0] == "ls-tree":
            listed.append(args[-3])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(dvc_git.Git, "run", spy)
    report = import_project(store, project)
    assert report.problems == []
    assert listed == [sha]  # only the new experiment's commit is read
    runs = by_name(store)
    assert "lr-0.001" not in runs
    copy = runs["copy-of-lr-0.05"]
    assert store.params(copy.id) == store.params(runs["lr-0.05"].id)
    assert store.summaries([copy.id]) != {}
    assert store.point_count(copy.id) == store.point_count(runs["lr-0.05"].id)


@needs_git
def test_a_new_commit_becomes_head_and_the_workspace_follows(project: Path) -> None:
    store = open_memory_store()
    import_project(store, project)
    old_head = by_name(store)["main"].native_id
    git(project, "commit", "--allow-empty", "-m", "next")
    head = git(project, "rev-parse", "HEAD").strip()
    assert import_project(store, project).problems == []
    runs = by_name(store)
    assert runs["main"].native_id == head
    assert commit_run_id(project, old_head) not in {r.id for r in runs.values()}
    assert runs["workspace"].git_commit == head
    assert store.params(runs["workspace"].id)["train.lr"] == "0.05"


# -- odd values and bad input --------------------------------------------------------------------


def test_nan_infinity_and_unicode_metric_names(project: Path) -> None:
    folder = project / "dvclive" / "plots" / "metrics" / "ünï"
    folder.mkdir()
    (folder / "lösß.tsv").write_text("step\tlösß\n0\tnan\n1\tinf\n2\t-inf\n3\t0.5\n")
    store = open_memory_store()
    report = ImportReport()
    dvc.IMPORTER._workspace(store, project, {}, report)
    assert report.problems == []
    values = store.history(workspace_id(project), "ünï/lösß").column("value").to_pylist()
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.5]


@needs_git
def test_a_corrupt_ref_is_reported_and_the_other_experiments_imported(project: Path) -> None:
    ref = project / ".git" / EXP_PREFIX / "lr-0.05"
    ref.write_text("this is not a sha\n")
    store = open_memory_store()
    report = import_project(store, project)
    assert [p.path for p in report.problems] == [str(ref)]
    assert "\n" not in report.problems[0].message
    runs = by_name(store)
    assert "lr-0.05" not in runs and {"alpha-high", "lr-0.001", "workspace"} <= set(runs)


def test_missing_git_is_one_problem_and_the_workspace_still_imported(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(project / "no-such-bin"))
    store = open_memory_store()
    report = import_project(store, project)
    assert len(report.problems) == 1
    assert report.problems[0].path == str(project) and "git" in report.problems[0].message
    assert [r.name for r in store.runs()] == ["workspace"]


def test_git_timeout_is_reported(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("git", 30)

    monkeypatch.setattr(dvc_git.subprocess, "run", slow)
    store = open_memory_store()
    report = import_project(store, project)
    assert [p.message for p in report.problems] == ["git for-each-ref timed out after 30 s"]
    assert [r.name for r in store.runs()] == ["workspace"]


def test_bad_workspace_files_are_reported_and_the_rest_imported(project: Path) -> None:
    (project / "params.yaml").write_bytes(b"train:\n  lr: \xff\xfe\n")
    (project / "eval" / "metrics.json").write_text('{"test": {"acc": 0.9')
    store = open_memory_store()
    report = ImportReport()
    dvc.IMPORTER._workspace(store, project, {}, report)
    assert sorted(p.path for p in report.problems) == [
        str(project / "eval" / "metrics.json"),
        str(project / "params.yaml"),
    ]
    assert all("\n" not in p.message for p in report.problems)
    run_id = workspace_id(project)
    assert store.params(run_id) == {}
    assert store.summaries([run_id])[run_id]["val/acc"].count == 20

    (project / "dvc.yaml").write_bytes(os.urandom(64) + b"\x00: [")
    report = ImportReport()
    dvc.IMPORTER._workspace(store, project, store.file_states(), report)
    assert str(project / "dvc.yaml") in {p.path for p in report.problems}


def test_mutated_and_truncated_tsvs_never_raise(project: Path, tmp_path: Path) -> None:
    source = project / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv"
    data = source.read_bytes()
    rng = random.Random(3)
    files: list[dvclive.TsvFile] = []
    for i in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if i % 3 == 0:
            del mutated[rng.randrange(len(mutated)) :]
        if i % 10 == 0:
            mutated = bytearray()
        path = tmp_path / "tsv" / f"{i}" / "loss.tsv"
        path.parent.mkdir(parents=True)
        path.write_bytes(bytes(mutated))
        files.append(dvclive.TsvFile(path, f"run-{i}", "train/", None, str(path.parent)))
    report = ImportReport()
    batch = dvclive.read_tsv_files(files, set(), report)
    assert batch.points.num_rows > 0
    for problem in report.problems:
        assert problem.path.endswith("loss.tsv") and "\n" not in problem.message


# -- DVCLive without DVC -------------------------------------------------------------------------


def test_a_standalone_dvclive_folder_is_one_run_read_incrementally(
    project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "plain" / "dvclive"
    shutil.copytree(project / "dvclive", folder)
    shutil.copy(project / "params.yaml", folder / "params.yaml")
    names = sorted(p.name for p in folder.iterdir())
    detection = dvclive.IMPORTER.detect(folder, ["plots"], [n for n in names if n != "plots"])
    assert detection is not None and [r.location for r in detection.refs] == [folder]
    store = open_memory_store()
    report = ingest(tmp_path / "plain", store, importers=[dvclive.IMPORTER])
    assert report.problems == [] and report.counts[dvclive.KIND].runs == 1
    (run,) = store.runs()
    assert run.name == "dvclive" and run.source_kind == dvclive.KIND
    assert store.params(run.id)["train.lr"] == "0.05"
    metrics = json.loads((folder / "metrics.json").read_text())
    summaries = store.summaries([run.id])[run.id]
    assert summaries["val/acc"].last == metrics["val"]["acc"]
    assert summaries["val/acc"].count == 20
    # `dvc metrics show` lists step as a metric: the last step, at that step.
    assert (summaries["step"].last, summaries["step"].last_step) == (metrics["step"], 19)
    with open(folder / "plots" / "metrics" / "val" / "acc.tsv", "a") as fh:
        fh.write("20\t0.99\n21\t0.995\n")
    report = ingest(tmp_path / "plain", store, importers=[dvclive.IMPORTER])
    assert report.counts[dvclive.KIND].points == 2 + 1  # the new rows, and step re-read
    assert store.summaries([run.id])[run.id]["val/acc"].last == 0.995
    fresh = open_memory_store()
    ingest(tmp_path / "plain", fresh, importers=[dvclive.IMPORTER])
    assert snapshot(store) == snapshot(fresh)

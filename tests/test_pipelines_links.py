"""Pipelines ↔ experiment runs: runs at a commit (full or short hashes), runs in a stage's
output folder or the project's folder, and the runs-screen filters that list exactly them."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.pipelines import sample_pipelines

from mltop.core.entities import RunRecord
from mltop.core.pipelines.github_runs import CiRun
from mltop.core.pipelines.links import (
    commit_filter,
    folder_filter,
    link_runs,
    runs_for_commit,
    stage_links,
    workspace_commit,
)
from mltop.core.pipelines.model import StatusState
from mltop.core.pipelines.overview import build_overview, load_pipeline
from mltop.core.runs.query import compile_query
from mltop.core.store import Store, open_memory_store

SHA = "acb5820ced9479c074f688cc328bf03f341a511d"
OTHER = "0123456789abcdef0123456789abcdef01234567"


def put(store: Store, *records: RunRecord) -> None:
    with store.transaction():
        store.put_runs("test", list(records))


def record(name: str, location: Path | str, commit: str | None, start: float = 0.0) -> RunRecord:
    return RunRecord(
        id=f"id-{name}",
        source_kind="mltop",
        location=str(location),
        name=name,
        git_commit=commit,
        start_time=start,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return sample_pipelines(tmp_path / "proj [1] (x)")


def test_runs_at_commits_match_full_and_abbreviated_hashes_either_way() -> None:
    store = open_memory_store()
    put(
        store,
        record("full", "/r/full", SHA, 2.0),
        record("short", "/r/short", SHA[:7].upper(), 3.0),
        record("other", "/r/other", OTHER, 1.0),
        record("none", "/r/none", None),
        record("tiny", "/r/tiny", "ac", 4.0),  # too short to stand for a commit
    )
    found = store.runs_at_commits([SHA, SHA[:7], "ACB58", "", "ffff"])
    assert [r.name for r in found[SHA]] == ["short", "full"]  # newest first
    assert [r.name for r in found[SHA[:7]]] == ["short", "full"]
    assert [r.name for r in found["ACB58"]] == ["short", "full"]
    assert found[""] == [] and found["ffff"] == []
    assert [r.name for r in runs_for_commit(store, OTHER)] == ["other"]


def test_runs_under_matches_the_folder_and_below_only() -> None:
    store = open_memory_store()
    put(
        store,
        record("in", "/p/runs/a", None),
        record("deep", "/p/runs/x/y", None),
        record("exact", "/p/runs", None),
        record("sibling", "/p/runs2/a", None),
    )
    found = store.runs_under(["/p/runs", "/p/runs/", "/q"])
    assert sorted(r.name for r in found["/p/runs"]) == ["deep", "exact", "in"]
    assert sorted(r.name for r in found["/p/runs/"]) == ["deep", "exact", "in"]
    assert found["/q"] == []


def test_filters_list_exactly_the_linked_runs_even_for_odd_folder_names(project: Path) -> None:
    store = open_memory_store()
    runs = project / "runs"
    put(
        store,
        record("mine", runs / "a", None),
        record("other", Path(str(project) + "x") / "runs", None),
        record("at-sha", "/elsewhere", SHA[:7]),
    )
    query = compile_query(folder_filter([str(project)]))
    assert [r.name for r in store.runs(query)] == ["mine"]
    assert [r.name for r in store.runs(compile_query(commit_filter(SHA)))] == ["at-sha"]


def test_training_stage_links_runs_under_the_project_when_there_is_no_git(
    project: Path,
) -> None:
    store = open_memory_store()
    put(
        store,
        record("sgd", project / "runs" / "digits" / "sgd", None, 5.0),
        record("rf", project / "runs" / "digits" / "rf", None, 6.0),
        record("stranger", project.parent / "elsewhere" / "run", None),
    )
    pipeline = load_pipeline(project / "dvc.yaml", project)
    links = stage_links(store, pipeline, project, head=None)
    assert set(links) == {"train"}  # evaluate has neither an output folder nor a commit link
    link = links["train"]
    assert [r.name for r in link.runs] == ["rf", "sgd"] and link.total == 2
    assert link.how == "run folders under ./"
    assert link.summary() == "→ 2 runs (run folders under ./)"


def test_a_declared_output_folder_wins_over_the_commit(project: Path) -> None:
    (project / "dvc.yaml").write_text(
        "stages:\n  train:\n    cmd: python train.py\n    outs:\n      - dvclive\n"
        "  evaluate:\n    cmd: python evaluate.py\n    deps: [dvclive]\n"
    )
    store = open_memory_store()
    put(
        store,
        record("live", project / "dvclive", SHA),
        record("at-head", project / "runs" / "x", SHA),
    )
    pipeline = load_pipeline(project / "dvc.yaml", project)
    links = stage_links(store, pipeline, project, head=SHA)
    assert [r.name for r in links["train"].runs] == ["live"]
    assert links["train"].how == "written to dvclive/"
    # evaluate declares no output: it links by the workspace commit
    assert sorted(r.name for r in links["evaluate"].runs) == ["at-head", "live"]
    assert links["evaluate"].how == f"logged at HEAD {SHA[:7]}"


def test_workspace_commit_reads_head_without_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    (repo / "sub").mkdir()
    assert workspace_commit(repo / "sub") == SHA


def test_link_runs_ties_the_ci_run_commit_and_the_stages(project: Path) -> None:
    store = open_memory_store()
    put(
        store,
        record("a", project / "runs" / "a", SHA, 1.0),
        record("b", "http://mlflow/runs/b", SHA[:8], 2.0),
        record("c", project / "runs" / "c", OTHER, 3.0),
    )
    overview = build_overview(project)
    overview.ci_runs[Path(overview.comparison.devops.path)] = CiRun(  # type: ignore[union-attr]
        1, 7, SHA, "main", StatusState.PASSED
    )
    links = link_runs(store, overview)
    assert links.ci is not None and links.ci_sha == SHA
    assert [r.name for r in links.ci.runs] == ["b", "a"]
    assert links.ci.how == f"at commit {SHA[:7]}"
    assert sorted(r.name for r in links.stages["train"].runs) == ["a", "c"]


def test_a_stage_that_has_not_run_gets_no_runs_linked(project: Path) -> None:
    (project / "dvc.lock").unlink()
    store = open_memory_store()
    put(store, record("a", project / "runs" / "a", None, 1.0))
    overview = build_overview(project)
    assert overview.status_of(overview.comparison.mlops)["train"].summary == (
        "not run yet: no dvc.lock"
    )
    assert "train" not in link_runs(store, overview).stages

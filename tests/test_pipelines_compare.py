"""Coverage by phase, the maturity reading and the automatic DevOps/MLOps pick."""

from __future__ import annotations

import shutil
from pathlib import Path

from mltop.core.pipelines.compare import compare
from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.model import Phase, Pipeline
from mltop.core.pipelines.overview import build_overview
from mltop.core.pipelines.phases import assign_phases

HERE = Path(__file__).resolve().parent / "pipelines"


def load(rel: str) -> Pipeline:
    return assign_phases(parse_file(HERE / rel))


def test_rows_align_by_phase_and_say_what_each_side_covers() -> None:
    devops = load("sample/.github/workflows/ci.yml")
    mlops = load("sample/dvc.yaml")
    comp = compare(devops, mlops)
    rows = {r.phase: r for r in comp.rows}
    assert [r.phase for r in comp.rows] == list(Phase)
    assert [s.id for s in rows[Phase.TEST].devops] == ["test"]
    assert [s.id for s in rows[Phase.TEST].mlops] == ["train"]
    assert rows[Phase.TEST].coverage == "both"
    assert rows[Phase.BUILD].coverage == "DevOps only"
    assert rows[Phase.PACKAGE].coverage == "DevOps only"  # the wheel build
    assert rows[Phase.VERIFY].coverage == "MLOps only"
    assert rows[Phase.MONITOR].coverage == "none"
    assert rows[Phase.PACKAGE].mlops_gap == "no model registry stage"
    assert rows[Phase.MONITOR].mlops_gap == "nothing watches drift or data quality"
    summary = comp.summary()
    assert "DevOps covers 3 of 7 phases (build, test, package)" in summary
    assert "MLOps covers 3 of 7 phases (source, test, verify)" in summary
    assert "neither: deploy, monitor" in summary


def test_level_1_with_evidence_and_concrete_missing_pieces() -> None:
    comp = compare(load("sample/.github/workflows/ci.yml"), load("sample/dvc.yaml"))
    m = comp.maturity
    assert m.level == 1
    assert m.headline.startswith("level 1: training is an automated pipeline with evaluation")
    assert any("trains in train" in e for e in m.evidence)
    assert "evaluation: evaluate" in m.evidence
    assert "no data validation stage" in m.missing
    assert "nothing monitors drift or data quality" in m.missing
    assert "nothing deploys the model" in m.missing
    assert any("no CI job runs the ML pipeline" in x for x in m.missing)


def test_level_2_when_a_ci_job_runs_dvc_repro() -> None:
    devops = load("level2/.github/workflows/ml.yml")
    comp = compare(devops, load("level2/dvc.yaml"))
    assert comp.maturity.level == 2
    assert any("runs `dvc repro`" in e and "'repro'" in e for e in comp.maturity.evidence)
    assert not any("no CI job runs the ML pipeline" in x for x in comp.maturity.missing)


def test_level_2_evidence_can_come_from_a_ci_file_not_shown() -> None:
    comp = compare(
        load("sample/.github/workflows/ci.yml"),
        load("level2/dvc.yaml"),
        ci_pipelines=[load("level2/.github/workflows/ml.yml")],
    )
    assert comp.maturity.level == 2


def test_level_0_without_a_training_pipeline() -> None:
    devops = load("sample/.github/workflows/ci.yml")
    comp = compare(devops, None)
    assert comp.maturity.level == 0
    assert "no automated training pipeline" in comp.maturity.missing
    assert comp.maturity.evidence[0].startswith("no ML pipeline definition found")
    only_prep = assign_phases(parse_file(HERE / "dvc_foreach/dvc.yaml"))
    stages = tuple(s for s in only_prep.stages if s.phase is not Phase.TEST)
    from dataclasses import replace

    no_train = replace(only_prep, stages=stages, edges=())
    m = compare(devops, no_train).maturity
    assert m.level == 0 and "no training stage in the ML pipeline" in m.missing


def test_overview_auto_picks_in_a_folder_like_the_sample_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(HERE / "sample", root)
    overview = build_overview(root)
    comp = overview.comparison
    assert comp.devops is not None and comp.devops.path.name == "ci.yml"
    assert comp.mlops is not None and comp.mlops.path.name == "dvc.yaml"
    assert comp.maturity.level == 1
    assert overview.problems == []
    # no dvc.lock yet: every stage reads "not run"
    statuses = overview.status_of(comp.mlops)
    assert {s.state.value for s in statuses.values()} == {"not run"}


def test_overview_of_one_file(tmp_path: Path) -> None:
    overview = build_overview(HERE / "tekton-pipeline.yaml")
    assert overview.comparison.devops is not None
    assert overview.comparison.mlops is None
    assert len(overview.pipelines) == 1


def test_overview_collects_one_line_problems_from_bad_files(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(HERE / "sample", root)
    (root / ".github/workflows/broken.yml").write_text("jobs: [\n", encoding="utf-8")
    overview = build_overview(root)
    assert len(overview.problems) == 1
    assert overview.problems[0].startswith(str(root / ".github/workflows/broken.yml"))
    assert "\n" not in overview.problems[0]
    assert overview.comparison.devops is not None  # the good file still shows


def test_level_2_when_ci_runs_the_training_stage_command_verbatim(tmp_path: Path) -> None:
    ci = tmp_path / "ci.yml"
    ci.write_text(
        "on: push\njobs:\n  retrain:\n    runs-on: x\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: |\n          python src/prepare.py\n"
        "          python  src/train.py\n",
        encoding="utf-8",
    )
    devops = assign_phases(parse_file(ci))
    comp = compare(devops, load("sample/dvc.yaml"))
    assert comp.maturity.level == 2
    assert any(
        "runs the training stage's command `python src/train.py`" in e
        for e in comp.maturity.evidence
    )
    source = next(r for r in comp.rows if r.phase is Phase.SOURCE)
    assert source.devops_gap == "checkout happens inside jobs"


REPO_SAMPLE = Path(__file__).resolve().parents[1] / "sample_project"


def test_the_bundled_sample_project_is_auto_picked() -> None:
    if not (REPO_SAMPLE / "dvc.yaml").is_file():
        import pytest

        pytest.skip("sample_project/dvc.yaml not written yet")
    overview = build_overview(REPO_SAMPLE)
    comp = overview.comparison
    assert comp.devops is not None
    assert [Path(m.path).name for m in comp.devops.members] == ["audit.yml", "ci.yml"]
    assert comp.mlops is not None and comp.mlops.path.name == "dvc.yaml"
    assert {s.id for s in comp.mlops.stages} >= {"prepare", "train", "evaluate"}
    assert comp.maturity.level >= 1


def test_project_files_win_over_nested_copies_and_their_ci(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(HERE / "sample", root)
    nested = root / "tests/fixtures/other"
    shutil.copytree(HERE / "level2", nested)
    (nested / ".github/workflows/big.yml").write_bytes((HERE / "reusable.yml").read_bytes())
    overview = build_overview(root)
    comp = overview.comparison
    assert comp.mlops is not None and comp.mlops.path == root / "dvc.yaml"
    assert comp.devops is not None and comp.devops.path == root / ".github/workflows/ci.yml"
    # the nested project's `dvc repro` job is not evidence for this project's pipeline
    assert comp.maturity.level == 1

"""Every real pipeline file in shared/fixtures/pipelines parses into the graph its tool would run.

The fixtures stay in the shared folder beside the checkout (CI always has it); these tests skip
when it is absent. Stage counts and edges were checked by hand against each file (see the
comments for the odd cases PROVENANCE.md and yaml_features.json describe).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.model import Phase
from mltop.core.pipelines.phases import assign_phases

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pipelines"

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"public pipeline fixtures not found at {FIXTURES}"
)

# file -> (format, kind, stages, edges)
EXPECTED = {
    "github-actions/pallets__flask__tests.yaml": ("github-actions", "devops", 2, 0),
    "github-actions/pydantic__pydantic__ci.yml": ("github-actions", "devops", 26, 24),
    "github-actions/argoproj__argo-workflows__ci-build.yaml": ("github-actions", "devops", 10, 13),
    "github-actions/tektoncd__pipeline__ci.yaml": ("github-actions", "devops", 9, 14),
    "github-actions/tektoncd__pipeline__e2e-matrix.yml": ("github-actions", "devops", 2, 1),
    "github-actions/pytest-dev__pytest__deploy.yml": ("github-actions", "devops", 5, 6),
    "github-actions/iterative__example-get-started__cml.yaml": ("github-actions", "devops", 1, 0),
    "gitlab-ci/f-droid__fdroidserver__.gitlab-ci.yml": ("gitlab-ci", "devops", 26, 127),
    "gitlab-ci/GNOME__pygobject__.gitlab-ci.yml": ("gitlab-ci", "devops", 11, 19),
    "gitlab-ci/iterative__example-get-started__.gitlab-ci.yml": ("gitlab-ci", "devops", 1, 0),
    "azure-pipelines/pypa__cibuildwheel__azure-pipelines.yml": ("azure-pipelines", "devops", 1, 0),
    "azure-pipelines/pytest-dev__pytest__azure-pipelines.yml": ("azure-pipelines", "devops", 1, 0),
    "dvc/iterative__example-get-started__dvc.yaml": ("dvc", "mlops", 4, 4),
    "dvc/iterative__example-dvc-experiments__dvc.yaml": ("dvc", "mlops", 1, 0),
    "kubeflow/kubeflow__pipelines__two_step_pipeline.yaml": ("kubeflow", "mlops", 2, 1),
    "kubeflow/kubeflow__pipelines__pipeline_with_loops_and_conditions.yaml": (
        "kubeflow",
        "mlops",
        27,
        25,
    ),
    "kubeflow/kubeflow__pipelines__xgboost_sample_pipeline.yaml": ("kubeflow", "mlops", 8, 11),
    "argo/argoproj__argo-workflows__dag-diamond.yaml": ("argo", "mlops", 4, 4),
    "argo/argoproj__argo-workflows__artifact-passing.yaml": ("argo", "mlops", 2, 1),
    "argo/argoproj__argo-workflows__ci.yaml": ("argo", "mlops", 2, 1),
    "argo/kubeflow__pipelines__compiled-workflows__two_step_pipeline.yaml": ("argo", "mlops", 8, 7),
    "tekton/tektoncd__pipeline__pipelinerun.yaml": ("tekton", "devops", 2, 1),
    "tekton/tektoncd__pipeline__pipelinerun-with-matrix.yaml": ("tekton", "devops", 7, 6),
    "tekton/tektoncd__pipeline__pipelinerun-with-final-tasks.yaml": ("tekton", "devops", 3, 2),
}

EDGES = {
    "github-actions/pytest-dev__pytest__deploy.yml": {
        ("package", "generate-gh-release-notes"),
        ("package", "publish-to-pypi"),
        ("generate-gh-release-notes", "publish-to-pypi"),
        ("publish-to-pypi", "push-tag"),
        ("push-tag", "create-github-release"),
        ("generate-gh-release-notes", "create-github-release"),
    },
    "dvc/iterative__example-get-started__dvc.yaml": {
        ("prepare", "featurize"),
        ("featurize", "train"),
        ("featurize", "evaluate"),
        ("train", "evaluate"),
    },
    "argo/argoproj__argo-workflows__dag-diamond.yaml": {
        ("A", "B"),
        ("A", "C"),
        ("B", "D"),
        ("C", "D"),
    },
    "argo/argoproj__argo-workflows__artifact-passing.yaml": {
        ("generate-artifact", "consume-artifact")
    },
    "argo/argoproj__argo-workflows__ci.yaml": {("build", "test")},
    "kubeflow/kubeflow__pipelines__two_step_pipeline.yaml": {("write-to-gcs", "read-from-gcs")},
    "kubeflow/kubeflow__pipelines__xgboost_sample_pipeline.yaml": {
        ("chicago-taxi-trips-dataset", "convert-csv-to-apache-parquet"),
        ("chicago-taxi-trips-dataset", "xgboost-predict"),
        ("chicago-taxi-trips-dataset", "xgboost-predict-4"),
        ("chicago-taxi-trips-dataset", "xgboost-train"),
        ("convert-csv-to-apache-parquet", "xgboost-predict-2"),
        ("convert-csv-to-apache-parquet", "xgboost-predict-3"),
        ("convert-csv-to-apache-parquet", "xgboost-train-2"),
        ("xgboost-train", "xgboost-predict"),
        ("xgboost-train", "xgboost-predict-3"),
        ("xgboost-train-2", "xgboost-predict-2"),
        ("xgboost-train-2", "xgboost-predict-4"),
    },
    "github-actions/tektoncd__pipeline__e2e-matrix.yml": {("compute-matrix", "e2e-tests")},
    "tekton/tektoncd__pipeline__pipelinerun.yaml": {("fetch-from-git", "build-image")},
    "tekton/tektoncd__pipeline__pipelinerun-with-final-tasks.yaml": {
        ("clone-app-repo", "cleanup"),
        ("clone-app-repo", "check-git-commit"),
    },
    "gitlab-ci/GNOME__pygobject__.gitlab-ci.yml": {
        ("build-image", "pre-commit"),
        ("build-image", "gobject-linter"),
        *{
            (lint, build)
            for lint in ("pre-commit", "gobject-linter")
            for build in ("linux", "windows", "gnome-master", "linux-pdm", "minimal-meson")
        },
        *{
            (build, "coverage")
            for build in ("linux", "windows", "gnome-master", "linux-pdm", "minimal-meson")
        },
        ("coverage", "pages"),
        ("pages", "sdist"),
    },
}


def test_every_pipeline_file_in_the_folder_is_pinned() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"public pipeline fixtures not found at {FIXTURES}")
    found = {
        p.relative_to(FIXTURES).as_posix()
        for p in FIXTURES.rglob("*")
        if p.suffix in (".yml", ".yaml") and "params" not in p.name
    }
    assert found == set(EXPECTED)


@needs_fixtures
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_fixture_parses_to_pinned_stage_and_edge_counts(rel: str) -> None:
    fmt, kind, n_stages, n_edges = EXPECTED[rel]
    pipeline = parse_file(FIXTURES / rel)
    assert pipeline.problems == ()
    assert (pipeline.format, pipeline.kind) == (fmt, kind)
    assert len(pipeline.stages) == n_stages
    assert len(pipeline.edges) == n_edges
    if rel in EDGES:
        assert pipeline.edge_pairs() == EDGES[rel]


@needs_fixtures
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_every_fixture_stage_gets_a_phase_or_a_reason_why_not(rel: str) -> None:
    pipeline = assign_phases(parse_file(FIXTURES / rel))
    for stage in pipeline.stages:
        assert stage.phase_reason


@needs_fixtures
def test_pydantic_fan_in_and_matrix_include_rules() -> None:
    pipeline = parse_file(FIXTURES / "github-actions/pydantic__pydantic__ci.yml")
    check = pipeline.stage("check")
    assert check is not None and len(check.needs) == 9
    # os x target x manylinux = 3, all excluded (target: undefined), then 15 include entries
    core_build = pipeline.stage("core-build")
    assert core_build is not None and core_build.matrix is not None
    assert core_build.matrix.combinations == 15
    # 3 os x 8 pythons, plus two include entries that overwrite os -> new combinations
    test = pipeline.stage("test")
    assert test is not None and test.matrix is not None and test.matrix.combinations == 26
    # coverage-pr-comment has needs: as a plain string
    assert pipeline.stage("coverage-pr-comment").needs == ("coverage-combine",)  # type: ignore[union-attr]


@needs_fixtures
def test_github_on_key_read_as_true_by_yaml_1_1_is_accepted() -> None:
    pipeline = parse_file(FIXTURES / "github-actions/pallets__flask__tests.yaml")
    assert pipeline.problems == ()
    tests = pipeline.stage("tests")
    assert tests is not None and tests.matrix is not None
    assert tests.matrix.combinations == 11
    assert tests.actions[0].startswith("actions/checkout@")


@needs_fixtures
def test_anchors_inside_a_block_scalar_are_text() -> None:
    pipeline = parse_file(FIXTURES / "github-actions/argoproj__argo-workflows__ci-build.yaml")
    e2e = pipeline.stage("e2e-tests")
    assert e2e is not None and e2e.matrix is not None and e2e.matrix.combinations == 28


@needs_fixtures
def test_reusable_workflow_job_is_a_call_with_a_reference() -> None:
    pipeline = parse_file(FIXTURES / "github-actions/tektoncd__pipeline__ci.yaml")
    call = pipeline.stage("e2e-tests")
    assert call is not None and call.kind == "workflow-call"
    assert [(r.kind, r.target, r.stage) for r in pipeline.references] == [
        ("reusable-workflow", "./.github/workflows/e2e-matrix.yml", "e2e-tests")
    ]
    summary = pipeline.stage("ci-summary")
    assert summary is not None and len(summary.needs) == 7
    called = parse_file(FIXTURES / "github-actions/tektoncd__pipeline__e2e-matrix.yml")
    matrix = called.stage("e2e-tests").matrix  # type: ignore[union-attr]
    assert matrix is not None and matrix.combinations is None and "fromJSON" in str(matrix.dynamic)


@needs_fixtures
def test_fdroid_two_merge_keys_hidden_templates_and_stage_order() -> None:
    pipeline = parse_file(FIXTURES / "gitlab-ci/f-droid__fdroidserver__.gitlab-ci.yml")
    ids = {s.id for s in pipeline.stages}
    assert not any(i.startswith(".") for i in ids)
    assert {"fdroid build", "hooks/pre-commit", "podman system service"} <= ids
    bandit = pipeline.stage("bandit")
    assert bandit is not None
    # both merged mappings arrived: rules from one, before_script from the other
    assert any("apt-get update" in c for c in bandit.commands)
    assert bandit.group == "test"
    lint_jobs = {s.id for s in pipeline.stages if s.group == "lint"}
    assert len(lint_jobs) == 7
    assert set(bandit.needs) == lint_jobs
    pages = pipeline.stage("pages")
    assert pages is not None and pages.needs == ("Build documentation",)


@needs_fixtures
def test_gitlab_spec_header_document_and_component_include() -> None:
    pipeline = parse_file(FIXTURES / "gitlab-ci/GNOME__pygobject__.gitlab-ci.yml")
    assert [r.kind for r in pipeline.references] == ["include"]
    assert "component gitlab.gnome.org/GNOME/citemplates/release-service@master" in (
        pipeline.references[0].target
    )
    linux = pipeline.stage("linux")
    assert linux is not None and linux.matrix is not None and linux.matrix.combinations == 2


@needs_fixtures
def test_azure_matrix_legs_and_tasks() -> None:
    pipeline = parse_file(FIXTURES / "azure-pipelines/pypa__cibuildwheel__azure-pipelines.yml")
    (job,) = pipeline.stages
    assert job.matrix is not None and job.matrix.combinations == 6
    assert "linux_313" in job.matrix.legs
    assert job.actions[:2] == ("UsePythonVersion@0", "Cache@2")
    old = parse_file(FIXTURES / "azure-pipelines/pytest-dev__pytest__azure-pipelines.yml")
    assert old.stages[0].matrix.legs[3] == "py37-linting/docs/doctesting"  # type: ignore[union-attr]


@needs_fixtures
def test_dvc_fixture_deps_outs_params_metrics() -> None:
    pipeline = parse_file(FIXTURES / "dvc/iterative__example-get-started__dvc.yaml")
    train = pipeline.stage("train")
    assert train is not None
    assert train.inputs == ("data/features", "src/train.py")
    assert train.outputs == ("model.pkl",)
    assert train.params == ("train.min_split", "train.n_est", "train.seed")
    assert [r.kind for r in pipeline.references] == ["artifact", "artifact"]
    single = parse_file(FIXTURES / "dvc/iterative__example-dvc-experiments__dvc.yaml")
    assert single.stages[0].metrics == ("metrics.json",)
    assert single.stages[0].outputs == ("models", "metrics.json", "plots")


@needs_fixtures
def test_dvc_lock_and_params_are_not_pipelines() -> None:
    lock = parse_file(FIXTURES / "dvc/iterative__example-get-started__dvc.lock")
    assert lock.stages == () and "dvc.lock" in lock.problems[0]
    params = parse_file(FIXTURES / "dvc/iterative__example-get-started__params.yaml")
    assert params.stages == () and "not a recognised pipeline" in params.problems[0]


@needs_fixtures
def test_kubeflow_nested_loops_and_conditions_are_flattened() -> None:
    pipeline = parse_file(
        FIXTURES / "kubeflow/kubeflow__pipelines__pipeline_with_loops_and_conditions.yaml"
    )
    kinds = {s.id: s.kind for s in pipeline.stages}
    assert kinds["condition-1"] == "condition"
    assert kinds["for-loop-14"] == "loop"
    assert kinds["condition-1/for-loop-2/condition-5/for-loop-7"] == "loop"
    loop7 = pipeline.stage("condition-1/for-loop-2/condition-5/for-loop-7")
    assert loop7 is not None and loop7.matrix is not None and loop7.matrix.combinations == 2
    contains = {(e.source, e.target) for e in pipeline.edges if e.kind == "contains"}
    assert ("condition-1", "condition-1/args-generator-op-2") in contains
    assert pipeline.stage("condition-1").needs == ("args-generator-op", "flip-coin-op")  # type: ignore[union-attr]


@needs_fixtures
def test_kubeflow_two_step_in_both_representations() -> None:
    ir = parse_file(FIXTURES / "kubeflow/kubeflow__pipelines__two_step_pipeline.yaml")
    argo = parse_file(
        FIXTURES / "argo/kubeflow__pipelines__compiled-workflows__two_step_pipeline.yaml"
    )
    assert ir.name == argo.name == "simple-two-step-pipeline"
    assert ir.stage("read-from-gcs").name == "Consumer"  # type: ignore[union-attr]
    assert ir.stage("write-to-gcs").images == ("google/cloud-sdk:slim",)  # type: ignore[union-attr]
    # the Argo form orders the same two tasks through driver and executor steps
    assert ("root/write-to-gcs", "root/read-from-gcs-driver") in argo.edge_pairs()


@needs_fixtures
def test_argo_steps_withitems_and_depends_expression() -> None:
    ci = parse_file(FIXTURES / "argo/argoproj__argo-workflows__ci.yaml")
    test = ci.stage("test")
    assert test is not None and test.matrix is not None and test.matrix.combinations == 3
    assert ci.stage("build").images == ("golang:1.8",)  # type: ignore[union-attr]


@needs_fixtures
def test_tekton_multi_document_files() -> None:
    run = parse_file(FIXTURES / "tekton/tektoncd__pipeline__pipelinerun.yaml")
    assert run.name == "demo.pipeline"
    build = run.stage("build-image")
    assert build is not None and build.actions == ("kaniko",)
    # the builder image is a Task parameter; the steps are read from the Task document
    assert "$(params.BUILDER_IMAGE)" in build.images
    final = parse_file(FIXTURES / "tekton/tektoncd__pipeline__pipelinerun-with-final-tasks.yaml")
    assert {s.id for s in final.stages if s.kind == "finally"} == {"cleanup", "check-git-commit"}
    matrix = parse_file(FIXTURES / "tekton/tektoncd__pipeline__pipelinerun-with-matrix.yaml")
    browsers = matrix.stage("platforms-and-browsers")
    assert browsers is not None and browsers.matrix is not None
    assert browsers.matrix.combinations == 2
    skipped = matrix.stage("matrix-params-with-empty-array-skipped")
    assert skipped is not None and skipped.matrix.combinations == 0  # type: ignore[union-attr]


@needs_fixtures
def test_fixture_phases_line_up_devops_and_mlops_examples() -> None:
    dvc = assign_phases(parse_file(FIXTURES / "dvc/iterative__example-get-started__dvc.yaml"))
    assert [s.phase for s in dvc.stages] == [Phase.SOURCE, Phase.BUILD, Phase.TEST, Phase.VERIFY]
    deploy = assign_phases(parse_file(FIXTURES / "github-actions/pytest-dev__pytest__deploy.yml"))
    phases = {s.id: s.phase for s in deploy.stages}
    assert phases["publish-to-pypi"] is Phase.PACKAGE
    assert phases["create-github-release"] is Phase.DEPLOY
    tekton = assign_phases(parse_file(FIXTURES / "github-actions/tektoncd__pipeline__ci.yaml"))
    changes = tekton.stage("changes")
    assert changes is not None and changes.phase is Phase.SOURCE
    assert changes.phase_reason == "step uses actions/checkout"
    cml = assign_phases(
        parse_file(FIXTURES / "gitlab-ci/iterative__example-get-started__.gitlab-ci.yml")
    )
    assert cml.stages[0].phase is Phase.VERIFY


@needs_fixtures
@pytest.mark.parametrize(
    ("rel", "stage_id", "phase"),
    [
        ("tekton/tektoncd__pipeline__pipelinerun-with-final-tasks.yaml", "check-git-commit",
         Phase.VERIFY),
        ("gitlab-ci/GNOME__pygobject__.gitlab-ci.yml", "windows", Phase.TEST),
        ("kubeflow/kubeflow__pipelines__two_step_pipeline.yaml", "read-from-gcs", Phase.SOURCE),
    ],
)  # fmt: skip
def test_fixture_stages_get_a_phase_from_what_they_run_or_a_check_name(
    rel: str, stage_id: str, phase: Phase
) -> None:
    stage = assign_phases(parse_file(FIXTURES / rel)).stage(stage_id)
    assert stage is not None
    assert stage.phase is phase, stage.phase_reason

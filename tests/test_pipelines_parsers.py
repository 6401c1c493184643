"""Each format's parser over the small hand-written files in tests/pipelines/."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltop.core.pipelines.detect import detect_format, discover, parse_file
from mltop.core.pipelines.matrix import github_matrix
from mltop.core.pipelines.model import MATRIX_EXPAND_CAP
from mltop.core.pipelines.yamlload import load_documents

HERE = Path(__file__).resolve().parent / "pipelines"


def test_github_actions_needs_matrix_and_reusable_call() -> None:
    pipeline = parse_file(HERE / "sample/.github/workflows/ci.yml")
    assert pipeline.format == "github-actions" and pipeline.kind == "devops"
    assert pipeline.name == "CI"
    assert [s.id for s in pipeline.stages] == ["lint", "test", "build"]
    assert pipeline.edge_pairs() == {("lint", "test"), ("test", "build")}
    test = pipeline.stage("test")
    assert test is not None
    assert test.matrix is not None and test.matrix.legs == ("python=3.11", "python=3.12")
    assert "python -m pytest --junitxml=reports/junit.xml" in test.commands
    assert test.actions == ("actions/checkout@v4",)


def test_github_matrix_beyond_the_cap_is_summarised_not_expanded() -> None:
    pipeline = parse_file(HERE / "reusable.yml")
    big = pipeline.stage("big")
    assert big is not None and big.matrix is not None
    assert big.matrix.combinations == 1000
    assert not big.matrix.expanded and big.matrix.legs == ()
    assert "not expanded" in big.matrix.summary()
    small = pipeline.stage("small")
    assert small is not None and small.matrix is not None
    # 2x2 minus one excluded, include extends (linux, 3.12) and adds windows
    assert small.matrix.legs == (
        "os=linux, py=3.11",
        "os=linux, py=3.12, extra=True",
        "os=mac, py=3.12",
        "os=windows, py=3.12",
    )
    dynamic = pipeline.stage("dynamic")
    assert dynamic is not None and dynamic.matrix is not None
    assert dynamic.matrix.combinations is None
    call = pipeline.stage("call")
    assert call is not None and call.kind == "workflow-call"
    assert ("reusable-workflow", "org/repo/.github/workflows/deploy.yml@v1", "call") in {
        (r.kind, r.target, r.stage) for r in pipeline.references
    }


def test_matrix_of_ten_axes_costs_nothing() -> None:
    spec = {f"axis{i}": list(range(10)) for i in range(10)}
    matrix = github_matrix(spec)
    assert matrix.combinations == 10**10
    assert not matrix.expanded
    assert MATRIX_EXPAND_CAP == 256


def test_github_matrix_follows_the_documented_include_example() -> None:
    matrix = github_matrix(
        {
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ],
        }
    )
    assert matrix.legs == (
        "fruit=apple, animal=cat, color=pink, shape=circle",
        "fruit=apple, animal=dog, color=green, shape=circle",
        "fruit=pear, animal=cat, color=pink",
        "fruit=pear, animal=dog, color=green",
        "fruit=banana",
        "fruit=banana, animal=cat",
    )


def test_gitlab_extends_anchors_references_needs_and_stage_order() -> None:
    pipeline = parse_file(HERE / "gitlab.gitlab-ci.yml")
    assert pipeline.problems == ()
    ids = [s.id for s in pipeline.stages]
    assert ids == ["build wheel", "lint", "unit tests", "quick check", "deploy prod", "downstream"]
    unit = pipeline.stage("unit tests")
    assert unit is not None
    # extends .base-test -> .setup-chain: stage and artifacts arrive; merge key adds image
    assert unit.group == "test"
    assert unit.outputs == ("reports/",)
    assert unit.images == ("python:3.12",)
    # before_script from the anchor, then the !reference, then the job's own line
    assert unit.commands == ("pip install -e .", "echo setting up", "pytest --junitxml=report.xml")
    assert unit.matrix is not None and unit.matrix.combinations == 5
    # no needs: waits for the whole previous stage
    assert set(unit.needs) == {"build wheel", "lint"}
    # needs: [] starts at once
    assert pipeline.stage("quick check").needs == ()  # type: ignore[union-attr]
    deploy = pipeline.stage("deploy prod")
    assert deploy is not None
    assert set(deploy.needs) == {"build wheel", "unit tests"}  # optional missing need dropped
    assert deploy.environment == "production"
    build = pipeline.stage("build wheel")
    assert build is not None and build.images == ("python:3.12",)
    assert build.commands == ("pip install -e .", "python -m build")
    refs = {(r.kind, r.target) for r in pipeline.references}
    assert ("include", "local ci/common.yml") in refs
    assert ("include", "template Security/SAST.gitlab-ci.yml") in refs
    assert ("include", "project group/shared: /templates/deploy.yml") in refs
    assert ("trigger", "group/other") in refs
    assert pipeline.stage("downstream").kind == "trigger"  # type: ignore[union-attr]


def test_gitlab_extends_problems_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(
        ".a:\n  extends: .b\n.b:\n  extends: .a\n"
        "job:\n  extends: [.a, .missing]\n  script: [echo]\n"
        "odd: 3\n",
        encoding="utf-8",
    )
    pipeline = parse_file(path)
    assert [s.id for s in pipeline.stages] == ["job"]
    text = " | ".join(pipeline.problems)
    assert "extends cycle" in text
    assert "unknown '.missing'" in text
    assert "'odd' is neither a keyword nor a job" in text
    assert all(p.startswith(str(path)) for p in pipeline.problems)


def test_azure_stages_jobs_templates_and_deployment() -> None:
    pipeline = parse_file(HERE / "azure-pipelines.yml")
    assert pipeline.problems == ()
    ids = [s.id for s in pipeline.stages]
    assert ids == [
        "Build.compile",
        "Build.lint",
        "Test.unit",
        "Test.integration",
        "Test.template2",
        "template2",
        "Deploy.web",
    ]
    edges = pipeline.edge_pairs()
    # Test follows Build implicitly; jobs inside Build run in parallel
    assert ("Build.compile", "Test.unit") in edges and ("Build.lint", "Test.unit") in edges
    assert ("Build.compile", "Build.lint") not in edges
    assert ("Test.unit", "Test.integration") in edges
    # the stage template follows Test; Deploy names Test explicitly, not the template
    assert ("Test.unit", "template2") in edges
    assert not any(target == "Deploy.web" and src == "template2" for src, target in edges)
    web = pipeline.stage("Deploy.web")
    assert web is not None and web.kind == "deployment"
    assert web.commands == ("kubectl apply -f k8s/",)
    unit = pipeline.stage("Test.unit")
    assert unit is not None and unit.matrix.legs == ("py311", "py312")  # type: ignore[union-attr]
    assert {r.target for r in pipeline.references} == {
        "steps/integration.yml",
        "jobs/security.yml",
        "stages/release.yml",
    }


def test_dvc_foreach_matrix_vars_and_wdir() -> None:
    pipeline = parse_file(HERE / "dvc_foreach/dvc.yaml")
    assert pipeline.problems == ()
    ids = [s.id for s in pipeline.stages]
    assert ids[:2] == ["split@us", "split@eu"]
    assert ids[2:8] == [f"train@{m}-{s}" for m in ("rf", "sgd") for s in (1, 2, 3)]
    assert ids[8:] == ["report", "shards@0", "shards@1"]
    split = pipeline.stage("split@eu")
    assert split is not None
    assert split.commands == ("python split.py data/eu.csv out/eu",)
    assert split.outputs == ("out/eu",)
    train = pipeline.stage("train@sgd-2")
    assert train is not None
    assert train.commands == ("python train.py --model sgd --seed 2 --epochs 5",)
    assert set(train.needs) == {"split@us", "split@eu"}
    report = pipeline.stage("report")
    assert report is not None
    assert report.inputs == ("models",) and report.metrics == ("reports/summary.json",)
    assert len(report.needs) == 6
    assert pipeline.stage("shards@1").commands == ("echo b 2",)  # type: ignore[union-attr]


def test_dvc_foreach_beyond_the_cap_is_one_summarised_stage(tmp_path: Path) -> None:
    items = ", ".join(str(i) for i in range(1000))
    (tmp_path / "dvc.yaml").write_text(
        f"stages:\n  many:\n    foreach: [{items}]\n    do:\n      cmd: echo ${{item}}\n",
        encoding="utf-8",
    )
    pipeline = parse_file(tmp_path / "dvc.yaml")
    (stage,) = pipeline.stages
    assert stage.id == "many@…"
    assert stage.matrix is not None and stage.matrix.combinations == 1000
    assert any("summarised" in p for p in pipeline.problems)


def test_kubeflow_platform_spec_document_is_ignored() -> None:
    pipeline = parse_file(HERE / "kubeflow-platform.yaml")
    assert pipeline.problems == ()
    assert pipeline.format == "kubeflow" and pipeline.name == "train-eval"
    assert pipeline.edge_pairs() == {
        ("load-data", "train-model"),
        ("train-model", "evaluate-model"),
    }
    assert pipeline.stage("train-model").commands == ("python train.py",)  # type: ignore[union-attr]


def test_argo_nested_steps_depends_and_template_ref() -> None:
    pipeline = parse_file(HERE / "argo-nested.yaml")
    assert pipeline.problems == ()
    assert pipeline.name == "nested"
    assert pipeline.edge_pairs() == {
        ("fetch", "train"),
        ("train", "train/prep"),
        ("train/prep", "train/fit"),
        ("train/prep", "train/fit-baseline"),
        ("train", "evaluate"),
        ("fetch", "evaluate"),
        ("evaluate", "publish"),
    }
    fit = pipeline.stage("train/fit")
    assert fit is not None and fit.matrix.combinations == 3  # type: ignore[union-attr]
    assert fit.group == "train"
    prep = pipeline.stage("train/prep")
    assert prep is not None and prep.commands == ('print("prep")',)
    assert pipeline.stage("publish").kind == "template-ref"  # type: ignore[union-attr]
    assert pipeline.references[0].target == "shared-templates/push-model"


def test_tekton_run_after_results_finally_and_matrix() -> None:
    pipeline = parse_file(HERE / "tekton-pipeline.yaml")
    assert pipeline.problems == ()
    edges = {(e.source, e.target, e.kind) for e in pipeline.edges}
    assert edges == {
        ("clone", "unit", "needs"),
        ("clone", "image", "result"),
        ("unit", "deploy", "needs"),
        ("image", "deploy", "needs"),
        ("deploy", "notify", "finally"),
    }
    unit = pipeline.stage("unit")
    assert unit is not None and unit.matrix.combinations == 6  # type: ignore[union-attr]
    assert unit.commands == ("pytest -q\n",)
    assert pipeline.references[0].target == "hub resolver: git-clone"


@pytest.mark.parametrize(
    ("rel", "fmt"),
    [
        ("sample/.github/workflows/ci.yml", "github-actions"),
        ("reusable.yml", "github-actions"),
        ("gitlab.gitlab-ci.yml", "gitlab-ci"),
        ("azure-pipelines.yml", "azure-pipelines"),
        ("sample/dvc.yaml", "dvc"),
        ("kubeflow-platform.yaml", "kubeflow"),
        ("argo-nested.yaml", "argo"),
        ("tekton-pipeline.yaml", "tekton"),
    ],
)
def test_format_detected_from_path_and_content(rel: str, fmt: str) -> None:
    path = HERE / rel
    assert detect_format(path, load_documents(path)) == fmt


def test_content_decides_when_the_name_says_nothing(tmp_path: Path) -> None:
    for rel, fmt in [
        ("sample/dvc.yaml", "dvc"),
        ("gitlab.gitlab-ci.yml", "gitlab-ci"),
        ("azure-pipelines.yml", "azure-pipelines"),
        ("reusable.yml", "github-actions"),
    ]:
        renamed = tmp_path / f"{fmt}.yaml"
        renamed.write_bytes((HERE / rel).read_bytes())
        assert detect_format(renamed, load_documents(renamed)) == fmt, rel


def test_discover_finds_pipelines_and_skips_caches(tmp_path: Path) -> None:
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/ci.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / ".github/ISSUE_TEMPLATE").mkdir()
    (tmp_path / ".github/ISSUE_TEMPLATE/bug.yml").write_text("name: bug\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s/wf.yaml").write_bytes((HERE / "argo-nested.yaml").read_bytes())
    (tmp_path / "k8s/deploy.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\n")
    for skipped in ("node_modules", ".venv", ".git", ".mltop", "env"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "env/pyvenv.cfg").write_text("home = /usr\n")
    found = [(p.relative_to(tmp_path).as_posix(), fmt) for p, fmt in discover(tmp_path)]
    assert found == [
        ("dvc.yaml", "dvc"),
        (".github/workflows/ci.yml", "github-actions"),
        ("k8s/wf.yaml", "argo"),
    ]


def test_gitlab_default_stages_and_pre_post(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(
        "first:\n  stage: .pre\n  script: [a]\n"
        "compile:\n  stage: build\n  script: [make]\n"
        "check:\n  script: [make test]\n"
        "ship:\n  stage: deploy\n  script: [make deploy]\n"
        "last:\n  stage: .post\n  script: [z]\n",
        encoding="utf-8",
    )
    pipeline = parse_file(path)
    assert pipeline.problems == ()
    assert pipeline.edge_pairs() == {
        ("first", "compile"),
        ("compile", "check"),
        ("check", "ship"),
        ("ship", "last"),
    }
    assert pipeline.stage("check").group == "test"  # type: ignore[union-attr]


def test_azure_steps_only_pipeline_is_one_job(tmp_path: Path) -> None:
    path = tmp_path / "azure-pipelines.yml"
    path.write_text("trigger: [main]\npool: {vmImage: x}\nsteps:\n  - script: pytest\n")
    pipeline = parse_file(path)
    assert [(s.id, s.commands) for s in pipeline.stages] == [("Job", ("pytest",))]

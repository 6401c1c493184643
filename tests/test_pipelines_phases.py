"""Lifecycle phases: rules over names, commands, actions and images, reasons, user overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.model import Phase, Stage
from mltop.core.pipelines.phases import (
    assign_phases,
    classify,
    load_overrides,
    runs_ml_pipeline,
)

HERE = Path(__file__).resolve().parent / "pipelines"


def stage(name: str = "job", **kw: object) -> Stage:
    return Stage(id=name, name=name, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "phase", "reason"),
    [
        ({"actions": ("actions/checkout@v4",)}, Phase.SOURCE, "step uses actions/checkout"),
        ({"commands": ("python -m pytest -q",)}, Phase.TEST, "runs `pytest`"),
        ({"commands": ("uv run --locked --group dev tox run",)}, Phase.TEST, "runs `tox`"),
        ({"commands": ("nox -s tests",)}, Phase.TEST, "runs `nox`"),
        ({"commands": ("docker build -t app . && docker push app",)}, Phase.PACKAGE, None),
        ({"commands": ("twine upload dist/*",)}, Phase.PACKAGE, "runs `twine`"),
        ({"commands": ("kubectl apply -f k8s/",)}, Phase.DEPLOY, "runs `kubectl apply`"),
        ({"commands": ("helm upgrade --install app ./chart",)}, Phase.DEPLOY, None),
        ({"commands": ("cd infra && terraform apply -auto-approve",)}, Phase.DEPLOY, None),
        ({"commands": ("python src/train.py --epochs 3",)}, Phase.TEST, None),
        (
            {"commands": ("python -c 'import mlflow; mlflow.register_model(uri, \"m\")'",)},
            Phase.PACKAGE,
            "calls `mlflow.register_model`",
        ),
        ({"commands": ("ruff check .",)}, Phase.BUILD, "runs `ruff`"),
        ({"commands": ("bandit -r src",)}, Phase.VERIFY, "runs `bandit`"),
        ({"commands": ("evidently report --drift",)}, Phase.MONITOR, None),
        ({"images": ("gcr.io/kaniko-project/executor:v1",)}, Phase.PACKAGE, None),
        ({"kind": "deployment"}, Phase.DEPLOY, "an Azure deployment job"),
        ({"environment": "production"}, Phase.DEPLOY, "deploys to environment 'production'"),
    ],
)
def test_content_rules_give_a_phase_and_say_why(
    kw: dict[str, object], phase: Phase, reason: str | None
) -> None:
    found, why = classify(stage("x1", **kw))
    assert found is phase
    if reason is not None:
        assert why.split(" (step: ")[0] == reason


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("prepare", Phase.SOURCE),
        ("featurize", Phase.BUILD),
        ("train", Phase.TEST),
        ("evaluate", Phase.VERIFY),
        ("register-model", Phase.PACKAGE),
        ("deploy", Phase.DEPLOY),
        ("monitor-drift", Phase.MONITOR),
        ("e2e-tests", Phase.VERIFY),
        ("build-image", Phase.PACKAGE),
        ("validate-data", Phase.SOURCE),
        ("validate-model", Phase.VERIFY),
        ("Lint ${{ matrix.python }}", Phase.BUILD),
        ("buildFips", Phase.BUILD),
        ("publish-to-pypi", Phase.PACKAGE),
        ("data_ingestion", Phase.SOURCE),
        ("hyperparameter-tuning", Phase.TEST),
    ],
)
def test_names_say_the_phase(name: str, phase: Phase) -> None:
    found, why = classify(stage(name))
    assert found is phase
    assert why.startswith(f'name "{name[:60]}"')


def test_quoted_words_and_package_installs_are_not_runs() -> None:
    for command in (
        'git config user.name "pytest bot"',
        "pip install pytest tox nox",
        "echo pytest",
        "cat tox.ini",
    ):
        assert classify(stage("x1", commands=(command,)))[0] is None, command


def test_the_latest_content_signal_wins() -> None:
    found, why = classify(
        stage("x1", actions=("actions/checkout@v4",), commands=("pytest", "docker push img"))
    )
    assert (found, why) == (Phase.PACKAGE, "runs `docker push` (step: docker push img)")


def test_the_name_wins_over_content_except_build_that_packages() -> None:
    # e2e job that deploys a test cluster is still verification
    found, _ = classify(stage("e2e", commands=("kubectl apply -f test/", "pytest e2e/")))
    assert found is Phase.VERIFY
    # a job called build that runs `python -m build` makes a package
    found, why = classify(stage("build", commands=("python -m build",)))
    assert found is Phase.PACKAGE
    assert why == 'name "build" says build; content: runs `python -m build`'


def test_unmatched_stage_has_no_phase_and_says_so() -> None:
    found, why = classify(stage("ci-summary", commands=("echo done",)))
    assert found is None
    assert why == "no rule matched its name, commands, actions or images"


def test_dvc_stage_running_train_is_train() -> None:
    found, why = classify(stage("step-2", kind="dvc-stage", commands=("python src/train.py",)))
    assert found is Phase.TEST
    assert why == "runs `python src/train.py`"


def test_ci_job_running_the_ml_pipeline_is_recognised() -> None:
    assert runs_ml_pipeline(stage(commands=("dvc pull\ndvc repro\n",))) == "dvc repro"
    assert runs_ml_pipeline(stage(commands=("dvc exp run -S lr=0.1",))) == "dvc exp run"
    assert runs_ml_pipeline(stage(commands=("kfp run submit -e exp -f p.yaml",))) is not None
    assert runs_ml_pipeline(stage(commands=("argo submit wf.yaml --watch",))) == "argo submit"
    assert runs_ml_pipeline(stage(commands=("echo 'dvc repro later'",))) is None


def test_assign_phases_fills_every_stage() -> None:
    pipeline = assign_phases(parse_file(HERE / "sample/dvc.yaml"))
    assert [(s.id, s.phase) for s in pipeline.stages] == [
        ("prepare", Phase.SOURCE),
        ("train", Phase.TEST),
        ("evaluate", Phase.VERIFY),
    ]
    assert pipeline.stages[1].phase_reason == 'name "train" says train'


def test_user_mapping_overrides_rules_with_globs_scopes_and_none(tmp_path: Path) -> None:
    (tmp_path / ".mltop").mkdir()
    (tmp_path / ".mltop/phases.yaml").write_text(
        "# my own reading\neval*: monitor\ndvc.yaml:\n  prepare: build / prepare\ntrain: none\n",
        encoding="utf-8",
    )
    (tmp_path / "dvc.yaml").write_bytes((HERE / "sample/dvc.yaml").read_bytes())
    overrides = load_overrides(tmp_path)
    assert overrides.problems == []
    pipeline = assign_phases(parse_file(tmp_path / "dvc.yaml"), overrides, tmp_path)
    got = {s.id: (s.phase, s.phase_reason) for s in pipeline.stages}
    assert got["evaluate"] == (
        Phase.MONITOR,
        "user mapping .mltop/phases.yaml: 'eval*' → monitor",
    )
    assert got["prepare"] == (
        Phase.BUILD,
        "user mapping .mltop/phases.yaml: dvc.yaml: 'prepare' → build",
    )
    assert got["train"][0] is None and "→ none" in got["train"][1]


def test_scoped_mapping_does_not_touch_other_files(tmp_path: Path) -> None:
    (tmp_path / ".mltop").mkdir()
    (tmp_path / ".mltop/phases.yaml").write_text("other.yaml:\n  train: deploy\n", encoding="utf-8")
    (tmp_path / "dvc.yaml").write_bytes((HERE / "sample/dvc.yaml").read_bytes())
    pipeline = assign_phases(parse_file(tmp_path / "dvc.yaml"), load_overrides(tmp_path), tmp_path)
    assert pipeline.stage("train").phase is Phase.TEST  # type: ignore[union-attr]


def test_bad_user_mapping_is_a_one_line_problem(tmp_path: Path) -> None:
    (tmp_path / ".mltop").mkdir()
    path = tmp_path / ".mltop/phases.yaml"
    path.write_text("train: launch\nlint: build\n", encoding="utf-8")
    overrides = load_overrides(tmp_path)
    assert len(overrides.problems) == 1
    assert overrides.problems[0].startswith(str(path))
    assert "unknown phase 'launch'" in overrides.problems[0]
    assert len(overrides.rules) == 1
    path.write_text("[unclosed\n", encoding="utf-8")
    broken = load_overrides(tmp_path)
    assert broken.rules == [] and "invalid YAML" in broken.problems[0]
    path.write_text("- a\n- b\n", encoding="utf-8")
    assert "expected a mapping" in load_overrides(tmp_path).problems[0]


def test_phase_parse_accepts_ids_labels_and_halves() -> None:
    assert Phase.parse("verify / evaluate") is Phase.VERIFY
    assert Phase.parse("Register") is Phase.PACKAGE
    assert Phase.parse("train") is Phase.TEST
    assert Phase.parse("data") is Phase.SOURCE
    assert Phase.parse("launch") is None


def test_a_job_named_build_that_runs_pytest_is_a_test_job() -> None:
    # GitHub's "Python application" starter workflow names its only job `build`
    found, why = classify(
        stage(
            "build",
            actions=("actions/checkout@v4", "actions/setup-python@v5"),
            commands=("pip install flake8 pytest", "flake8 . --count", "python -m pytest"),
        )
    )
    assert found is Phase.TEST
    assert why == 'name "build" says build; content: runs `pytest` (step: python -m pytest)'


def test_a_job_named_build_that_only_lints_stays_build() -> None:
    found, why = classify(stage("build", commands=("ruff check .", "mypy src")))
    assert found is Phase.BUILD
    assert why == 'name "build" says build'


def test_the_reason_quotes_the_step_line_the_command_was_found_in() -> None:
    found, why = classify(
        stage("x1", commands=("set -e\npip install -e .\ncoverage run -m pytest -x tests\n",))
    )
    assert found is Phase.TEST
    assert why == "runs `pytest` (step: coverage run -m pytest -x tests)"


@pytest.mark.parametrize(
    ("name", "commands", "phase"),
    [
        ("sanity_check", ("python src/sanity_check.py",), Phase.VERIFY),
        ("check-git-commit", ("if [[ ! $(params.commit) ]]; then exit 1; fi",), Phase.VERIFY),
        ("verify_model", (), Phase.VERIFY),
        ("get_data", ("wget -O data/raw.csv https://example.org/raw.csv",), Phase.SOURCE),
        ("read-from-gcs", ('gsutil cat "$0"',), Phase.SOURCE),
        ("process_data", ("python src/process.py",), Phase.BUILD),
        ("plots", ("python src/plots.py",), Phase.VERIFY),
        ("export_onnx", ("python src/export.py",), Phase.PACKAGE),
        ("step-3", ("python -m src.stages.train_model --config params.yaml",), Phase.TEST),
        ("step-4", ("python -c \"model.push_to_hub('org/model')\"",), Phase.PACKAGE),
        ("step-5", ("huggingface-cli upload org/model out/",), Phase.PACKAGE),
        (
            "windows",
            (r'C:\msys64\usr\bin\bash -lc "bash -x ./.gitlab-ci/test-msys2.sh"',),
            Phase.TEST,
        ),
    ],
)
def test_ml_stage_names_and_entry_points_real_pipelines_use(
    name: str, commands: tuple[str, ...], phase: Phase
) -> None:
    found, why = classify(stage(name, kind="dvc-stage", commands=commands))
    assert found is phase, why


def test_check_decides_only_when_nothing_else_does() -> None:
    # `check` alone reads as verification, but a lint named check-format stays a lint
    assert classify(stage("check-format", commands=("black --check .",)))[0] is Phase.BUILD
    assert classify(stage("checks", commands=("pytest",)))[0] is Phase.TEST

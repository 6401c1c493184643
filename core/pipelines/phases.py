"""Mapping every stage onto one lifecycle phase, with the reason kept for the user to check.

The rules look at what a stage is called first (the author's intent: ``e2e-tests`` is
verification even though it runs tests), then at what it does: actions it uses, commands it
runs, images it runs in. Among content signals the latest phase wins, because a job that checks
out code and then runs pytest is a test job, and one that runs tests and then pushes an image is
a packaging job. A user file ``<root>/.mltop/phases.yaml`` overrides everything::

    train*: test              # stage name or id, shell-style glob
    "smoke tests": monitor
    .github/workflows/ci.yml: # only for stages of this pipeline file (glob on its path)
      docs: package
    ci-summary: none          # leave a stage out of the phase table

What a name says is read by :mod:`~mltop.core.pipelines.phase_names`; this module holds the
content rules, the order they are weighed in, and the user's overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from mltop.core.pipelines.model import Phase, Pipeline, Stage, one_line, path_under
from mltop.core.pipelines.phase_names import name_tokens, phase_from_name, phase_from_weak_name
from mltop.core.pipelines.yamlload import PipelineFileError, load_documents

P = Phase


# --- content -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rule:
    phase: Phase
    pattern: re.Pattern[str]
    what: str


def _rules(phase: Phase, what: str, *patterns: str) -> list[_Rule]:
    return [_Rule(phase, re.compile(p, re.IGNORECASE), what) for p in patterns]


ACTION_RULES: list[_Rule] = [
    *_rules(P.SOURCE, "step uses", r"^actions/checkout\b", r"^checkout\b", r"/setup-dvc\b.*pull"),
    *_rules(P.BUILD, "step uses", r"golangci-lint-action", r"pre-commit/action", r"ruff-action"),
    *_rules(
        P.BUILD,
        "step uses",
        r"^docker/setup-buildx-action",
    ),
    *_rules(P.TEST, "step uses", r"codecov/codecov-action", r"^PublishTestResults@"),
    *_rules(
        P.VERIFY,
        "step uses",
        r"github/codeql-action",
        r"aquasecurity/trivy-action",
        r"snyk/actions",
        r"returntocorp/semgrep",
        r"pypa/gh-action-pip-audit",
        r"ossf/scorecard-action",
    ),
    *_rules(
        P.PACKAGE,
        "step uses",
        r"docker/build-push-action",
        r"docker/login-action",
        r"pypa/gh-action-pypi-publish",
        r"^Docker@",
        r"^TwineAuthenticate@",
        r"maturin-action",
        r"actions/upload-release-asset",
    ),
    *_rules(
        P.DEPLOY,
        "step uses",
        r"softprops/action-gh-release",
        r"azure/webapps-deploy",
        r"azure/k8s-deploy",
        r"aws-actions/amazon-ecs-deploy",
        r"google-github-actions/deploy-",
        r"actions/deploy-pages",
        r"peaceiris/actions-gh-pages",
        r"^KubernetesManifest@",
        r"^HelmDeploy@",
        r"^AzureWebApp",
        r"^AzureFunctionApp",
        r"^TerraformTask",
    ),
]

_CMD_START = (
    r"(?:^|[;&|(\n`]|\$\(|\b(?:then|do|else)\s)\s*"
    r"(?:\w+=(?:\"[^\"]*\"|'[^']*'|\S*)\s+)*"
    r"(?:(?:sudo|time|exec|env|nohup|xvfb-run(?:\s+-a)?|npx|coverage\s+run\s+-m"
    r"|(?:\S*[/\\])?(?:ba|z)?sh(?:\.exe)?(?:\s+-[a-z]+)*|python[\d.]*\s+-m|(?:uv|poetry|pdm|pipenv|hatch|rye)\s+run"
    r"(?:\s+--?[\w-]+(?:[= ](?!-)[\w.-]+)?)*)\s+[\"']?)*"
)


def _cmd_rules(phase: Phase, *programs: str) -> list[_Rule]:
    """Rules that match a program where a shell command starts (line start, after ``&&``,
    ``;``, ``|``, ``then``...), past env assignments and wrappers such as ``python -m`` or
    ``uv run``; so ``git config user.name "pytest bot"`` is not a test run."""
    return [
        _Rule(phase, re.compile(_CMD_START + f"(?P<cmd>{p})", re.IGNORECASE), "runs")
        for p in programs
    ]


def _any_rules(phase: Phase, *patterns: str) -> list[_Rule]:
    """Rules for library calls that show up anywhere in code (``mlflow.register_model``)."""
    return [_Rule(phase, re.compile(f"(?P<cmd>{p})", re.IGNORECASE), "calls") for p in patterns]


_END = r"(?![\w.-])"

COMMAND_RULES: list[_Rule] = [
    *_cmd_rules(
        P.SOURCE,
        r"dvc (?:pull|fetch|import(?:-url)?|get)" + _END,
        r"git clone" + _END,
        r"kaggle (?:datasets|competitions) download",
        r"great_expectations" + _END,
        r"gx checkpoint",
    ),
    *_any_rules(
        P.SOURCE,
        r"\b(?:import|from) (?:great_expectations|pandera|tensorflow_data_validation|deepchecks)\b",
    ),
    *_cmd_rules(
        P.BUILD,
        r"ruff" + _END,
        r"flake8" + _END,
        r"pylint" + _END,
        r"black" + _END,
        r"isort" + _END,
        r"mypy" + _END,
        r"pyright" + _END,
        r"pre-commit" + _END,
        r"pre_commit" + _END,
        r"golangci-lint" + _END,
        r"gofmt" + _END,
        r"eslint" + _END,
        r"go build" + _END,
        r"cargo build" + _END,
        r"npm run build" + _END,
        r"make(?: -\S+)* build" + _END,
        r"sphinx-build" + _END,
        r"mkdocs build" + _END,
        r"meson compile" + _END,
        r"cmake --build" + _END,
    ),
    *_cmd_rules(
        P.TEST,
        r"pytest" + _END,
        r"tox" + _END,
        r"nox" + _END,
        r"unittest" + _END,
        r"go test" + _END,
        r"cargo test" + _END,
        r"npm (?:run )?test" + _END,
        r"make(?: -\S+)* test[\w-]*",
        r"meson test" + _END,
        r"\S*run[-_]tests?(?:\.sh)?" + _END,
        r"\S*tests?[-_]\w+\.sh" + _END,
        r"dvc repro" + _END,
        r"dvc exp run" + _END,
        r"python[\d.]*(?:\s+-\S+)*\s+\S*train\w*\.py",
        r"python[\d.]* -m [\w.]*train\w*" + _END,
        r"torchrun" + _END,
        r"accelerate launch",
        r"deepspeed" + _END,
    ),
    *_cmd_rules(
        P.VERIFY,
        r"bandit" + _END,
        r"pip-audit" + _END,
        r"safety (?:check|scan)",
        r"trivy" + _END,
        r"snyk" + _END,
        r"semgrep" + _END,
        r"python[\d.]*(?:\s+-\S+)*\s+\S*evaluat\w*\.py",
        r"dvc (?:metrics|params|plots|exp) (?:diff|show)",
        r"cml (?:comment|publish|send-comment)",
        r"playwright" + _END,
        r"cypress" + _END,
        r"locust" + _END,
    ),
    *_cmd_rules(
        P.PACKAGE,
        r"docker (?:build|push|buildx)",
        r"(?:buildah|podman) (?:build|bud|push)",
        r"/kaniko/executor",
        r"ko (?:build|resolve|publish)",
        r"twine" + _END,
        r"python[\d.]* -m build" + _END,
        r"(?:poetry|uv|hatch|flit|pdm) (?:build|publish)",
        r"(?:npm|cargo) publish",
        r"mlflow models? (?:register|build-docker)",
        r"gto (?:register|assign|annotate)",
        r"dvc push" + _END,
    ),
    *_cmd_rules(P.PACKAGE, r"huggingface-cli upload" + _END, r"hf upload" + _END),
    *_any_rules(
        P.PACKAGE,
        r"\bmlflow\.register_model\b",
        r"\bregister_model\(",
        r"\.push_to_hub\(",
        r"\bdocker\.build\(",
    ),
    *_cmd_rules(
        P.DEPLOY,
        r"kubectl (?:apply|rollout|set image|create|replace)",
        r"helm (?:install|upgrade)",
        r"terraform apply",
        r"pulumi up",
        r"ansible-playbook",
        r"gcloud (?:run|app|functions) deploy",
        r"az (?:webapp|functionapp|containerapp) (?:deploy|up|update)",
        r"aws ecs update-service",
        r"(?:serverless|sam|cdk) deploy",
        r"gh release create",
        r"mlflow models serve",
        r"bentoml deploy",
    ),
    *_cmd_rules(P.MONITOR, r"evidently" + _END, r"whylogs" + _END, r"nannyml" + _END),
    *_any_rules(
        P.MONITOR,
        r"\b(?:import|from) (?:evidently|whylogs|nannyml|alibi_detect)\b",
    ),
]

IMAGE_RULES: list[_Rule] = [
    *_rules(P.PACKAGE, "runs in image", r"kaniko", r"buildah", r"^docker:.*dind"),
    *_rules(P.DEPLOY, "runs in image", r"kubectl", r"helm", r"terraform"),
    *_rules(P.VERIFY, "runs in image", r"trivy", r"semgrep", r"sonar"),
]

ML_PIPELINE_RUN = [
    *_cmd_rules(
        P.TEST,
        r"dvc repro" + _END,
        r"dvc exp run" + _END,
        r"kfp (?:run|pipeline) (?:submit|create|upload)",
        r"argo submit",
        r"tkn pipeline start",
        r"az ml job create",
    ),
    *_any_rules(P.TEST, r"\bcreate_run_from_pipeline_\w+\b", r"\bcreate_run_from_job_spec\b"),
]


def _strip_version(action: str) -> str:
    return action.split("@", 1)[0] if "/" in action else action


def _command_reason(rule: _Rule, command: str, match: re.Match[str]) -> str:
    """What matched, and the step line it was found in when that says more (the evidence)."""
    cmd = one_line(match.group("cmd"), 60)
    start = command.rfind("\n", 0, match.start("cmd")) + 1
    end = command.find("\n", match.end("cmd"))
    line = one_line(command[start : end if end >= 0 else len(command)].strip(), 100)
    if line == cmd:
        return f"{rule.what} `{cmd}`"
    return f"{rule.what} `{cmd}` (step: {line})"


def phase_from_content(stage: Stage) -> tuple[Phase, str] | None:
    """The latest phase among the stage's action, command and image signals."""
    best: tuple[Phase, str] | None = None

    def offer(phase: Phase, reason: str) -> None:
        nonlocal best
        if best is None or phase.rank > best[0].rank:
            best = (phase, reason)

    for action in stage.actions:
        for rule in ACTION_RULES:
            if rule.pattern.search(action):
                offer(rule.phase, f"{rule.what} {one_line(_strip_version(action), 80)}")
                break
    for command in stage.commands:
        for rule in COMMAND_RULES:
            match = rule.pattern.search(command)
            if match:
                offer(rule.phase, _command_reason(rule, command, match))
    for image in stage.images:
        for rule in IMAGE_RULES:
            if rule.pattern.search(image):
                offer(rule.phase, f"{rule.what} {one_line(image, 80)}")
                break
    if stage.kind == "deployment":
        offer(P.DEPLOY, "an Azure deployment job")
    if stage.environment:
        offer(P.DEPLOY, f"deploys to environment {one_line(stage.environment, 40)!r}")
    return best


def classify(stage: Stage) -> tuple[Phase | None, str]:
    """The rule-based phase of one stage and the reason, or (None, why nothing matched)."""
    content = phase_from_content(stage)
    for name in dict.fromkeys([stage.name, stage.id]):
        found = phase_from_name(name)
        if found:
            if (
                found[0] is P.BUILD
                and content is not None
                and content[0].rank > P.BUILD.rank
                and any(t.startswith("build") for t in name_tokens(name))
            ):
                # "build" names compiling, packaging and, in GitHub's Python starter workflow,
                # the job that runs the tests: what the job runs decides.
                return content[0], f"{found[1]}; content: {content[1]}"
            return found
    if content:
        return content
    for name in dict.fromkeys([stage.name, stage.id]):
        found = phase_from_weak_name(name)
        if found:
            return found
    if stage.kind == "workflow-call" and stage.actions:
        target = Path(stage.actions[0].split("@", 1)[0]).stem
        found = phase_from_name(target)
        if found:
            return found[0], f"calls reusable workflow {target!r}"
    return None, "no rule matched its name, commands, actions or images"


def runs_ml_pipeline(stage: Stage) -> str | None:
    """The command by which a CI stage runs or submits an ML pipeline, if it does."""
    for command in stage.commands:
        for rule in ML_PIPELINE_RUN:
            match = rule.pattern.search(command)
            if match:
                return one_line(match.group("cmd"), 60)
    return None


# --- user overrides ----------------------------------------------------------------------------
OVERRIDES_FILE = Path(".mltop") / "phases.yaml"
_IGNORE = {"none", "ignore", "skip", "-"}


@dataclass
class PhaseOverrides:
    """Rules from ``.mltop/phases.yaml``: (pipeline-path glob or None, stage glob, phase)."""

    rules: list[tuple[str | None, str, Phase | None]] = field(default_factory=list)
    source: Path | None = None
    problems: list[str] = field(default_factory=list)

    def lookup(self, stage: Stage, pipeline_path: str) -> tuple[bool, Phase | None, str]:
        for scope, pattern, phase in sorted(self.rules, key=lambda r: r[0] is None):
            if scope is not None and not fnmatchcase(pipeline_path, scope):
                continue
            if fnmatchcase(stage.name, pattern) or fnmatchcase(stage.id, pattern):
                where = f"{scope}: " if scope else ""
                target = phase.value if phase else "none"
                return True, phase, f"user mapping {OVERRIDES_FILE}: {where}{pattern!r} → {target}"
        return False, None, ""


def load_overrides(root: Path) -> PhaseOverrides:
    path = Path(root) / OVERRIDES_FILE
    overrides = PhaseOverrides(source=path)
    if not path.is_file():
        overrides.source = None
        return overrides
    try:
        docs = load_documents(path)
    except PipelineFileError as exc:
        overrides.problems.append(str(exc))
        return overrides
    doc = docs[0] if docs else {}
    if not isinstance(doc, dict):
        overrides.problems.append(f"{path}: expected a mapping of stage name → phase")
        return overrides
    for key, value in doc.items():
        if isinstance(value, dict):
            for inner_key, inner_value in value.items():
                _add_rule(overrides, path, str(key), str(inner_key), inner_value)
        else:
            _add_rule(overrides, path, None, str(key), value)
    return overrides


def _add_rule(
    overrides: PhaseOverrides, path: Path, scope: str | None, pattern: str, value: Any
) -> None:
    if value is None or str(value).strip().lower() in _IGNORE:
        overrides.rules.append((scope, pattern, None))
        return
    phase = Phase.parse(value)
    if phase is None:
        names = ", ".join(p.value for p in Phase)
        overrides.problems.append(
            f"{path}: unknown phase {one_line(value, 40)!r} for {one_line(pattern, 60)!r} "
            f"(use one of {names}, or none)"
        )
        return
    overrides.rules.append((scope, pattern, phase))


def assign_phases(
    pipeline: Pipeline, overrides: PhaseOverrides | None = None, root: Path | None = None
) -> Pipeline:
    """A copy of ``pipeline`` with every stage's phase and reason filled in."""
    rel = path_under(pipeline.path, root)
    stages = []
    for stage in pipeline.stages:
        if overrides is not None:
            matched, phase, reason = overrides.lookup(stage, rel)
            if matched:
                stages.append(replace(stage, phase=phase, phase_reason=reason))
                continue
        phase, reason = classify(stage)
        stages.append(replace(stage, phase=phase, phase_reason=reason))
    return replace(pipeline, stages=tuple(stages))

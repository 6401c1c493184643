"""Azure Pipelines (``azure-pipelines.yml``): stages → jobs → steps, ``dependsOn``, templates.

Each job (``job:`` or ``deployment:``) is a stage in the model, id ``<stage>.<job>`` when the
file has stages. Azure's ordering rules: a stage without ``dependsOn`` follows the stage before
it, jobs without ``dependsOn`` run in parallel, ``dependsOn: []`` removes the implicit order.
Templates (``template:`` at stage, job or step level, ``extends:``) are references; a stage- or
job-level template also becomes a placeholder stage so the graph shows where it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltop.core.pipelines.matrix import is_expression
from mltop.core.pipelines.model import (
    GraphBuilder,
    Matrix,
    Pipeline,
    Reference,
    Stage,
    as_list,
    environment_name,
    job_image,
    one_line,
)

FORMAT = "azure-pipelines"

TOP_KEYS = {
    "name",
    "appendCommitMessageToRunName",
    "trigger",
    "pr",
    "schedules",
    "resources",
    "variables",
    "parameters",
    "pool",
    "extends",
    "stages",
    "jobs",
    "steps",
    "strategy",
    "lockBehavior",
    "container",
    "services",
    "workspace",
    "timeoutInMinutes",
    "cancelTimeoutInMinutes",
    "condition",
    "continueOnError",
}
JOB_KEYS = {
    "job",
    "deployment",
    "template",
    "parameters",
    "displayName",
    "dependsOn",
    "condition",
    "continueOnError",
    "timeoutInMinutes",
    "cancelTimeoutInMinutes",
    "variables",
    "strategy",
    "pool",
    "container",
    "services",
    "workspace",
    "steps",
    "environment",
    "uses",
    "templateContext",
}
STEP_KINDS = ("script", "bash", "pwsh", "powershell")


def looks_like(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    for key, marker in (("stages", "stage"), ("jobs", "job"), ("jobs", "deployment")):
        items = doc.get(key)
        if isinstance(items, list) and any(isinstance(i, dict) and marker in i for i in items):
            return True
    steps = doc.get("steps")
    if isinstance(steps, list) and any(
        isinstance(s, dict) and ("task" in s or "script" in s or "bash" in s) for s in steps
    ):
        return "pool" in doc or "trigger" in doc or "pr" in doc or "variables" in doc
    return False


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    doc = docs[0] if docs else None
    if not isinstance(doc, dict):
        graph.problem("not an Azure Pipelines file: no top-level mapping")
        return graph.build("devops", FORMAT, path, path.stem)
    name = path.name
    graph.check_keys(doc, TOP_KEYS)
    extends = doc.get("extends")
    if isinstance(extends, dict) and extends.get("template"):
        graph.references.append(Reference("template", str(extends["template"])))
    if isinstance(doc.get("stages"), list):
        _stages(doc["stages"], graph)
    elif isinstance(doc.get("jobs"), list):
        _jobs(doc["jobs"], None, graph)
    elif isinstance(doc.get("steps"), list):
        graph.add_stage(_job_stage("Job", "Job", {"steps": doc["steps"]}, None, graph))
    elif not isinstance(extends, dict):
        graph.problem("no stages, jobs or steps")
    return graph.build("devops", FORMAT, path, name)


def _stages(items: list[Any], graph: GraphBuilder) -> None:
    previous: str | None = None
    stage_jobs: dict[str, list[str]] = {}
    pending: list[tuple[str, list[str]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        if "template" in item:
            sid = f"template{index}"
            target = str(item["template"])
            graph.references.append(Reference("template", target, sid))
            graph.add_stage(Stage(id=sid, name=target, kind="template", actions=(target,)))
            stage_jobs[sid] = [sid]
            deps = [previous] if previous else []
            pending.append((sid, [d for d in deps if d]))
            previous = sid
            continue
        stage_name = str(item.get("stage") or f"stage{index}")
        job_ids = _jobs(as_list(item.get("jobs")), stage_name, graph)
        stage_jobs[stage_name] = job_ids
        if "dependsOn" in item:
            deps = [str(d) for d in as_list(item.get("dependsOn"))]
        else:
            deps = [previous] if previous else []
        pending.append((stage_name, deps))
        previous = stage_name
    for stage_name, deps in pending:
        for dep in deps:
            if dep not in stage_jobs:
                graph.problem(f"stage {stage_name!r} depends on unknown stage {dep!r}")
                continue
            for dst in stage_jobs[stage_name]:
                graph.add_edges(stage_jobs[dep], dst, "stage order")


def _jobs(items: list[Any], stage_name: str | None, graph: GraphBuilder) -> list[str]:
    ids: list[str] = []
    local: dict[str, str] = {}
    deps: list[tuple[str, list[str]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        graph.check_keys(item, JOB_KEYS, f"job {index + 1}")
        if "template" in item:
            raw = f"template{index}"
            sid = f"{stage_name}.{raw}" if stage_name else raw
            target = str(item["template"])
            graph.references.append(Reference("template", target, sid))
            graph.add_stage(
                Stage(id=sid, name=target, kind="template", actions=(target,), group=stage_name)
            )
        else:
            raw = str(item.get("job") or item.get("deployment") or f"job{index}")
            sid = f"{stage_name}.{raw}" if stage_name else raw
            graph.add_stage(_job_stage(sid, raw, item, stage_name, graph))
        ids.append(sid)
        local[raw] = sid
        deps.append((sid, [str(d) for d in as_list(item.get("dependsOn"))]))
    for sid, needs in deps:
        for need in needs:
            graph.add_edge(local.get(need, need), sid)
    return ids


def _job_stage(
    sid: str, raw: str, job: dict[str, Any], stage_name: str | None, graph: GraphBuilder
) -> Stage:
    commands: list[str] = []
    actions: list[str] = []
    images: list[str] = []
    kind = "deployment" if "deployment" in job else "job"
    steps = list(as_list(job.get("steps")))
    strategy = job.get("strategy")
    if kind == "deployment" and isinstance(strategy, dict):
        for flavour in strategy.values():
            if not isinstance(flavour, dict):
                continue
            for hook in flavour.values():
                if isinstance(hook, dict):
                    steps.extend(as_list(hook.get("steps")))
    for step in steps:
        if not isinstance(step, dict):
            continue
        for key in STEP_KINDS:
            if isinstance(step.get(key), str):
                commands.append(step[key])
        if isinstance(step.get("task"), str):
            actions.append(step["task"])
        if "checkout" in step:
            actions.append(f"checkout {step['checkout']}")
        if isinstance(step.get("template"), str):
            graph.references.append(Reference("template", step["template"], sid))
            actions.append(f"template {step['template']}")
    image = job_image(job.get("container"))
    if image is not None:
        images.append(image)
    return Stage(
        id=sid,
        name=str(job.get("displayName") or raw),
        kind=kind,
        commands=tuple(commands),
        actions=tuple(actions),
        images=tuple(images),
        matrix=_matrix(strategy) if kind == "job" else None,
        group=stage_name,
        environment=environment_name(job.get("environment")),
    )


def _matrix(strategy: Any) -> Matrix | None:
    if not isinstance(strategy, dict):
        return None
    matrix = strategy.get("matrix")
    if isinstance(matrix, dict):
        legs = tuple(str(k) for k in matrix)
        return Matrix(combinations=len(legs), axes=(("leg", len(legs)),), legs=legs, expanded=True)
    if is_expression(matrix):
        return Matrix(combinations=None, dynamic=one_line(matrix, 80))
    parallel = strategy.get("parallel")
    if isinstance(parallel, int):
        return Matrix(combinations=parallel, note="parallel slices")
    return None

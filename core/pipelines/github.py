"""GitHub Actions workflows (``.github/workflows/*.yml``): jobs, ``needs``, steps, matrices.

A job is a stage; its matrix is summarised on the stage rather than exploded into stages, so a
256-leg test matrix stays one row. A job-level ``uses:`` calls a reusable workflow: it is shown
as a stage of kind ``workflow-call`` plus a reference, not followed.

PyYAML reads the top-level ``on`` key as the boolean True (YAML 1.1); both spellings are accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltop.core.pipelines.matrix import github_matrix
from mltop.core.pipelines.model import (
    GraphBuilder,
    Pipeline,
    Reference,
    Stage,
    as_list,
    environment_name,
    job_image,
)

FORMAT = "github-actions"

TOP_KEYS = {"name", "run-name", "on", True, "permissions", "env", "defaults", "concurrency", "jobs"}
JOB_KEYS = {
    "name",
    "needs",
    "permissions",
    "runs-on",
    "environment",
    "concurrency",
    "outputs",
    "env",
    "defaults",
    "if",
    "steps",
    "timeout-minutes",
    "strategy",
    "continue-on-error",
    "container",
    "services",
    "uses",
    "with",
    "secrets",
    "snapshot",
}


def looks_like(doc: Any) -> bool:
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        return False
    if "on" in doc or True in doc:
        return True
    jobs = [j for j in doc["jobs"].values() if isinstance(j, dict)]
    return bool(jobs) and all(("runs-on" in j or "uses" in j) for j in jobs)


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    doc = docs[0] if docs else None
    if not isinstance(doc, dict):
        graph.problem("not a GitHub Actions workflow: no top-level mapping")
        return graph.build("devops", FORMAT, path, path.stem)
    name = str(doc.get("name") or path.stem)
    graph.check_keys(doc, TOP_KEYS)
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict):
        graph.problem("no 'jobs' mapping")
        return graph.build("devops", FORMAT, path, name)
    for job_id, job in graph.entries(jobs, "job", JOB_KEYS):
        graph.add_stage(_stage(job_id, job, graph))
        for need in as_list(job.get("needs")):
            graph.add_edge(str(need), job_id)
    return graph.build("devops", FORMAT, path, name)


def _stage(job_id: str, job: dict[str, Any], graph: GraphBuilder) -> Stage:
    commands: list[str] = []
    actions: list[str] = []
    images: list[str] = []
    kind = "job"
    uses = job.get("uses")
    if isinstance(uses, str):
        kind = "workflow-call"
        actions.append(uses)
        graph.references.append(Reference("reusable-workflow", uses, job_id))
    steps = job.get("steps")
    if steps is not None and not isinstance(steps, list):
        graph.problem(f"job {job_id!r}: 'steps' is not a list")
        steps = []
    for step in steps or []:
        if not isinstance(step, dict):
            continue
        if isinstance(step.get("run"), str):
            commands.append(step["run"])
        step_uses = step.get("uses")
        if isinstance(step_uses, str):
            if step_uses.startswith("docker://"):
                images.append(step_uses.removeprefix("docker://"))
            else:
                actions.append(step_uses)
    image = job_image(job.get("container"))
    if image is not None:
        images.append(image)
    services = job.get("services")
    if isinstance(services, dict):
        for service in services.values():
            if isinstance(service, dict) and isinstance(service.get("image"), str):
                images.append(service["image"])
    strategy = job.get("strategy")
    matrix = None
    if isinstance(strategy, dict) and "matrix" in strategy:
        matrix = github_matrix(strategy["matrix"])
    outputs = job.get("outputs")
    return Stage(
        id=job_id,
        name=str(job.get("name") or job_id),
        kind=kind,
        commands=tuple(commands),
        actions=tuple(actions),
        images=tuple(images),
        outputs=tuple(str(k) for k in outputs) if isinstance(outputs, dict) else (),
        matrix=matrix,
        environment=environment_name(job.get("environment")),
    )

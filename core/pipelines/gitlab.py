"""GitLab CI (``.gitlab-ci.yml``): jobs grouped in stages, ``needs``, ``extends``, ``!reference``.

Rules that matter for the graph, as GitLab documents them:

* every top-level key that is not a keyword is a job; keys starting with ``.`` are hidden
  templates, never stages;
* a job without ``stage:`` is in ``test``; the stage list defaults to build/test/deploy and is
  always wrapped in ``.pre`` ... ``.post``;
* a job without ``needs:`` waits for the previous stage (drawn as edges from every job of the
  closest earlier non-empty stage); ``needs: []`` starts at once;
* ``extends`` deep-merges maps and replaces everything else, up to 11 levels;
* ``include:`` is shown as an unresolved reference (mltop reads no other file or server).

A file may start with a ``spec: inputs:`` header document; it is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltop.core.pipelines.matrix import product_matrix, sum_matrices
from mltop.core.pipelines.model import (
    GraphBuilder,
    Matrix,
    Pipeline,
    Reference,
    Stage,
    as_list,
    environment_name,
    one_line,
    text_items,
)
from mltop.core.pipelines.yamlload import YamlReference

FORMAT = "gitlab-ci"

KEYWORDS = {
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "types",
    "spec",
}
JOB_HINTS = {"script", "stage", "extends", "trigger", "needs", "image", "rules", "run"}
DEFAULT_STAGES = ["build", "test", "deploy"]
MAX_EXTENDS_DEPTH = 11


def looks_like(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    if isinstance(doc.get("stages"), list) and all(isinstance(s, str) for s in doc["stages"]):
        return True
    jobs = [v for k, v in doc.items() if k not in KEYWORDS and isinstance(v, dict)]
    return bool(jobs) and any("script" in j or "trigger" in j or "extends" in j for j in jobs)


def _pipeline_doc(docs: list[Any], graph: GraphBuilder) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            graph.problem("skipped a YAML document that is not a mapping")
            continue
        if set(doc) == {"spec"}:
            continue
        merged.update(doc)
    return merged


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    doc = _pipeline_doc(docs, graph)
    name = path.name
    for inc in as_list(doc.get("include")):
        graph.references.append(Reference("include", _include_target(inc)))
    stages = _stage_order(doc.get("stages"), graph)
    templates = {str(k): v for k, v in doc.items() if isinstance(v, dict)}
    jobs: dict[str, dict[str, Any]] = {}
    for key, value in doc.items():
        key = str(key)
        if key in KEYWORDS or key.startswith("."):
            continue
        if not isinstance(value, dict):
            graph.problem(f"top-level key {one_line(key)!r} is neither a keyword nor a job")
            continue
        job = _resolve_extends(key, value, templates, graph)
        job = _resolve_references(job, doc, graph, key)
        if not (set(job) & JOB_HINTS):
            graph.problem(f"job {one_line(key)!r} has no script, trigger or stage")
        jobs[key] = job
    by_stage: dict[str, list[str]] = {s: [] for s in stages}
    for job_id, job in jobs.items():
        stage_name = str(job.get("stage") or "test")
        if stage_name not in by_stage:
            graph.problem(f"job {job_id!r}: stage {stage_name!r} is not in 'stages'")
            by_stage[stage_name] = []
        by_stage[stage_name].append(job_id)
        graph.add_stage(_stage(job_id, job, stage_name, graph))
    ordered = [s for s in by_stage if by_stage[s]]
    position = {name: i for i, name in enumerate(ordered)}
    for job_id, job in jobs.items():
        stage_name = str(job.get("stage") or "test")
        if "needs" in job:
            for need in as_list(job.get("needs")):
                _add_need(graph, job_id, need, jobs)
            continue
        index = position[stage_name]
        if index > 0:
            graph.add_edges(by_stage[ordered[index - 1]], job_id, "stage order")
    return graph.build("devops", FORMAT, path, name)


def _include_target(inc: Any) -> str:
    if isinstance(inc, str):
        return inc
    if isinstance(inc, dict):
        if "project" in inc:
            files = ", ".join(text_items(inc.get("file")))
            return f"project {inc['project']}" + (f": {files}" if files else "")
        for key in ("local", "remote", "template", "component", "file"):
            if key in inc:
                return f"{key} " + ", ".join(text_items(inc[key]))
    return one_line(inc, 120)


def _stage_order(value: Any, graph: GraphBuilder) -> list[str]:
    if value is None:
        names = list(DEFAULT_STAGES)
    elif isinstance(value, list):
        names = [str(s) for s in value if isinstance(s, str | int)]
    else:
        graph.problem("'stages' is not a list; using build, test, deploy")
        names = list(DEFAULT_STAGES)
    names = [n for n in names if n not in (".pre", ".post")]
    return [".pre", *dict.fromkeys(names), ".post"]


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """GitLab's extends merge: maps merge key by key, everything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_extends(
    job_id: str,
    job: dict[str, Any],
    templates: dict[str, Any],
    graph: GraphBuilder,
    chain: tuple[str, ...] = (),
) -> dict[str, Any]:
    parents = as_list(job.get("extends"))
    if not parents:
        return job
    chain = (*chain, job_id)
    if len(chain) > MAX_EXTENDS_DEPTH:
        graph.problem(f"job {chain[0]!r}: extends nests deeper than {MAX_EXTENDS_DEPTH} levels")
        return job
    merged: dict[str, Any] = {}
    for parent in parents:
        parent = str(parent)
        if parent in chain:
            graph.problem(f"job {chain[0]!r}: extends cycle through {parent!r}")
            continue
        base = templates.get(parent)
        if not isinstance(base, dict):
            graph.problem(f"job {job_id!r} extends unknown {parent!r} (maybe from an include)")
            continue
        merged = deep_merge(merged, _resolve_extends(parent, base, templates, graph, chain))
    result = deep_merge(merged, job)
    result.pop("extends", None)
    return result


def _resolve_references(
    value: Any, doc: dict[str, Any], graph: GraphBuilder, job_id: str, depth: int = 0
) -> Any:
    """Replace ``!reference [a, b]`` by ``doc[a][b]`` (GitLab allows 10 levels of nesting)."""
    if isinstance(value, YamlReference):
        if depth >= 10:
            graph.problem(f"job {job_id!r}: !reference nested more than 10 levels")
            return None
        target: Any = doc
        for part in value.path:
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            graph.problem(f"job {job_id!r}: !reference {list(value.path)} not found in this file")
            return None
        return _resolve_references(target, doc, graph, job_id, depth + 1)
    if isinstance(value, dict):
        return {k: _resolve_references(v, doc, graph, job_id, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_references(v, doc, graph, job_id, depth) for v in value]
    return value


def _add_need(graph: GraphBuilder, job_id: str, need: Any, jobs: dict[str, Any]) -> None:
    if isinstance(need, dict):
        if "project" in need or "pipeline" in need:
            target = need.get("project") or need.get("pipeline")
            graph.references.append(Reference("needs", f"{target}: {need.get('job')}", job_id))
            return
        name = need.get("job")
        if name is None:
            return
        if need.get("optional") and str(name) not in jobs:
            return
        graph.add_edge(str(name), job_id)
    elif need is not None:
        graph.add_edge(str(need), job_id)


def _image(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"])
    return None


def _stage(job_id: str, job: dict[str, Any], stage_name: str, graph: GraphBuilder) -> Stage:
    commands: list[str] = []
    for key in ("before_script", "script", "after_script"):
        commands.extend(text_items(job.get(key)))
    images = [i for i in [_image(job.get("image"))] if i]
    images += [i for i in (_image(s) for s in as_list(job.get("services"))) if i]
    kind = "job"
    actions: list[str] = []
    trigger = job.get("trigger")
    if trigger is not None:
        kind = "trigger"
        target = trigger if isinstance(trigger, str) else None
        if isinstance(trigger, dict):
            target = trigger.get("project") or _include_target(trigger.get("include"))
        graph.references.append(Reference("trigger", one_line(target, 120), job_id))
        actions.append(f"trigger {one_line(target, 120)}")
    artifacts = job.get("artifacts")
    outputs = text_items(artifacts.get("paths")) if isinstance(artifacts, dict) else ()
    inputs = text_items(job.get("dependencies"))
    return Stage(
        id=job_id,
        name=job_id,
        kind=kind,
        commands=tuple(commands),
        actions=tuple(actions),
        images=tuple(images),
        inputs=inputs,
        outputs=outputs,
        matrix=_parallel(job.get("parallel")),
        group=stage_name,
        environment=environment_name(job.get("environment")),
    )


def _parallel(value: Any) -> Matrix | None:
    if value is None:
        return None
    if isinstance(value, int):
        return Matrix(combinations=value, note="parallel copies")
    if isinstance(value, dict) and isinstance(value.get("matrix"), list):
        parts = [
            product_matrix([(str(k), v) for k, v in entry.items()])
            for entry in value["matrix"]
            if isinstance(entry, dict)
        ]
        return sum_matrices(parts)
    return Matrix(combinations=None, dynamic=one_line(value, 80))

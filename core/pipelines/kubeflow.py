"""Kubeflow Pipelines v2 compiled YAML (the PipelineSpec IR the kfp SDK writes).

Tasks live in ``root.dag.tasks``, ordered by ``dependentTasks``. A task whose component is itself
a DAG (a ``condition`` or a ``for-loop``) is flattened: it stays as a stage of kind ``condition``
or ``loop`` and its inner tasks become stages ``<parent>/<task>`` with a ``contains`` edge from
the parent to each inner task that waits on nothing else. Containers come from
``deploymentSpec.executors``. A second YAML document (the platform spec) is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mltop.core.pipelines.model import (
    GraphBuilder,
    Matrix,
    Pipeline,
    Stage,
    add_container,
    as_list,
    one_line,
)

FORMAT = "kubeflow"
MAX_DEPTH = 20


def looks_like(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("root"), dict)
        and ("pipelineInfo" in doc or "deploymentSpec" in doc or "components" in doc)
    )


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    spec = next((d for d in docs if looks_like(d)), None)
    if spec is None:
        graph.problem("no Kubeflow pipeline spec (root + pipelineInfo) in this file")
        return graph.build("mlops", FORMAT, path, path.stem)
    info = spec.get("pipelineInfo")
    name = str(info.get("name")) if isinstance(info, dict) and info.get("name") else path.stem
    components = spec.get("components") if isinstance(spec.get("components"), dict) else {}
    deployment = spec.get("deploymentSpec")
    executors = deployment.get("executors") if isinstance(deployment, dict) else None
    root_dag = spec["root"].get("dag")
    if not isinstance(root_dag, dict):
        graph.problem("root has no dag")
        return graph.build("mlops", FORMAT, path, name)
    _walk(root_dag, None, components, executors or {}, graph, 0, set())
    return graph.build("mlops", FORMAT, path, name)


def _walk(
    dag: dict[str, Any],
    parent: str | None,
    components: dict[str, Any],
    executors: dict[str, Any],
    graph: GraphBuilder,
    depth: int,
    active: set[str],
) -> None:
    if depth > MAX_DEPTH:
        graph.problem(f"sub-DAGs nest deeper than {MAX_DEPTH} levels under {parent!r}")
        return
    if graph.stages_full:
        graph.dropped_stages += 1
        return
    tasks = dag.get("tasks")
    if not isinstance(tasks, dict):
        return
    prefix = f"{parent}/" if parent else ""
    for task_name, task in tasks.items():
        if not isinstance(task, dict):
            continue
        sid = prefix + str(task_name)
        ref = task.get("componentRef")
        comp_name = str(ref.get("name")) if isinstance(ref, dict) else ""
        component = components.get(comp_name) if comp_name else None
        if comp_name and component is None:
            graph.problem(f"task {sid!r} uses unknown component {comp_name!r}")
        deps = [prefix + str(d) for d in as_list(task.get("dependentTasks"))]
        for dep in deps:
            graph.add_edge(dep, sid)
        if parent and not deps:
            graph.add_edge(parent, sid, "contains")
        graph.add_stage(_stage(sid, task, component, executors, parent))
        if isinstance(component, dict) and isinstance(component.get("dag"), dict):
            if comp_name in active:
                graph.problem(f"component {comp_name!r} contains itself")
                continue
            _walk(
                component["dag"],
                sid,
                components,
                executors,
                graph,
                depth + 1,
                active | {comp_name},
            )


def _raw_count(raw: Any) -> int | None:
    """Items of a loop over a literal list (the IR stores it as a JSON string)."""
    if isinstance(raw, list):
        return len(raw)
    if not isinstance(raw, str) or len(raw) > 1_000_000:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return len(value) if isinstance(value, list) else None


def _stage(
    sid: str,
    task: dict[str, Any],
    component: Any,
    executors: dict[str, Any],
    parent: str | None,
) -> Stage:
    info = task.get("taskInfo")
    display = str(info.get("name")) if isinstance(info, dict) and info.get("name") else sid
    kind = "task"
    matrix = None
    if "parameterIterator" in task or "artifactIterator" in task:
        kind = "loop"
        iterator = task.get("parameterIterator") or task.get("artifactIterator") or {}
        items = iterator.get("items") if isinstance(iterator, dict) else None
        raw = items.get("raw") if isinstance(items, dict) else None
        source = items.get("inputParameter") if isinstance(items, dict) else None
        count = _raw_count(raw)
        if count is not None:
            matrix = Matrix(combinations=count, note="loop items")
        else:
            matrix = Matrix(combinations=None, dynamic=f"items of {one_line(source or raw, 60)}")
    elif isinstance(task.get("triggerPolicy"), dict) and task["triggerPolicy"].get("condition"):
        kind = "condition"
    elif isinstance(component, dict) and "dag" in component:
        kind = "dag"
    commands: list[str] = []
    images: list[str] = []
    inputs: list[str] = []
    outputs: list[str] = []
    if isinstance(component, dict):
        executor = executors.get(str(component.get("executorLabel")))
        if isinstance(executor, dict):
            container = executor.get("container")
            if isinstance(container, dict):
                add_container(container, images, commands)
            if isinstance(executor.get("importer"), dict):
                kind = "importer"
        defs = component.get("outputDefinitions")
        if isinstance(defs, dict):
            for section in ("artifacts", "parameters"):
                if isinstance(defs.get(section), dict):
                    outputs.extend(str(k) for k in defs[section])
    task_inputs = task.get("inputs")
    if isinstance(task_inputs, dict):
        for section in ("artifacts", "parameters"):
            entries = task_inputs.get(section)
            if isinstance(entries, dict):
                inputs.extend(str(k) for k in entries)
    return Stage(
        id=sid,
        name=display,
        kind=kind,
        commands=tuple(commands),
        images=tuple(images),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        matrix=matrix,
        group=parent,
    )

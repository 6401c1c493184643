"""Argo Workflows (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow).

The graph starts at the entrypoint template. A ``dag`` template's tasks are ordered by
``depends`` (a boolean expression over task names, e.g. ``B && C`` or ``A.Succeeded``) or the
older ``dependencies`` list; a ``steps`` template is a list of parallel groups, each group after
the previous one. A task or step whose template is itself a dag/steps template is flattened into
``<parent>/<child>`` stages, like Kubeflow sub-DAGs, with a ``contains`` edge from the parent.
``withItems``/``withParam``/``withSequence`` fan-outs are summarised as a matrix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mltop.core.pipelines.model import (
    GraphBuilder,
    Matrix,
    Pipeline,
    Reference,
    Stage,
    add_container,
    as_list,
    one_line,
)

FORMAT = "argo"
KINDS = {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"}
MAX_DEPTH = 20
_DEPENDS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_DEPENDS_RESULTS = {
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
}


def looks_like(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and str(doc.get("apiVersion", "")).startswith("argoproj.io/")
        and doc.get("kind") in KINDS
    )


def depends_names(expression: str) -> list[str]:
    """Task names in a ``depends`` expression; ``.Succeeded``-style suffixes are dropped."""
    names: list[str] = []
    for token in _DEPENDS_NAME.findall(expression):
        base, _, suffix = token.rpartition(".")
        if base and suffix in _DEPENDS_RESULTS:
            token = base
        names.append(token)
    return list(dict.fromkeys(names))


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    wf = next((d for d in docs if looks_like(d)), None)
    if wf is None:
        graph.problem("no Argo Workflow in this file")
        return graph.build("mlops", FORMAT, path, path.stem)
    meta = wf.get("metadata") if isinstance(wf.get("metadata"), dict) else {}
    name = str(meta.get("name") or meta.get("generateName") or path.stem).rstrip("-")
    spec = wf.get("spec") if isinstance(wf.get("spec"), dict) else {}
    if wf.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec") if isinstance(spec.get("workflowSpec"), dict) else {}
    templates = {
        str(t["name"]): t
        for t in as_list(spec.get("templates"))
        if isinstance(t, dict) and "name" in t
    }
    ref = spec.get("workflowTemplateRef")
    if isinstance(ref, dict):
        graph.references.append(Reference("workflowTemplateRef", str(ref.get("name"))))
    entry = spec.get("entrypoint")
    if entry is None:
        entry = next((n for n, t in templates.items() if "dag" in t or "steps" in t), None)
    if entry is None:
        if not isinstance(ref, dict):
            graph.problem("no entrypoint and no dag/steps template")
        return graph.build("mlops", FORMAT, path, name)
    entry = str(entry)
    template = templates.get(entry)
    if template is None:
        graph.problem(f"entrypoint {entry!r} is not a template in this file")
        return graph.build("mlops", FORMAT, path, name)
    if "dag" in template or "steps" in template:
        _expand(template, None, templates, graph, 0, {entry})
    else:
        graph.add_stage(_leaf_stage(entry, entry, template, None, None, graph))
    return graph.build("mlops", FORMAT, path, name)


def _expand(
    template: dict[str, Any],
    parent: str | None,
    templates: dict[str, Any],
    graph: GraphBuilder,
    depth: int,
    active: set[str],
) -> list[str]:
    """Add the stages of a dag/steps template; returns the ids added at this level."""
    if depth > MAX_DEPTH:
        graph.problem(f"templates nest deeper than {MAX_DEPTH} levels under {parent!r}")
        return []
    if graph.stages_full:
        graph.dropped_stages += 1
        return []
    prefix = f"{parent}/" if parent else ""
    entries: list[tuple[dict[str, Any], list[str]]] = []
    dag = template.get("dag")
    if isinstance(dag, dict):
        for task in as_list(dag.get("tasks")):
            if not isinstance(task, dict) or "name" not in task:
                continue
            if isinstance(task.get("depends"), str):
                deps = depends_names(task["depends"])
            else:
                deps = [str(d) for d in as_list(task.get("dependencies"))]
            entries.append((task, deps))
    else:
        previous: list[str] = []
        for group in as_list(template.get("steps")):
            current: list[str] = []
            for step in as_list(group):
                if isinstance(step, dict) and "name" in step:
                    entries.append((step, list(previous)))
                    current.append(str(step["name"]))
            if current:
                previous = current
    ids: list[str] = []
    for task, deps in entries:
        sid = prefix + str(task["name"])
        ids.append(sid)
        for dep in deps:
            graph.add_edge(prefix + dep, sid)
        if parent and not deps:
            graph.add_edge(parent, sid, "contains")
        tname = task.get("template")
        tref = task.get("templateRef")
        matrix = _fanout(task)
        if isinstance(tref, dict):
            target = f"{tref.get('name')}/{tref.get('template')}"
            graph.references.append(Reference("templateRef", target, sid))
            graph.add_stage(
                Stage(
                    id=sid,
                    name=str(task["name"]),
                    kind="template-ref",
                    actions=(target,),
                    matrix=matrix,
                    group=parent,
                )
            )
            continue
        child = templates.get(str(tname)) if tname is not None else None
        if child is None:
            graph.problem(f"task {sid!r} uses unknown template {tname!r}")
            graph.add_stage(Stage(id=sid, name=str(task["name"]), group=parent, matrix=matrix))
            continue
        if "dag" in child or "steps" in child:
            graph.add_stage(
                Stage(
                    id=sid,
                    name=str(task["name"]),
                    kind="dag" if "dag" in child else "steps",
                    matrix=matrix,
                    group=parent,
                )
            )
            if str(tname) in active:
                graph.problem(f"template {tname!r} calls itself (recursion not expanded)")
                continue
            _expand(child, sid, templates, graph, depth + 1, active | {str(tname)})
        else:
            graph.add_stage(_leaf_stage(sid, str(task["name"]), child, matrix, parent, graph))
    return ids


def _fanout(task: dict[str, Any]) -> Matrix | None:
    if isinstance(task.get("withItems"), list):
        return Matrix(combinations=len(task["withItems"]), note="withItems")
    if "withParam" in task:
        return Matrix(combinations=None, dynamic=f"withParam {one_line(task['withParam'], 60)}")
    seq = task.get("withSequence")
    if isinstance(seq, dict):
        count = seq.get("count")
        if isinstance(count, int):
            return Matrix(combinations=count, note="withSequence")
        try:
            start, end = int(seq.get("start", 0)), int(seq["end"])
            return Matrix(combinations=abs(end - start) + 1, note="withSequence")
        except (KeyError, TypeError, ValueError):
            return Matrix(combinations=None, dynamic="withSequence")
    return None


def _leaf_stage(
    sid: str,
    name: str,
    template: dict[str, Any],
    matrix: Matrix | None,
    parent: str | None,
    graph: GraphBuilder,
) -> Stage:
    commands: list[str] = []
    images: list[str] = []
    kind = "container"
    containers: list[Any] = []
    for key in ("container", "script"):
        if isinstance(template.get(key), dict):
            containers.append(template[key])
            kind = key
    container_set = template.get("containerSet")
    if isinstance(container_set, dict):
        containers.extend(
            c for c in as_list(container_set.get("containers")) if isinstance(c, dict)
        )
        kind = "containerSet"
    for container in containers:
        add_container(container, images, commands)
        if isinstance(container.get("source"), str):
            commands.append(container["source"])
    resource = template.get("resource")
    if isinstance(resource, dict):
        kind = "resource"
        commands.append(f"kubectl {resource.get('action', 'apply')} (resource template)")
    for key in ("suspend", "http", "plugin", "data"):
        if key in template:
            kind = key
    inputs: dict[str, Any] = template["inputs"] if isinstance(template.get("inputs"), dict) else {}
    outputs: dict[str, Any] = (
        template["outputs"] if isinstance(template.get("outputs"), dict) else {}
    )
    return Stage(
        id=sid,
        name=name,
        kind=kind,
        commands=tuple(commands),
        images=tuple(images),
        inputs=_names(inputs),
        outputs=_names(outputs),
        matrix=matrix,
        group=parent,
    )


def _names(section: dict[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for key in ("artifacts", "parameters"):
        for item in as_list(section.get(key)):
            if isinstance(item, dict) and "name" in item:
                out.append(str(item["name"]))
    return tuple(out)

"""Tekton Pipelines (Pipeline, PipelineRun): ``tasks`` ordered by ``runAfter``, plus ``finally``.

Besides ``runAfter``, a task that reads another task's result (``$(tasks.X.results.Y)``) runs
after it, so those references are edges too. ``finally`` tasks run once every other task is done:
they get an edge from each task nothing else waits for. Steps (images, scripts) come from Task
documents in the same file when ``taskRef`` names one; remote refs (resolvers, bundles) are
references. A file often holds several documents (RBAC, Tasks, the Pipeline, a PipelineRun);
the first Pipeline or PipelineRun with tasks is the pipeline, a PipelineRun naming a Pipeline in
the same file lends it its run name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mltop.core.pipelines.matrix import product_matrix
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

FORMAT = "tekton"
_RESULT_REF = re.compile(r"\$\(\s*tasks\.([A-Za-z0-9_.-]+?)\.(?:results|status)\b")
TASK_KEYS = {
    "name",
    "displayName",
    "description",
    "taskRef",
    "taskSpec",
    "pipelineRef",
    "pipelineSpec",
    "runAfter",
    "retries",
    "timeout",
    "params",
    "matrix",
    "workspaces",
    "when",
    "onError",
}


def _is_tekton(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("tekton.dev/")


def looks_like(doc: Any) -> bool:
    return _is_tekton(doc) and doc.get("kind") in ("Pipeline", "PipelineRun")


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    tekton = [d for d in docs if _is_tekton(d)]
    tasks = {
        str(_meta(d).get("name")): d
        for d in tekton
        if d.get("kind") in ("Task", "ClusterTask") and _meta(d).get("name")
    }
    pipelines = {
        str(_meta(d).get("name")): d for d in tekton if d.get("kind") == "Pipeline" and _meta(d)
    }
    chosen: dict[str, Any] | None = None
    name = path.stem
    for doc in tekton:
        spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        if doc.get("kind") == "Pipeline":
            chosen, name = spec, str(_meta(doc).get("name") or name)
            break
        if doc.get("kind") == "PipelineRun":
            run_name = str(_meta(doc).get("name") or _meta(doc).get("generateName") or name)
            if isinstance(spec.get("pipelineSpec"), dict):
                chosen, name = spec["pipelineSpec"], run_name.rstrip("-")
                break
            ref = spec.get("pipelineRef")
            if isinstance(ref, dict):
                target = str(ref.get("name") or ref.get("resolver") or "?")
                if target in pipelines:
                    continue
                graph.references.append(Reference("pipelineRef", target))
    if chosen is None:
        if not graph.references:
            graph.problem("no Tekton Pipeline or PipelineRun with tasks in this file")
        return graph.build("devops", FORMAT, path, name)
    main = [t for t in as_list(chosen.get("tasks")) if isinstance(t, dict) and "name" in t]
    final = [t for t in as_list(chosen.get("finally")) if isinstance(t, dict) and "name" in t]
    if not main and not final:
        graph.problem(f"pipeline {name!r} has no tasks")
    for task in main:
        _add_task(task, None, tasks, graph)
    waited_on = {need for t in main for need in _needs(t)}
    sinks = [str(t["name"]) for t in main if str(t["name"]) not in waited_on]
    for task in final:
        _add_task(task, "finally", tasks, graph)
        for sink in sinks:
            graph.add_edge(sink, str(task["name"]), "finally")
    return graph.build("devops", FORMAT, path, name)


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _needs(task: dict[str, Any]) -> list[str]:
    needs = [str(n) for n in as_list(task.get("runAfter"))]
    for text in _strings(task.get("params")) + _strings(task.get("when")):
        needs.extend(_RESULT_REF.findall(text))
    return list(dict.fromkeys(n for n in needs if n != task.get("name")))


def _strings(value: Any) -> list[str]:
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _add_task(
    task: dict[str, Any], group: str | None, tasks: dict[str, Any], graph: GraphBuilder
) -> None:
    sid = str(task["name"])
    graph.check_keys(task, TASK_KEYS, f"task {sid!r}")
    run_after = {str(n) for n in as_list(task.get("runAfter"))}
    for need in _needs(task):
        graph.add_edge(need, sid, "needs" if need in run_after else "result")
    actions: list[str] = []
    spec: Any = task.get("taskSpec")
    ref = task.get("taskRef")
    if isinstance(ref, dict):
        if ref.get("resolver"):
            target = f"{ref['resolver']} resolver"
            ref_params = {
                str(p.get("name")): p.get("value")
                for p in as_list(ref.get("params"))
                if isinstance(p, dict)
            }
            detail = ref_params.get("name") or ref_params.get("pathInRepo") or ref_params.get("url")
            if detail:
                target += f": {one_line(detail, 80)}"
            graph.references.append(Reference("taskRef", target, sid))
            actions.append(target)
        elif ref.get("name"):
            actions.append(str(ref["name"]))
            found = tasks.get(str(ref["name"]))
            if isinstance(found, dict):
                spec = found.get("spec")
            else:
                graph.references.append(Reference("taskRef", str(ref["name"]), sid))
    commands: list[str] = []
    images: list[str] = []
    if isinstance(spec, dict):
        for step in as_list(spec.get("steps")):
            if not isinstance(step, dict):
                continue
            add_container(step, images, commands)
            if isinstance(step.get("script"), str):
                commands.append(step["script"])
    params = tuple(str(p.get("name")) for p in as_list(task.get("params")) if isinstance(p, dict))
    results = tuple(
        str(r.get("name"))
        for r in as_list(spec.get("results") if isinstance(spec, dict) else None)
        if isinstance(r, dict)
    )
    graph.add_stage(
        Stage(
            id=sid,
            name=str(task.get("displayName") or sid),
            kind="finally" if group else "task",
            commands=tuple(commands),
            actions=tuple(actions),
            images=tuple(images),
            params=params,
            outputs=results,
            matrix=_matrix(task.get("matrix")),
            group=group,
        )
    )


def _matrix(spec: Any) -> Matrix | None:
    """Tekton ``matrix``: params fan out as a product; ``include`` entries add combinations.

    An empty array anywhere makes the product zero (Tekton skips the task); include entries
    that only add params to existing combinations do not add to the count.
    """
    if not isinstance(spec, dict):
        return None
    axes = [
        (str(p.get("name")), p.get("value"))
        for p in as_list(spec.get("params"))
        if isinstance(p, dict)
    ]
    include = [i for i in as_list(spec.get("include")) if isinstance(i, dict)]
    if axes:
        base = product_matrix(axes)
        axis_values = {n: v if isinstance(v, list) else [v] for n, v in axes}
        extra = 0
        for entry in include:
            values = {
                str(p.get("name")): p.get("value")
                for p in as_list(entry.get("params"))
                if isinstance(p, dict)
            }
            if any(n in axis_values and v not in axis_values[n] for n, v in values.items()):
                extra += 1
        total = (base.combinations or 0) + extra
        note = "skipped: an empty parameter array" if base.combinations == 0 else base.note
        return Matrix(combinations=total, axes=base.axes, note=note)
    return Matrix(combinations=len(include), note="include entries")

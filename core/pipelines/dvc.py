"""DVC pipelines (``dvc.yaml``): stages with deps/outs/params/metrics, ``foreach`` and ``matrix``.

Edges are not written in dvc.yaml; DVC derives them from paths, and so does this parser: a stage
depends on every stage with an output at, above or below one of its dependency paths.
``foreach``/``matrix`` stages are expanded the way DVC names them (``name@key``,
``name@v1-v2``) with ``${item}``/``${key}``/``${params.key}`` interpolation from ``vars`` and
params.yaml; beyond MATRIX_EXPAND_CAP copies the stage is kept as one summarised stage.
"""

from __future__ import annotations

import bisect
import itertools
import math
import posixpath
import re
from pathlib import Path
from typing import Any

from mltop.core.importers.dvc_layout import entry_paths
from mltop.core.pipelines.model import (
    MATRIX_EXPAND_CAP,
    GraphBuilder,
    Matrix,
    Pipeline,
    Reference,
    Stage,
    as_list,
    one_line,
    text_items,
)
from mltop.core.pipelines.yamlload import PipelineFileError, load_documents

FORMAT = "dvc"
TOP_KEYS = {"stages", "vars", "params", "metrics", "plots", "artifacts", "datasets"}
STAGE_KEYS = {
    "cmd",
    "wdir",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "frozen",
    "always_changed",
    "desc",
    "meta",
    "vars",
    "foreach",
    "do",
    "matrix",
}
DEFAULT_PARAMS = "params.yaml"
_INTERP = re.compile(r"\$\{\s*([^}]+?)\s*\}")


def is_lock(doc: Any) -> bool:
    """dvc.lock: DVC's record of the last run (``schema: '2.0'``), not a definition."""
    return isinstance(doc, dict) and "schema" in doc and isinstance(doc.get("stages"), dict)


def looks_like(doc: Any) -> bool:
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict) or is_lock(doc):
        return False
    bodies = [b for b in doc["stages"].values() if isinstance(b, dict)]
    return bool(bodies) and all(("cmd" in b or "foreach" in b or "matrix" in b) for b in bodies)


def parse(path: Path, docs: list[Any]) -> Pipeline:
    graph = GraphBuilder()
    doc = docs[0] if docs else None
    name = path.parent.name + "/dvc.yaml" if path.name == "dvc.yaml" else path.name
    if not isinstance(doc, dict):
        graph.problem("not a dvc.yaml: no top-level mapping")
        return graph.build("mlops", FORMAT, path, name)
    graph.check_keys(doc, TOP_KEYS)
    stages = doc.get("stages")
    if not isinstance(stages, dict):
        graph.problem("no 'stages' mapping")
        return graph.build("mlops", FORMAT, path, name)
    context = _context(path, doc, graph)
    artifacts = doc.get("artifacts")
    if isinstance(artifacts, dict):
        for art_name, art in artifacts.items():
            if isinstance(art, dict):
                what = f"{art.get('type', 'artifact')}: {art.get('path', '?')}"
                graph.references.append(Reference("artifact", f"{art_name} ({what})"))
    for stage_name, body in graph.entries(stages, "stage", STAGE_KEYS):
        for sid, expanded, matrix in _expand(stage_name, body, context, graph):
            graph.add_stage(_stage(sid, expanded, matrix, graph))
    _link_by_paths(graph)
    return graph.build("mlops", FORMAT, path, name)


def _context(path: Path, doc: dict[str, Any], graph: GraphBuilder) -> dict[str, Any]:
    """Values ``${...}`` may refer to: params.yaml beside dvc.yaml, then ``vars`` entries."""
    context: dict[str, Any] = {}
    files = [DEFAULT_PARAMS]
    extra: list[dict[str, Any]] = []
    for entry in as_list(doc.get("vars")):
        if isinstance(entry, str):
            files.append(entry.split(":", 1)[0])
        elif isinstance(entry, dict):
            extra.append(entry)
    for fname in dict.fromkeys(files):
        candidate = path.parent / fname
        if not candidate.is_file() or candidate.suffix not in (".yaml", ".yml"):
            continue
        try:
            loaded = load_documents(candidate)
        except PipelineFileError as exc:
            graph.problem(f"params not read: {exc}")
            continue
        if loaded and isinstance(loaded[0], dict):
            context.update(loaded[0])
    for entry in extra:
        context.update(entry)
    return context


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(dotted)
    return value


def _interpolate(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _INTERP.fullmatch(value)
        if whole:
            try:
                return _lookup(context, whole.group(1))
            except KeyError:
                return value

        def sub(match: re.Match[str]) -> str:
            try:
                found = _lookup(context, match.group(1))
            except KeyError:
                return match.group(0)
            return found if isinstance(found, str) else str(found)

        return _INTERP.sub(sub, value)
    if isinstance(value, dict):
        return {_interpolate(k, context): _interpolate(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, context) for v in value]
    return value


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expand(
    name: str, body: dict[str, Any], context: dict[str, Any], graph: GraphBuilder
) -> list[tuple[str, dict[str, Any], Matrix | None]]:
    local = dict(context)
    for entry in as_list(body.get("vars")):
        if isinstance(entry, dict):
            local.update(entry)
    if "foreach" in body:
        items = _interpolate(body["foreach"], local)
        do = body.get("do")
        if not isinstance(do, dict):
            graph.problem(f"stage {name!r}: foreach without a 'do' mapping")
            return []
        if isinstance(items, dict):
            pairs = [(_key(k), v) for k, v in items.items()]
        elif isinstance(items, list):
            if any(isinstance(v, dict | list) for v in items):
                pairs = [(str(i), v) for i, v in enumerate(items)]
            else:
                pairs = [(_key(v), v) for v in items]
        else:
            graph.problem(f"stage {name!r}: foreach over {one_line(items, 60)!r} is not a list")
            return [(f"{name}@…", do, Matrix(combinations=None, dynamic=one_line(items, 60)))]
        if len(pairs) > MATRIX_EXPAND_CAP:
            graph.problem(f"stage {name!r}: foreach of {len(pairs)} items summarised, not expanded")
            return [
                (f"{name}@…", do, Matrix(combinations=len(pairs), note="foreach, not expanded"))
            ]
        out: list[tuple[str, dict[str, Any], Matrix | None]] = []
        for key, item in pairs:
            ctx = {**local, "item": item, "key": key}
            out.append((f"{name}@{key}", _interpolate(do, ctx), None))
        return out
    if "matrix" in body:
        spec = _interpolate(body["matrix"], local)
        rest = {k: v for k, v in body.items() if k != "matrix"}
        if not isinstance(spec, dict) or not all(isinstance(v, list) for v in spec.values()):
            graph.problem(f"stage {name!r}: matrix is not a mapping of lists")
            return [(f"{name}@…", rest, Matrix(combinations=None, dynamic="matrix"))]
        axes = [(str(k), v) for k, v in spec.items()]
        total = math.prod(len(v) for _, v in axes)
        counts = tuple((k, len(v)) for k, v in axes)
        if total > MATRIX_EXPAND_CAP:
            graph.problem(f"stage {name!r}: matrix of {total} stages summarised, not expanded")
            return [(f"{name}@…", rest, Matrix(total, counts, note="not expanded"))]
        keyed_axes = [
            [
                (f"{axis}{i}" if isinstance(v, dict | list) else _key(v), v)
                for i, v in enumerate(values)
            ]
            for axis, values in axes
        ]
        out = []
        for combo in itertools.product(*keyed_axes):
            item = {axis: value for (axis, _), (_, value) in zip(axes, combo, strict=True)}
            key = "-".join(k for k, _ in combo)
            out.append((f"{name}@{key}", _interpolate(rest, {**local, "item": item}), None))
        return out
    return [(name, _interpolate(body, local), None)]


def _params(value: Any) -> list[str]:
    out: list[str] = []
    for entry in as_list(value):
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, dict):
            for fname, keys in entry.items():
                if keys is None or keys == []:
                    out.append(f"{fname}:")
                else:
                    out.extend(f"{fname}:{k}" for k in text_items(keys))
    return out


def _norm(wdir: str, rel: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, rel.replace("\\", "/")))


def _stage(sid: str, body: dict[str, Any], matrix: Matrix | None, graph: GraphBuilder) -> Stage:
    wdir = str(body.get("wdir") or ".")
    cmd = body.get("cmd")
    if cmd is None:
        graph.problem(f"stage {sid!r} has no cmd")
    commands = text_items(cmd)
    deps = [_norm(wdir, p) for p in entry_paths(body.get("deps"))]
    metrics = [_norm(wdir, p) for p in entry_paths(body.get("metrics"))]
    plots = [_norm(wdir, p) for p in entry_paths(body.get("plots"))]
    outs = [_norm(wdir, p) for p in entry_paths(body.get("outs"))] + metrics + plots
    return Stage(
        id=sid,
        name=sid,
        kind="dvc-stage",
        commands=commands,
        inputs=tuple(deps),
        outputs=tuple(dict.fromkeys(outs)),
        params=tuple(_params(body.get("params"))),
        metrics=tuple(metrics),
        matrix=matrix,
        group=wdir if wdir != "." else None,
    )


def _link_by_paths(graph: GraphBuilder) -> None:
    """Edges from each output's stage to every stage depending on that path, a folder above it
    or a path inside it, found by dictionary and sorted-prefix lookups (not all pairs)."""
    producers: dict[str, list[str]] = {}
    for stage in graph.stages:
        for out in stage.outputs:
            producers.setdefault(out.rstrip("/"), []).append(stage.id)
    ordered = sorted(producers)
    for stage in graph.stages:
        for dep in stage.inputs:
            if graph.full:
                return
            dep = dep.rstrip("/")
            found: list[str] = []
            parts = dep.split("/")
            for i in range(1, len(parts) + 1):  # the path itself and every folder above it
                found.extend(producers.get("/".join(parts[:i]), ()))
            start = bisect.bisect_left(ordered, dep + "/")
            for out in ordered[start:]:  # outputs inside the dependency folder
                if not out.startswith(dep + "/"):
                    break
                found.extend(producers[out])
            for producer in dict.fromkeys(found):
                if producer != stage.id:
                    graph.add_edge(producer, stage.id, "data")
                elif dep in (o.rstrip("/") for o in stage.outputs):
                    graph.problem(f"stage {stage.id!r} lists {dep!r} as both dep and out")

"""Where a DVC project keeps its params, metrics and histories, as its ``dvc.yaml`` files say.

The same reading serves the workspace (files on disk) and every experiment's commit (a git tree
listing): given the parsed ``dvc.yaml`` files and a way to ask whether a path exists, it names
the params files, the metrics files and the DVCLive folders. Apart from the importer because it
is the pipeline file's grammar, not the walk over workspace and git; ``mltop pipelines`` reads
a stage's paths with the same :func:`entry_paths`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from mltop.core import tabular
from mltop.core.importers.dvclive import PLOTS_METRICS, metric_points
from mltop.core.importers.params import flatten_params

PARAMS_FILE = "params.yaml"


def entries(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def entry_paths(value: object) -> list[str]:
    """Paths of a ``metrics:``/``plots:``/``outs:`` list: strings or one-key dicts."""
    out: list[str] = []
    for entry in entries(value):
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, dict):
            out.extend(str(k) for k in entry)
    return out


def _join(base: str, path: str) -> str | None:
    if not path or "${" in path or posixpath.isabs(path):
        return None
    joined = posixpath.normpath(posixpath.join(base, path))
    return None if joined.startswith("..") else joined


@dataclass
class Layout:
    """Where one revision of a project keeps its params, metrics and histories."""

    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    live_dirs: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _add_joined(found: dict[str, None], base: str, paths: Iterable[str]) -> None:
    """Add each of ``paths`` joined to ``base`` to ``found`` (an ordered set); a path that
    leaves the repository, is absolute or templated (`${...}`) is not added."""
    for path in paths:
        if (joined := _join(base, path)) is not None:
            found[joined] = None


def layout(dvc_yamls: dict[str, object], exists: Callable[[str], bool]) -> Layout:
    """Params files, metrics files and DVCLive folders named by these parsed ``dvc.yaml`` files.

    ``exists`` answers for the same revision (the workspace, or a commit's tree). A DVCLive
    folder is the folder of a metrics file that has ``plots/metrics`` under it, or the folder
    above a plots entry ending in ``plots/metrics``.
    """
    out = Layout()
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    plots: dict[str, None] = {}
    if exists(PARAMS_FILE):
        params[PARAMS_FILE] = None
    for yaml_path, doc in sorted(dvc_yamls.items()):
        base = posixpath.dirname(yaml_path)
        if not isinstance(doc, dict):
            out.problems.append((yaml_path, "not a DVC pipeline (expected a mapping)"))
            continue
        for key, found in (("params", params), ("metrics", metrics), ("plots", plots)):
            _add_joined(found, base, entry_paths(doc.get(key)))
        stages = doc.get("stages")
        if not isinstance(stages, dict):
            continue
        for stage in stages.values():
            if not isinstance(stage, dict):
                continue
            if isinstance(stage.get("do"), dict):
                stage = stage["do"]  # foreach/matrix stages: templated paths are skipped
            wdir = stage.get("wdir", ".")
            stage_base = _join(base, wdir if isinstance(wdir, str) else ".") or base
            for entry in entries(stage.get("params")):
                if isinstance(entry, dict):
                    for name in entry:
                        if (joined := _join(stage_base, str(name))) is not None:
                            params[joined] = None
                elif (
                    isinstance(entry, str)
                    and (joined := _join(stage_base, PARAMS_FILE)) is not None
                ):
                    params[joined] = None
            _add_joined(metrics, stage_base, entry_paths(stage.get("metrics")))
            _add_joined(plots, stage_base, entry_paths(stage.get("plots")))
    out.params = [p for p in params if exists(p)]
    out.metrics = list(metrics)
    live: dict[str, None] = {}
    for path in metrics:
        folder = posixpath.dirname(path)
        if exists(posixpath.join(folder, PLOTS_METRICS) if folder else PLOTS_METRICS):
            live[folder] = None
    for path in plots:
        parts = path.split("/")
        for i in range(len(parts) - 1):
            if parts[i] == "plots" and parts[i + 1] == "metrics":
                live["/".join(parts[:i])] = None
                break
    out.live_dirs = list(live)
    return out


def plots_dir(live_dir: str) -> str:
    return posixpath.join(live_dir, PLOTS_METRICS) if live_dir else PLOTS_METRICS


def params_of(docs: Iterable[tuple[str, object]]) -> dict[str, object]:
    """Flattened params: ``params.yaml`` keys bare (``train.lr``), other files as ``file:key``."""
    out: dict[str, object] = {}
    for path, doc in docs:
        if isinstance(doc, dict):
            label = "" if path == PARAMS_FILE else f"{path}:"
            out.update({label + k: v for k, v in flatten_params(doc).items() if k})
    return out


def metrics_table(
    docs: Sequence[tuple[str, object, float | None]],
    run_id: str,
    history: set[str],
) -> tuple[pa.Table, list[str]]:
    """Final-value points of a run's metrics files, each at its file's time (first file wins
    for a repeated name; a name with a TSV history is left to the history)."""
    tables: list[pa.Table] = []
    keys: list[str] = []
    taken = set(history)
    for _, doc, when in docs:
        table, names = metric_points(doc, run_id, taken, when)
        tables.append(table)
        keys.extend(names)
        taken.update(names)
    if not tables:
        return tabular.empty_points(), []
    return pa.concat_tables(tables), keys

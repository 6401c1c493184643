"""Which format a file is in, finding pipeline files under a folder, and parsing one file.

The path decides first where the tools themselves fix the name (``.github/workflows/``,
``.gitlab-ci.yml``, ``azure-pipelines.yml``, ``dvc.yaml``); otherwise the content decides, with
the most specific markers first (Kubernetes ``apiVersion``/``kind``, then Kubeflow's ``root`` +
``pipelineInfo``, then the CI shapes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from mltop.core.common.regular_files import open_regular, walk_tree
from mltop.core.pipelines import argo, azure, dvc, github, gitlab, jenkins, kubeflow, tekton
from mltop.core.pipelines.model import GraphBuilder, Pipeline, one_line
from mltop.core.pipelines.yamlload import PipelineFileError, load_documents

PARSERS: dict[str, ModuleType] = {
    github.FORMAT: github,
    gitlab.FORMAT: gitlab,
    azure.FORMAT: azure,
    dvc.FORMAT: dvc,
    kubeflow.FORMAT: kubeflow,
    argo.FORMAT: argo,
    tekton.FORMAT: tekton,
}
KIND: dict[str, str] = {
    github.FORMAT: "devops",
    gitlab.FORMAT: "devops",
    azure.FORMAT: "devops",
    tekton.FORMAT: "devops",
    jenkins.FORMAT: "devops",
    dvc.FORMAT: "mlops",
    kubeflow.FORMAT: "mlops",
    argo.FORMAT: "mlops",
}
_CONTENT_ORDER = (tekton, argo, kubeflow, dvc, github, azure, gitlab)

SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    ".mltop",
    ".dvc",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "site-packages",
    ".idea",
    ".vscode",
    "mlruns",
    "wandb",
    "dvclive",
    # build outputs: setuptools copies package data (a bundled sample project) into build/lib
    "build",
    "dist",
}
SNIFF_BYTES = 64 * 1024
MAX_SNIFFED_FILES = 5_000
"""Other YAML files are read (their head) only to look for Kubeflow/Argo/Tekton markers."""


def format_from_path(path: Path) -> str | None:
    name = path.name.lower()
    parts = [p.lower() for p in path.parts]
    if (
        name.endswith((".yml", ".yaml"))
        and len(parts) >= 3
        and parts[-3:-1]
        == [
            ".github",
            "workflows",
        ]
    ):
        return github.FORMAT
    if name.endswith(".gitlab-ci.yml") or name.endswith(".gitlab-ci.yaml"):
        return gitlab.FORMAT
    if name.startswith("azure-pipelines") or name.endswith("azure-pipelines.yml"):
        return azure.FORMAT
    if name == "dvc.yaml":
        return dvc.FORMAT
    if jenkins.is_jenkinsfile(path):
        return jenkins.FORMAT
    return None


def format_from_content(docs: list[Any]) -> str | None:
    for module in _CONTENT_ORDER:
        if any(module.looks_like(doc) for doc in docs):
            return str(module.FORMAT)
    return None


def detect_format(path: Path, docs: list[Any]) -> str | None:
    by_path = format_from_path(path)
    if by_path is not None:
        return by_path
    return format_from_content(docs)


def parse_file(path: Path, fmt: str | None = None) -> Pipeline:
    """Parse one pipeline file; never raises on bad input.

    A file that cannot be read, is not YAML, or is not a pipeline comes back as an empty
    Pipeline whose ``problems`` hold one line naming the file.
    """
    path = Path(path)
    if fmt == jenkins.FORMAT or (fmt is None and jenkins.is_jenkinsfile(path)):
        return _parse_jenkins(path)
    try:
        docs = load_documents(path)
    except PipelineFileError as exc:
        return _failed(path, fmt, str(exc))
    if not docs:
        return _failed(path, fmt, f"{path}: empty file, no pipeline")
    if path.name.endswith("dvc.lock") or (fmt is None and dvc.is_lock(docs[0])):
        return _failed(
            path,
            fmt,
            f"{path}: a dvc.lock (DVC's record of the last run), not a "
            "pipeline definition; read dvc.yaml beside it",
        )
    fmt = fmt or detect_format(path, docs)
    if fmt is None or fmt not in PARSERS:
        return _failed(path, fmt, f"{path}: not a recognised pipeline definition")
    try:
        pipeline: Pipeline = PARSERS[fmt].parse(path, docs)
    except RecursionError:
        return _failed(path, fmt, f"{path}: structure nested too deeply")
    except Exception as exc:  # a parser bug must not take the whole view down
        return _failed(path, fmt, f"{path}: could not be read as {fmt}: {one_line(exc, 160)}")
    return replace(pipeline, problems=tuple(f"{path}: {p}" for p in pipeline.problems))


def _parse_jenkins(path: Path) -> Pipeline:
    """A Jenkinsfile is Groovy, not YAML: its own reader, the same promises."""
    try:
        pipeline = jenkins.parse_file(path)
    except PipelineFileError as exc:
        return _failed(path, jenkins.FORMAT, str(exc))
    except RecursionError:
        return _failed(path, jenkins.FORMAT, f"{path}: structure nested too deeply")
    except Exception as exc:  # a parser bug must not take the whole view down
        return _failed(
            path, jenkins.FORMAT, f"{path}: could not be read as Jenkins: {one_line(exc, 160)}"
        )
    return replace(pipeline, problems=tuple(f"{path}: {p}" for p in pipeline.problems))


def _failed(path: Path, fmt: str | None, message: str) -> Pipeline:
    graph = GraphBuilder()
    kind = KIND.get(fmt or "", "devops")
    pipeline = graph.build(kind, fmt or "unknown", path, path.name)  # type: ignore[arg-type]
    return replace(pipeline, problems=(one_line(message, 400),))


def _sniff(path: Path) -> str | None:
    """Kubeflow/Argo/Tekton by cheap text markers in the head, before any YAML parsing."""
    try:
        with open_regular(path) as fh:
            head = fh.read(SNIFF_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    if "argoproj.io/" in head and "apiVersion" in head:
        return argo.FORMAT
    if "tekton.dev/" in head and "apiVersion" in head:
        return tekton.FORMAT
    if ("pipelineInfo:" in head or "deploymentSpec:" in head) and "root:" in head:
        return kubeflow.FORMAT
    if "# PIPELINE DEFINITION" in head:
        return kubeflow.FORMAT
    return None


def discover(root: Path, on_dir: Callable[[Path], None] | None = None) -> list[tuple[Path, str]]:
    """Pipeline files under ``root`` with their format guess, in a stable order.

    Skips VCS, tool caches, virtual environments and node_modules. Files named by a tool's
    convention are taken by name; other YAML files only when their head carries Kubeflow, Argo
    or Tekton markers (at most MAX_SNIFFED_FILES are sniffed).
    """
    root = Path(root)
    found: list[tuple[Path, str]] = []
    sniffed = 0
    # FIFOs and devices never reach the loop: opening one named like a workflow would block.
    for dirpath, dirnames, filenames, _others in walk_tree(root):
        here = Path(dirpath)
        if on_dir is not None:
            on_dir(here)
        keep = []
        for d in sorted(dirnames):
            if d in SKIP_DIRS or d.endswith(".egg-info"):
                continue
            if (here / d / "pyvenv.cfg").exists():
                continue
            keep.append(d)
        if here.name == ".github":
            keep = [d for d in keep if d == "workflows"]
        dirnames[:] = keep
        for fname in sorted(filenames):
            path = here / fname
            if jenkins.is_jenkinsfile(path):
                found.append((path, jenkins.FORMAT))
                continue
            if not fname.lower().endswith((".yml", ".yaml")):
                continue
            fmt = format_from_path(path)
            if fmt is None and here.parts[-2:] == (".github", "workflows"):
                fmt = github.FORMAT
            if fmt is None:
                if sniffed >= MAX_SNIFFED_FILES:
                    continue
                sniffed += 1
                fmt = _sniff(path)
            if fmt is not None:
                found.append((path, fmt))
    return found

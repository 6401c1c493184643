"""``mltop pipelines [PATH]``: CI and ML pipelines side by side, or one graph with ``--dag``.

:func:`pipelines_command` does the work as a plain function, so it is tested without a
subprocess. Exit codes: 0 all read cleanly, 1 something was found but has problems (or nothing
was found), 2 a usage error (unknown format, missing path or file). mltop.core.pipelines (and
httpx) are imported only when this command runs: they would add a third to every other
command's start-up.

The register phase and the maturity reading take the model registry as evidence, as the
Pipelines screen does: the store is brought up to date first (``--scan``/``--no-scan`` as for
``mltop runs``), and the models registered under the repository, their latest versions and
aliases are read from it (``registry`` in JSON).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mltop.core.cli.output import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    Parser,
    open_store_for,
    print_problems,
    resolve_root,
    stderr_console,
    store_root,
)
from mltop.core.cli.sources import add_scan_option, ingest_with_progress, scan_wanted
from mltop.core.common.sanitize import inert_json

if TYPE_CHECKING:
    from mltop.core.pipelines.overview import GitHubOptions, Overview
    from mltop.core.pipelines.registry_evidence import RegisteredModelEvidence

FORMATS = ("table", "json", "md")


def cmd_pipelines(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="mltop pipelines",
        description="Show the CI (DevOps) and ML (MLOps) pipelines under PATH side by side.",
    )
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--format", choices=("table", "json", "md"), default="table")
    parser.add_argument("--dag", metavar="FILE", help="print one pipeline's graph")
    parser.add_argument(
        "--github",
        metavar="OWNER/REPO",
        help="fetch GitHub Actions run status for this repository (token: $GITHUB_TOKEN)",
    )
    parser.add_argument("--branch", help="GitHub branch whose latest runs to show")
    parser.add_argument("--store", help="store file (default: PATH/.mltop/store.duckdb)")
    add_scan_option(parser)
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    return pipelines_command(
        root,
        fmt=args.format,
        dag=Path(args.dag) if args.dag else None,
        out=sys.stdout,
        github_repo=args.github,
        github_branch=args.branch,
        registry=RegistryOptions(args.scan, args.store),
    )


@dataclass(frozen=True)
class RegistryOptions:
    """Where the registry evidence is read from: whether to scan first (None: as ``mltop runs``
    decides) and the store file (None: the folder's)."""

    scan: bool | None = None
    store: str | None = None


def _registry(
    overview: Overview, options: RegistryOptions, fmt: str
) -> list[RegisteredModelEvidence]:
    """The models registered under the repository, the store brought up to date first; problems
    of that import go to stderr, as every command's do."""
    from mltop.core.pipelines.registry_evidence import registry_evidence

    err = stderr_console()
    root = overview.root if overview.root.is_dir() else overview.root.parent
    home = overview.repository.root if overview.repository else root
    with open_store_for(store_root(root), options.store, err) as store:
        if scan_wanted(root, store, options.scan, err):
            show_progress = err.is_terminal and fmt == "table"
            print_problems(ingest_with_progress(root, store, err, show_progress), err)
        return registry_evidence(store, home)


def pipelines_command(
    path: Path,
    fmt: str = "table",
    dag: Path | None = None,
    out: TextIO = sys.stdout,
    *,
    github_repo: str | None = None,
    github_token: str | None = None,
    github_api: str | None = None,
    github_branch: str | None = None,
    registry: RegistryOptions | None = None,
) -> int:
    """Print the DevOps/MLOps side-by-side view of ``path`` (or one graph with ``dag``).

    GitHub Actions run status is fetched only when ``github_repo`` (``owner/name``) is given;
    the token defaults to the ``GITHUB_TOKEN`` environment variable, the API to GitHub's. The
    model registry is read as evidence unless ``registry`` is None.
    """
    from mltop.core.pipelines.github_runs import DEFAULT_API
    from mltop.core.pipelines.overview import GitHubOptions, build_overview
    from mltop.core.pipelines.registry_evidence import with_registry
    from mltop.core.pipelines.render import (
        inert,
        overview_dict,
        render_markdown,
        render_table,
    )

    if fmt not in FORMATS:
        out.write(f"error: unknown format {inert(fmt, 40)!r} (use {', '.join(FORMATS)})\n")
        return EXIT_USAGE
    path = Path(path)
    if not path.exists():
        out.write(f"error: {inert(path)} does not exist\n")
        return EXIT_USAGE
    github = (
        GitHubOptions(github_repo, github_token, github_api or DEFAULT_API, github_branch)
        if github_repo
        else None
    )
    if dag is not None:
        return _dag_command(path, Path(dag), fmt, out, github)
    overview = build_overview(path, github)
    models = None
    if overview.pipelines and registry is not None:
        models = _registry(overview, registry, fmt)
        overview.comparison = with_registry(overview.comparison, models)
    data = overview_dict(overview)
    data["registry"] = None if models is None else [_model_dict(m) for m in models]
    if not overview.pipelines:
        if fmt == "json":
            out.write(inert_json(data, indent=2) + "\n")
        else:
            out.write(f"no pipeline definitions found under {inert(path)}\n")
        return EXIT_PROBLEMS
    if fmt == "json":
        out.write(inert_json(data, indent=2) + "\n")
    elif fmt == "md":
        out.write(render_markdown(overview))
    else:
        out.write(render_table(overview))
    return EXIT_PROBLEMS if overview.problems else EXIT_OK


def _model_dict(model: RegisteredModelEvidence) -> dict[str, object]:
    return {
        "name": model.name,
        "latest_version": model.latest,
        "aliases": dict(model.aliases),
        "registry": model.source,
    }


def _dag_command(path: Path, dag: Path, fmt: str, out: TextIO, github: GitHubOptions | None) -> int:
    from mltop.core.pipelines.overview import load_pipeline, stage_statuses
    from mltop.core.pipelines.phases import load_overrides
    from mltop.core.pipelines.render import inert, pipeline_dict, render_dag, render_dag_markdown

    root = path if path.is_dir() else path.parent
    target = dag
    if not target.is_file() and not dag.is_absolute() and (root / dag).is_file():
        target = root / dag
    if not target.is_file():
        out.write(f"error: {inert(dag)} is not a file\n")
        return EXIT_USAGE
    overrides = load_overrides(root)
    pipeline = load_pipeline(target, root, overrides)
    statuses, notes, problems = stage_statuses(pipeline, root, github)
    problems = [*overrides.problems, *pipeline.problems, *problems]
    if fmt == "json":
        data = pipeline_dict(pipeline, statuses, root)
        data["notes"] = notes
        data["problems"] = problems
        out.write(inert_json(data, indent=2) + "\n")
    elif fmt == "md":
        out.write(render_dag_markdown(pipeline, statuses))
    else:
        width = max(60, shutil.get_terminal_size((100, 40)).columns)
        out.write(render_dag(pipeline, statuses, root, width=width))
        for note in notes:
            out.write(f"Note: {inert(note)}\n")
        extra = [p for p in problems if p not in pipeline.problems]
        for problem in extra:
            out.write(f"problem: {inert(problem, 400)}\n")
    return EXIT_PROBLEMS if problems or not pipeline.stages else EXIT_OK

"""A repository is one DevOps side and one MLOps side: every pipeline file grouped by where it
belongs, and each side joined into one stage graph.

Real projects spread CI over several files (six GitHub workflows, GitLab includes, an Azure
template) and ML pipelines over several ``dvc.yaml``; judging a project by one of them calls a
project untested when another workflow runs pytest. So the pipelines found under a folder are
grouped by repository root, the nearest folder (the file's own project folder or above it)
that holds ``.git``, ``.github/workflows``, ``.gitlab-ci.yml``, a ``Jenkinsfile`` or ``.dvc``;
a file with none of these above it forms a group with the other files of its own folder. A
folder of unrelated examples or several checkouts is therefore split, and each group says why
its two sides belong together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mltop.core.pipelines.model import Edge, Pipeline, PipelineKind, Reference, one_line

ROOT_MARKERS = (".git", ".github/workflows", ".gitlab-ci.yml", "Jenkinsfile", ".dvc")
"""What makes a folder a repository root, nearest first wins; ``.git`` may be a file
(worktrees, submodules)."""


def project_dir(pipeline: Pipeline) -> Path:
    """The folder a pipeline belongs to: the repository root for ``.github/workflows`` files
    (and for a joined side), the file's own folder otherwise."""
    path = Path(pipeline.path)
    if pipeline.members:
        return path
    if path.parent.name == "workflows" and path.parent.parent.name == ".github":
        return path.parent.parent.parent
    return path.parent


MAX_INCLUDED = 200
"""Local include/template files followed per folder read; real repositories have a few."""


def local_definitions(pipeline: Pipeline) -> list[tuple[Path, str, Reference]]:
    """Files a CI definition pulls in, with the format to read them as and the reference that
    names them: GitLab ``include: local`` (``*`` globs allowed) and Azure ``template:`` files,
    both taken from the including file's folder (where ``.gitlab-ci.yml`` and
    ``azure-pipelines.yml`` sit: the repository root) and kept only when they are files inside
    it. Remote, project and ``@repo`` references are not files here and stay references."""
    here = Path(pipeline.path).parent
    found: list[tuple[Path, str, Reference]] = []
    fmt = pipeline.format
    for ref in pipeline.references:
        target = ref.target.strip()
        if fmt == "gitlab-ci" and ref.kind == "include":
            if target.startswith("local "):
                names = [t.strip() for t in target[6:].split(",")]
            elif " " not in target and "://" not in target:
                names = [target]
            else:
                continue
            for name in names:
                if not name.endswith((".yml", ".yaml")):
                    continue
                if "**" in name:
                    continue  # a recursive glob could walk node_modules; left as a reference
                if "*" in name:
                    found.extend((p, fmt, ref) for p in sorted(here.glob(name.lstrip("/"))))
                else:
                    found.append((here / name.lstrip("/"), fmt, ref))
        elif fmt == "azure-pipelines" and ref.kind == "template":
            if "@" in target or "$" in target or not target.endswith((".yml", ".yaml")):
                continue
            found.append((here / target.lstrip("/"), fmt, ref))
    out = []
    for path, kind, ref in found:
        try:
            inside = path.resolve().is_relative_to(here.resolve()) and path.is_file()
        except OSError:
            inside = False
        if inside:
            out.append((path, kind, ref))
    return out


def followed(pipeline: Pipeline) -> set[Reference]:
    """The references of a side (of each of its files) that were read as files of their own."""
    return {ref for m in pipeline.members or (pipeline,) for _p, _f, ref in local_definitions(m)}


def member_stage_id(origin: str, stage_id: str) -> str:
    """A stage's id on a joined side: its file, then its own id (``ci.yml:test``)."""
    return f"{origin}:{stage_id}"


@dataclass(frozen=True)
class Repository:
    """The pipelines of one repository root: all its CI files and all its ML pipelines."""

    root: Path
    marker: str
    devops: tuple[Pipeline, ...]
    mlops: tuple[Pipeline, ...]

    @property
    def stages(self) -> int:
        return sum(len(p.stages) for p in (*self.devops, *self.mlops))

    def pairing(self, base: Path) -> str:
        """Why the two sides shown together belong together, in one sentence."""
        where = display(self.root, base)
        if self.marker:
            held = f"the repository at {where} (it holds {self.marker})"
        else:
            held = f"the folder {where} (no repository marker above it)"
        ci = _count(len(self.devops), "CI file")
        ml = _count(len(self.mlops), "ML pipeline")
        if self.devops and self.mlops:
            return f"{ci} and {ml} of {held}"
        if self.devops:
            return f"{ci} of {held}; it holds no ML pipeline"
        return f"{ml} of {held}; it holds no CI definition"

    def summary(self, base: Path) -> str:
        return (
            f"{display(self.root, base)}: {_count(len(self.devops), 'CI file')}, "
            f"{_count(len(self.mlops), 'ML pipeline')}, {_count(self.stages, 'stage')}"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def display(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it (``.`` for base itself), else as given."""
    try:
        rel = Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except (ValueError, OSError):
        return one_line(str(path), 200)
    return one_line(rel or ".", 200)


class _Roots:
    """Repository-root lookups, each folder stat'ed once however many files sit below it."""

    def __init__(self) -> None:
        self._marker: dict[Path, str] = {}

    def marker(self, folder: Path) -> str:
        if folder not in self._marker:
            found = ""
            for name in ROOT_MARKERS:
                try:
                    if (folder / name).exists():
                        found = name
                        break
                except OSError:
                    continue
            self._marker[folder] = found
        return self._marker[folder]

    def root_of(self, folder: Path) -> tuple[Path, str]:
        for candidate in (folder, *folder.parents):
            marker = self.marker(candidate)
            if marker:
                return candidate, marker
        return folder, ""


def group_by_repository(
    pipelines: Sequence[Pipeline], base: Path, homes: dict[Path, Path] | None = None
) -> list[Repository]:
    """Pipelines with stages grouped by repository root, the most relevant first (see
    :func:`_rank`). ``homes`` gives the folder to start from for a file pulled in by another
    (an Azure template in ``templates/`` belongs where its including file does). Files that
    failed to parse have no stages and stay out of every group; their problems are reported
    by the caller."""
    roots = _Roots()
    homes = homes or {}
    groups: dict[Path, tuple[str, list[Pipeline]]] = {}
    for pipeline in pipelines:
        if not pipeline.stages:
            continue
        folder = homes.get(Path(pipeline.path), project_dir(pipeline)).resolve()
        root, marker = roots.root_of(folder)
        groups.setdefault(root, (marker, []))[1].append(pipeline)
    repos = [
        Repository(
            root,
            marker,
            tuple(sorted((p for p in found if p.kind == "devops"), key=_path_key)),
            tuple(sorted((p for p in found if p.kind == "mlops"), key=_path_key)),
        )
        for root, (marker, found) in groups.items()
    ]
    base = Path(base).resolve()
    return sorted(repos, key=lambda r: _rank(r, base))


def _path_key(pipeline: Pipeline) -> str:
    return Path(pipeline.path).as_posix()


def _rank(repo: Repository, base: Path) -> tuple[int, int, int, int, str]:
    """The repository of the folder asked about first (the one holding it or at it), then
    those with both sides, the shallowest, the largest."""
    holds_base = repo.root == base or repo.root in base.parents
    try:
        depth = len(repo.root.relative_to(base).parts)
    except ValueError:
        depth = 0
    both = bool(repo.devops) and bool(repo.mlops)
    return (0 if holds_base else 1, 0 if both else 1, depth, -repo.stages, repo.root.as_posix())


def join(pipelines: Sequence[Pipeline], kind: PipelineKind, root: Path) -> Pipeline | None:
    """One side of a repository as a single stage graph.

    One file is returned as it is. Several become one Pipeline whose ``members`` are the files,
    whose ``path`` is the repository root, and whose stage ids are prefixed with their file
    (:func:`member_stage_id`) so two workflows' ``build`` jobs stay two stages; each stage's
    ``origin`` names its file.
    """
    if not pipelines:
        return None
    if len(pipelines) == 1:
        return pipelines[0]
    stages = []
    edges = []
    references = []
    for pipeline in pipelines:
        origin = display(pipeline.path, root)
        for stage in pipeline.stages:
            stages.append(
                replace(
                    stage,
                    id=member_stage_id(origin, stage.id),
                    needs=tuple(member_stage_id(origin, n) for n in stage.needs),
                    origin=origin,
                )
            )
        edges.extend(
            Edge(member_stage_id(origin, e.source), member_stage_id(origin, e.target), e.kind)
            for e in pipeline.edges
        )
        references.extend(pipeline.references)
    formats = sorted({p.format for p in pipelines})
    return Pipeline(
        kind=kind,
        format=formats[0] if len(formats) == 1 else "+".join(formats),
        path=Path(root),
        name=f"{len(pipelines)} files",
        stages=tuple(stages),
        edges=tuple(edges),
        references=tuple(dict.fromkeys(references)),
        members=tuple(pipelines),
    )


def side_title(pipeline: Pipeline, base: Path, limit: int = 3) -> str:
    """How a side is named: its file, or its files when joined (``.github/workflows/ (4
    files)`` when they share a folder, else ``3 files: a, b, c``)."""
    if not pipeline.members:
        return display(pipeline.path, base)
    names = [display(m.path, base) for m in pipeline.members]
    folders = {name.rpartition("/")[0] for name in names}
    if len(folders) == 1 and "" not in folders:
        return f"{folders.pop()}/ ({len(names)} files)"
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(names)} files: {shown}{more}"


__all__ = [
    "MAX_INCLUDED",
    "ROOT_MARKERS",
    "Repository",
    "display",
    "followed",
    "group_by_repository",
    "join",
    "local_definitions",
    "member_stage_id",
    "project_dir",
    "side_title",
]

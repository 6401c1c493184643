"""DVC's model registry (GTO): artifacts declared in ``dvc.yaml`` or ``artifacts.yaml``, their
versions and stage assignments read from git tags, as ``gto show`` reads them.

GTO keeps no database: ``name@v1.2.0`` registers a version at the tagged commit (``name@v1.2.0!``
deregisters it), ``name#prod#3`` (or ``name#prod`` in simple notation) assigns the stage ``prod``
to the version registered at the tagged commit, ``name#prod!#4`` unassigns it, and
``name@deprecated`` deprecates the whole artifact. An artifact declared in a subfolder's
``dvc.yaml`` is named ``path/to:name`` (how DVC addresses it), written ``path/to=name`` in its
tags since git refuses ``:`` there; models are kept under the name GTO shows. Each folder's
source holds the artifacts of its own path; the repository's root also holds those whose path
declares nothing (any other folder's are that folder's own), so no model is listed twice.
An artifact never versioned is listed as its registry lists it: ``gto show`` lists those of
``artifacts.yaml`` but never reads ``dvc.yaml``, whose declarations are DVC's model registry,
which lists them from the declaration on (as DVC Studio does) in a DVC project (``.dvc/``) only.
So a plain git repository holding a sample ``dvc.yaml`` has no models until one is tagged.
Events are replayed in tag order (creation time, then the tag's number). A stage holds one
version at a time, as an MLflow alias does, so stages are kept as aliases (``@prod v1.2.0``);
versions are kept without GTO's leading ``v``.
Tags are listed with one ``git for-each-ref`` through the DVC importer's git runner (timeouts,
no prompts, no locks taken). A version's run is the one made at its tagged commit: the version
keeps the commit as its run id, which is the native id of DVC's run of a commit or experiment
(the store falls back to any run that recorded that commit).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from mltop.core.common.regular_files import read_limited
from mltop.core.common.safe_yaml import YamlRefused, load_yaml
from mltop.core.entities import ImportReport, ModelVersion, RegisteredModel
from mltop.core.importers import dvc as dvc_importer
from mltop.core.importers.dvclive import dvc_root_of

KIND = "gto"
MAX_DECLARATION = 8 * 1024 * 1024
DECLARATIONS = ("dvc.yaml", "artifacts.yaml")
# GTO's grammar of its tags: an artifact (``dir=name``), then a version, a stage or a
# deprecation, cancelled by ``!``, and the event's number after ``#``.
_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9_/-]*[a-zA-Z0-9])?"
_ARTIFACT = rf"(?:(?P<dir>[a-zA-Z0-9_./-]+)=)?(?P<base>{_PART})"
_SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_TAG = re.compile(
    rf"{_ARTIFACT}(?:(?:#(?P<stage>{_PART})|@v(?P<version>{_SEMVER}))(?P<off>!?)"
    r"|@(?P<deprecated>deprecated)|@created)(?:#(?P<n>\d+))?"
)
_FORMAT = "%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(creatordate:unix)%00" \
    "%(taggername)%00%(contents:subject)"  # fmt: skip


@dataclass(frozen=True)
class Tag:
    name: str
    commit: str
    created: float
    tagger: str
    message: str


def declared_artifacts(
    folder: Path, report: ImportReport
) -> dict[str, tuple[str, dict[str, object]]]:
    """Artifacts ``dvc.yaml`` (its ``artifacts:``) and ``artifacts.yaml`` declare in ``folder``:
    the file that declares each, and its fields."""
    out: dict[str, tuple[str, dict[str, object]]] = {}
    for file_name in DECLARATIONS:
        path = folder / file_name
        if not path.is_file():
            continue
        try:
            doc = load_yaml(read_limited(path, MAX_DECLARATION, file_name).decode("utf-8"))
        except (OSError, UnicodeDecodeError, YamlRefused, yaml.YAMLError) as exc:
            if file_name == "artifacts.yaml":  # dvc.yaml's own problems are the DVC importer's
                report.problem(path, f"cannot read GTO artifacts: {' '.join(str(exc).split())}")
            continue
        if not isinstance(doc, dict):
            continue
        section = doc.get("artifacts") if file_name == "dvc.yaml" else doc
        if not isinstance(section, dict):
            continue
        for name, spec in section.items():
            out.setdefault(str(name), (file_name, spec if isinstance(spec, dict) else {}))
    return out


def list_tags(git: dvc_importer.Git) -> list[Tag]:
    text = git.run("for-each-ref", "refs/tags", f"--format={_FORMAT}").decode("utf-8", "replace")
    tags = []
    for line in text.splitlines():
        parts = line.split("\x00")
        if len(parts) != 6:
            continue
        name, obj, peeled, created, tagger, message = parts
        with contextlib.suppress(ValueError):
            tags.append(Tag(name, peeled or obj, float(created), tagger, message))
    return tags


def _number(match: re.Match[str]) -> int:
    return int(match["n"]) if match["n"] else 0


def full_name(path: str, name: str) -> str:
    """An artifact's name as GTO and DVC show it: ``path/to:name`` outside the repository's root."""
    return f"{path}:{name}" if path else name


def repository_path(git: dvc_importer.Git) -> str:
    """``git``'s folder relative to its repository's root (``""`` at the root), POSIX style."""
    return git.run("rev-parse", "--show-prefix").decode("utf-8", "replace").strip().rstrip("/")


def _owner(folder: Path, here: str) -> Callable[[str], bool]:
    """Whether an artifact path found in a tag belongs to the source at ``folder`` (``here``)."""
    if here:
        return lambda path: path == here

    def at_root(path: str) -> bool:
        if not path:
            return True
        parts = path.split("/")
        if "" in parts or ".." in parts:  # not a folder of this repository
            return True
        return not any((folder.joinpath(*parts) / name).is_file() for name in DECLARATIONS)

    return at_root


def read_registry(
    folder: Path, git: dvc_importer.Git, report: ImportReport
) -> tuple[list[RegisteredModel], list[ModelVersion]]:
    """The artifacts of ``folder``'s repository that are this folder's (see the module's
    docstring), their versions and stages, from its tags."""
    source = str(folder)
    here = repository_path(git)
    owns = _owner(folder, here)
    found = declared_artifacts(folder, report).items()
    declared = {full_name(here, k): spec for k, (_, spec) in found}
    # A model declared but never versioned is listed where its registry lists it: GTO's
    # (`gto show`) lists artifacts.yaml's; dvc.yaml's only DVC's, in a DVC project.
    listing = ("artifacts.yaml", "dvc.yaml") if dvc_root_of(folder) else ("artifacts.yaml",)
    unversioned = {full_name(here, k) for k, (file_name, _) in found if file_name in listing}
    tags = sorted(list_tags(git), key=lambda t: t.created)
    registered: dict[str, dict[str, ModelVersion]] = {}
    at_commit: dict[tuple[str, str], str] = {}
    deprecated: set[str] = set()
    assignments: list[tuple[float, int, str, str, bool, str]] = []
    touched: dict[str, list[float]] = {}
    for tag in tags:
        m = _TAG.fullmatch(tag.name)
        if m is None or not owns(m["dir"] or ""):
            continue
        name = full_name(m["dir"] or "", m["base"])
        touched.setdefault(name, []).append(tag.created)
        if version := m["version"]:
            versions = registered.setdefault(name, {})
            if m["off"]:  # deregistered: still listed, as deleted
                if version in versions:
                    versions[version] = _replace_deleted(versions[version])
                continue
            versions[version] = ModelVersion(
                name=name,
                version=version,
                source_kind=KIND,
                source=source,
                run_native_id=tag.commit,  # the run is the one made at the tagged commit
                uri=_text(declared.get(name, {}).get("path")),
                status="READY",
                description=tag.message or None,
                created=tag.created,
                updated=tag.created,
                user_id=tag.tagger or None,
            )
            at_commit[(name, tag.commit)] = version
        elif m["deprecated"]:
            deprecated.add(name)
        elif m["stage"]:
            assignments.append(
                (tag.created, _number(m), name, m["stage"], bool(m["off"]), tag.commit)
            )
    stages: dict[str, dict[str, str]] = {}
    for _, _, name, stage, off, commit in sorted(assignments):
        if off:
            stages.get(name, {}).pop(stage, None)
            continue
        version = at_commit.get((name, commit))
        if version is not None:
            stages.setdefault(name, {})[stage] = version
    models = []
    versions: list[ModelVersion] = []
    for name in sorted(unversioned | set(registered)):
        spec = declared.get(name, {})
        times = touched.get(name, [])
        aliases = dict(stages.get(name, {})) if name not in deprecated else {}
        tags_of = {k: _text(spec.get(k)) or "" for k in ("type", "path") if spec.get(k)}
        labels = spec.get("labels")
        if isinstance(labels, list) and labels:
            tags_of["labels"] = ", ".join(str(label) for label in labels)
        if name in deprecated:
            tags_of["deprecated"] = "true"
        models.append(
            RegisteredModel(
                name=name,
                source_kind=KIND,
                source=source,
                description=_text(spec.get("desc")),
                created=min(times) if times else None,
                updated=max(times) if times else None,
                tags=tuple(sorted(tags_of.items())),
                aliases=tuple(sorted(aliases.items())),
            )
        )
        by_version: dict[str, list[str]] = {}
        for stage, version in aliases.items():
            by_version.setdefault(version, []).append(stage)
        for version in registered.get(name, {}).values():
            versions.append(
                _with_aliases(version, tuple(sorted(by_version.get(version.version, []))))
            )
    return models, versions


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _replace_deleted(version: ModelVersion) -> ModelVersion:
    from dataclasses import replace

    return replace(version, deleted=True)


def _with_aliases(version: ModelVersion, aliases: tuple[str, ...]) -> ModelVersion:
    from dataclasses import replace

    return replace(version, aliases=() if version.deleted else aliases)


def fingerprint(folder: Path) -> str | None:
    """Tags, refs and the declarations, by stat; None outside a git repository."""
    git_dir = dvc_importer.find_git_dir(folder)
    if git_dir is None:
        return None
    digest = hashlib.sha1()
    files = [*dvc_importer.ref_files(git_dir), *(folder / d for d in DECLARATIONS)]
    for path in files:
        with contextlib.suppress(OSError):
            st = path.stat()
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    return digest.hexdigest()

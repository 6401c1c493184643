"""Stage status where a real record exists: dvc.lock hashes, JUnit XML reports, GitHub runs.

DVC status is computed the way DVC does it, without DVC: a file's hash is the md5 of its bytes
(lock entries with ``hash: md5``, DVC 3) or of its bytes with CRLF turned into LF when the file
looks like text (older lock entries, DVC 2's ``md5-dos2unix``); a directory's hash is the md5 of
the JSON list ``[{"md5": ..., "relpath": ...}, ...]`` of its files sorted by relative path, with
``.dir`` appended. Sizes are compared before hashing, so a changed file usually costs one stat.

JUnit reports (:mod:`mltop.core.pipelines.junit`) and GitHub Actions runs
(:mod:`mltop.core.pipelines.github_runs`) give the other statuses; both are re-exported here so
callers have one place to look.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mltop.core.common.regular_files import open_regular, read_limited, walk_tree
from mltop.core.pipelines.github_runs import GitHubClient, GitHubError, github_status
from mltop.core.pipelines.junit import (
    JUnitError,
    JUnitReport,
    attach_junit,
    find_junit_reports,
    junit_status,
    parse_junit,
)
from mltop.core.pipelines.model import Pipeline, StageStatus, StatusState, one_line
from mltop.core.pipelines.yamlload import PipelineFileError, load_documents

__all__ = [
    "GitHubClient",
    "GitHubError",
    "JUnitError",
    "JUnitReport",
    "attach_junit",
    "dir_md5",
    "dvc_status",
    "file_md5",
    "find_junit_reports",
    "github_status",
    "junit_status",
    "parse_junit",
]

CHUNK = 1024 * 1024
MAX_DIR_FILES = 200_000
"""A directory output with more files than this is reported as unknown rather than hashed."""
MAX_PARAMS_BYTES = 8 * 1024 * 1024
"""A JSON params file larger than this is not read (its params count as unknown)."""


# --- hashing like DVC --------------------------------------------------------------------------
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"


def _looks_text(block: bytes) -> bool:
    """DVC's text test on a file's first 512 bytes: no NUL and at most 30 % odd bytes."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    odd = block.translate(None, _TEXT_CHARS)
    return len(odd) / len(block) <= 0.30


def file_md5(path: Path, dos2unix: bool = False) -> str:
    """md5 of a file's bytes; with ``dos2unix``, of a text file's bytes with CRLF → LF."""
    digest = hashlib.md5(usedforsecurity=False)
    with open_regular(path) as fh:  # a FIFO among a stage's outputs must not block the hash
        if dos2unix and _looks_text(fh.read(512)):
            fh.seek(0)
            carry = b""
            while chunk := fh.read(CHUNK):
                chunk = carry + chunk
                carry = b"\r" if chunk.endswith(b"\r") else b""
                if carry:
                    chunk = chunk[:-1]
                digest.update(chunk.replace(b"\r\n", b"\n"))
            digest.update(carry)
            return digest.hexdigest()
        fh.seek(0)
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class TooLarge(Exception):
    pass


def dir_md5(path: Path, dos2unix: bool = False, max_files: int | None = None) -> str:
    """DVC's ``.dir`` hash of a directory (files only, sorted by posix relative path)."""
    max_files = MAX_DIR_FILES if max_files is None else max_files
    entries: list[dict[str, str]] = []
    for dirpath, _dirnames, filenames, _others in walk_tree(path):
        for fname in filenames:
            full = Path(dirpath) / fname
            rel = full.relative_to(path).as_posix()
            entries.append({"md5": file_md5(full, dos2unix), "relpath": rel})
            if len(entries) > max_files:
                raise TooLarge(f"more than {max_files:,} files")
    entries.sort(key=lambda e: e["relpath"])
    blob = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(blob, usedforsecurity=False).hexdigest() + ".dir"


def _dir_size(path: Path) -> tuple[int, int]:
    size = files = 0
    for dirpath, _dirnames, filenames, _others in walk_tree(path):
        for fname in filenames:
            try:
                size += (Path(dirpath) / fname).stat().st_size
            except OSError:
                continue
            files += 1
    return size, files


# --- dvc status --------------------------------------------------------------------------------
def _lookup(data: Any, dotted: str) -> Any:
    value = data
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(dotted)
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _entry_state(workdir: Path, entry: dict[str, Any]) -> str | None:
    """None when the workspace matches the lock entry, else a short reason."""
    rel = str(entry.get("path", ""))
    target = workdir / rel
    expected = entry.get("md5") or entry.get("etag") or entry.get("checksum")
    if expected is None:
        return None if target.exists() else f"{rel} missing"
    expected = str(expected)
    legacy = entry.get("hash") != "md5"
    if expected.endswith(".dir"):
        if not target.is_dir():
            return f"{rel} missing" if not target.exists() else f"{rel} is no longer a directory"
        if "size" in entry and "nfiles" in entry:
            size, files = _dir_size(target)
            if (size, files) != (entry["size"], entry["nfiles"]):
                return f"{rel} changed"
        try:
            actual = dir_md5(target, dos2unix=legacy)
        except TooLarge as exc:
            raise _Unknown(f"{rel}: {exc}, not hashed") from None
        return None if actual == expected else f"{rel} changed"
    if not target.is_file():
        return f"{rel} missing" if not target.exists() else f"{rel} is now a directory"
    if "size" in entry and not legacy:
        try:
            if target.stat().st_size != entry["size"]:
                return f"{rel} changed"
        except OSError:
            return f"{rel} unreadable"
    return None if file_md5(target, dos2unix=legacy) == expected else f"{rel} changed"


class _Unknown(Exception):
    pass


def dvc_status(pipeline: Pipeline, lock_path: Path | None = None) -> dict[str, StageStatus]:
    """Per DVC stage: up to date, changed (with what changed), not run, or unknown.

    Compares dvc.lock with the workspace: command, dependency and output hashes, and the
    parameter values the lock recorded against the params files now.
    """
    dvc_yaml = Path(pipeline.path)
    lock_path = lock_path or dvc_yaml.with_name("dvc.lock")
    root = dvc_yaml.parent
    if not lock_path.is_file():
        return {
            s.id: StageStatus(StatusState.NOT_RUN, "not run yet: no dvc.lock", source="dvc.lock")
            for s in pipeline.stages
        }
    try:
        docs = load_documents(lock_path)
    except PipelineFileError as exc:
        return {
            s.id: StageStatus(
                StatusState.UNKNOWN, "status unknown: dvc.lock unreadable", details=(str(exc),)
            )
            for s in pipeline.stages
        }
    lock = docs[0] if docs and isinstance(docs[0], dict) else {}
    locked = lock.get("stages") if isinstance(lock.get("stages"), dict) else lock
    params_cache: dict[str, dict[str, Any] | None] = {}
    out: dict[str, StageStatus] = {}
    for stage in pipeline.stages:
        entry = locked.get(stage.id) if isinstance(locked, dict) else None
        if not isinstance(entry, dict):
            out[stage.id] = StageStatus(
                StatusState.NOT_RUN, "not run yet: not in dvc.lock", source="dvc.lock"
            )
            continue
        workdir = root / stage.group if stage.group else root
        try:
            reasons = _stage_changes(stage.commands, entry, workdir, params_cache)
        except _Unknown as exc:
            out[stage.id] = StageStatus(StatusState.UNKNOWN, "status unknown", details=(str(exc),))
            continue
        except OSError as exc:
            out[stage.id] = StageStatus(
                StatusState.UNKNOWN,
                "status unknown",
                details=(one_line(f"cannot read: {exc}"),),
            )
            continue
        if reasons:
            what = [r.removesuffix(" changed") for r in reasons[:2]]
            summary = f"{StatusState.CHANGED.words}: " + ", ".join(what)
            if len(reasons) > 2:
                summary += f" (+{len(reasons) - 2} more)"
            out[stage.id] = StageStatus(
                StatusState.CHANGED, summary, details=tuple(reasons), source="dvc.lock"
            )
        else:
            out[stage.id] = StageStatus(StatusState.UP_TO_DATE, "up to date", source="dvc.lock")
    return out


def _stage_changes(
    commands: tuple[str, ...],
    entry: dict[str, Any],
    workdir: Path,
    params_cache: dict[str, dict[str, Any] | None],
) -> list[str]:
    reasons: list[str] = []
    locked_cmd = entry.get("cmd")
    locked_cmds = (
        tuple(str(c) for c in locked_cmd)
        if isinstance(locked_cmd, list)
        else ((str(locked_cmd),) if locked_cmd is not None else ())
    )
    if commands and locked_cmds and commands != locked_cmds:
        reasons.append("command changed")
    for section in ("deps", "outs"):
        for item in entry.get(section) or []:
            if isinstance(item, dict):
                why = _entry_state(workdir, item)
                if why:
                    reasons.append(why)
    params = entry.get("params")
    if isinstance(params, dict):
        for fname, values in params.items():
            reasons.extend(_param_changes(workdir, str(fname), values, params_cache))
    return reasons


def _param_changes(
    workdir: Path, fname: str, values: Any, cache: dict[str, dict[str, Any] | None]
) -> list[str]:
    key = str(workdir / fname)
    if key not in cache:
        path = workdir / fname
        data: dict[str, Any] | None = None
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            try:
                docs = load_documents(path)
                data = docs[0] if docs and isinstance(docs[0], dict) else {}
            except PipelineFileError:
                data = None
        elif path.is_file() and path.suffix == ".json":
            try:
                loaded = json.loads(read_limited(path, MAX_PARAMS_BYTES, "a params file"))
                data = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                data = None
        cache[key] = data
    data = cache[key]
    if data is None:
        return [f"{fname} missing or unreadable"]
    if not isinstance(values, dict):
        return []
    changes: list[str] = []
    for name, value in values.items():
        name = str(name)
        try:
            now = _lookup(data, name)
        except KeyError:
            changes.append(f"param {name} removed")
            continue
        if now == value:
            continue
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        _flatten(name, value, before)
        _flatten(name, now, after)
        for key in dict.fromkeys([*before, *after]):
            if key not in after:
                changes.append(f"param {key} removed")
            elif key not in before:
                changes.append(f"param {key} added")
            elif before[key] != after[key]:
                changes.append(f"param {key} changed")
    return changes

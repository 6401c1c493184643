"""DVC's experiments as git keeps them: refs, queue stashes, commits and their files.

Read with the ``git`` command line (no DVC needed) and, for HEAD and the ref files that say
whether anything changed, straight from the git dir's files. Every call has a timeout and a
failure is a one-line :class:`GitError`. Apart from the importer because it knows git and
nothing of the store; ``mltop pipelines`` uses the same helpers to find a repository's HEAD.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.common.regular_files import read_limited
from mltop.core.entities import ImportReport, Status

#: Source kinds: the workspace and commits, and experiments (queued and failed ones too).
KIND = "dvc"
EXP_KIND = "dvc-exp"
GIT_TIMEOUT = 30.0
EXP_REF = re.compile(r"^refs/exps/([0-9a-f]{2})/([0-9a-f]{38})/(.+)$")
QUEUE_REFS = {"refs/exps/celery/stash": Status.SCHEDULED, "refs/exps/celery/failed": Status.FAILED}
STASH_MESSAGE = re.compile(r"dvc-exp:([0-9a-f]{40}):([0-9a-f]{40}):(.*)$")
SHA = re.compile(r"^[0-9a-f]{40}$")


class GitError(Exception):
    """git is missing, failed or timed out; the message is one line."""


MAX_GIT_FILE = 64 * 1024
MAX_RWLOCK = 1024 * 1024  # DVC's lock file: a few paths per running command
MAX_PACKED_REFS = 64 * 1024 * 1024  # one line per ref: tens of MB in the largest repositories


def git_text(path: Path, limit: int = MAX_GIT_FILE) -> str:
    """A small git or DVC bookkeeping file (HEAD, a ref, ``rwlock``), stripped; OSError or
    UnicodeDecodeError when unreadable."""
    return read_limited(path, limit, "a git file").decode("utf-8").strip()


def find_git_dir(root: Path) -> Path | None:
    """The repository's git dir for a folder in it (a ``.git`` folder or ``gitdir:`` file)."""
    for parent in [root, *root.parents]:
        dot = parent / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = git_text(dot)
                if text.startswith("gitdir:"):
                    target = Path(text[7:].strip())
                    return target if target.is_absolute() else (parent / target).resolve()
            return None
    return None


def head_sha(git_dir: Path) -> str | None:
    """HEAD's commit, read from the git dir's files (no subprocess): for the workspace run."""
    try:
        head = git_text(git_dir / "HEAD")
    except (OSError, UnicodeDecodeError):
        return None
    if SHA.match(head):
        return head
    if not head.startswith("ref:"):
        return None
    ref = head[4:].strip()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        sha = git_text(git_dir / ref)
        if SHA.match(sha):
            return sha
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in git_text(git_dir / "packed-refs", MAX_PACKED_REFS).splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and SHA.match(sha):
                return sha
    return None


def ref_files(git_dir: Path) -> list[Path]:
    """The files whose change means DVC's experiments (or the names of commits) changed."""
    out = [git_dir / "HEAD", git_dir / "packed-refs"]
    for sub in ("refs/exps", "refs/heads", "refs/tags"):
        for dirpath, dirnames, filenames in os.walk(git_dir / sub):
            dirnames.sort()
            out.extend(Path(dirpath) / f for f in sorted(filenames))
    out.extend(git_dir / "logs" / ref for ref in QUEUE_REFS)
    return [p for p in out if p.is_file()]


class Git:
    """The git command line in one repository, every call with a timeout."""

    def __init__(self, cwd: Path, timeout: float = GIT_TIMEOUT):
        self.cwd = cwd
        self.timeout = timeout
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "LC_ALL": "C",
        }

    def run(self, *args: str, data: bytes | None = None, check: bool = True) -> bytes:
        command = ["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", *args]
        try:
            done = subprocess.run(  # fixed argv, no shell
                command,
                cwd=self.cwd,
                input=data,
                capture_output=True,
                timeout=self.timeout,
                env=self.env,
                check=False,
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed; DVC experiments were not read") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} timed out after {self.timeout:.0f} s") from exc
        except OSError as exc:
            raise GitError(f"cannot run git ({exc.strerror or exc})") from exc
        self.stderr = done.stderr.decode("utf-8", errors="replace")
        if check and done.returncode != 0:
            first = self.stderr.strip().splitlines()[:1]
            raise GitError(f"git {args[0]} failed: {first[0] if first else done.returncode}")
        return done.stdout

    def blobs(self, specs: Sequence[str]) -> list[bytes | None]:
        """Contents of ``rev:path`` specs in one ``cat-file --batch`` (None when missing)."""
        usable = [s for s in specs if "\n" not in s]
        if not usable:
            return [None] * len(specs)
        out = self.run("cat-file", "--batch", data=("\n".join(usable) + "\n").encode())
        found: dict[str, bytes | None] = {}
        pos = 0
        for spec in usable:
            end = out.find(b"\n", pos)
            if end < 0:
                break
            header = out[pos:end].split(b" ")
            pos = end + 1
            if len(header) == 3 and header[1] in (b"blob", b"tree", b"commit", b"tag"):
                size = int(header[2])
                found[spec] = out[pos : pos + size] if header[1] == b"blob" else None
                pos += size + 1
            else:
                found[spec] = None
        return [found.get(s) for s in specs]


@dataclass
class ExpRef:
    """A run DVC keeps in git: an experiment, a queued/failed entry, or a commit."""

    key: str
    kind: str
    name: str
    sha: str
    time: float | None
    status: Status
    baseline: str | None
    ref: str
    read_metrics: bool = True


@dataclass
class Revision:
    """The project's files at one commit: the tree listing and parsed documents."""

    paths: set[str]
    dirs: set[str]
    docs: dict[str, object] = field(default_factory=dict)

    def exists(self, path: str) -> bool:
        return path in self.paths or path in self.dirs


def git_runs(git: Git, git_dir: Path, report: ImportReport) -> list[ExpRef]:
    """Experiments, queue entries and their baseline commits (and HEAD), from git's refs."""
    listing = git.run(
        "for-each-ref",
        "--format=%(objectname)%00%(committerdate:unix)%00%(refname)",
        "refs/exps",
        "refs/heads",
        "refs/tags",
    )
    for line in git.stderr.splitlines():
        match = re.search(r"ignoring broken ref (\S+)", line)
        if match:
            report.problem(git_dir / match.group(1), "broken git ref; ignored")
    names: dict[str, list[str]] = {}
    out: list[ExpRef] = []
    queues: list[str] = []
    for line in listing.decode("utf-8", errors="replace").splitlines():
        parts = line.split("\x00")
        if len(parts) != 3 or not SHA.match(parts[0]):
            continue
        sha, when, refname = parts
        match = EXP_REF.match(refname)
        if match:
            out.append(
                ExpRef(
                    key=refname,
                    kind=EXP_KIND,
                    name=match.group(3),
                    sha=sha,
                    time=parse_float(when),
                    status=Status.FINISHED,
                    baseline=match.group(1) + match.group(2),
                    ref=refname,
                )
            )
        elif refname in QUEUE_REFS:
            queues.append(refname)
        elif refname.startswith(("refs/heads/", "refs/tags/")):
            names.setdefault(sha, []).append(refname)
    for refname in queues:
        out.extend(queue_entries(git, refname, report, git_dir))
    head = git.run("rev-parse", "--verify", "-q", "HEAD", check=False).decode().strip()
    commits = {i.baseline for i in out if i.baseline}
    if SHA.match(head):
        commits.add(head)
    times = commit_times(git, sorted(commits))
    for sha in sorted(commits):
        out.append(
            ExpRef(
                key=sha,
                kind=KIND,
                name=commit_name(sha, names.get(sha, [])),
                sha=sha,
                time=times.get(sha),
                status=Status.FINISHED,
                baseline=None,
                ref=sha,
            )
        )
    return out


def queue_entries(git: Git, refname: str, report: ImportReport, git_dir: Path) -> list[ExpRef]:
    """Entries of a DVC queue stash (its reflog): queued or failed experiments."""
    text = git.run("log", "-g", "--format=%H%x00%ct%x00%gs", refname, "--", check=False)
    out = []
    for line in text.decode("utf-8", errors="replace").splitlines():
        parts = line.split("\x00")
        if len(parts) != 3 or not SHA.match(parts[0]):
            continue
        match = STASH_MESSAGE.search(parts[2])
        if not match:
            continue
        name = match.group(3) or parts[0][:7]
        out.append(
            ExpRef(
                key=f"{refname}@{parts[0]}",
                kind=EXP_KIND,
                name=name,
                sha=parts[0],
                time=parse_float(parts[1]),
                status=QUEUE_REFS[refname],
                baseline=match.group(2),
                ref=refname,
                read_metrics=False,
            )
        )
    return out


def commit_times(git: Git, shas: Sequence[str]) -> dict[str, float]:
    if not shas:
        return {}
    text = git.run("log", "--no-walk=unsorted", "--format=%H %ct", *shas, "--", check=False)
    out = {}
    for line in text.decode("utf-8", errors="replace").splitlines():
        sha, _, when = line.partition(" ")
        if (value := parse_float(when)) is not None:
            out[sha] = value
    return out


def commit_name(sha: str, refs: list[str]) -> str:
    """DVC's name for a commit: a branch pointing at it, else a tag, else its short sha."""
    for prefix in ("refs/heads/", "refs/tags/"):
        matching = sorted(r[len(prefix) :] for r in refs if r.startswith(prefix))
        if matching:
            return "main" if "main" in matching else matching[0]
    return sha[:7]


def parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None

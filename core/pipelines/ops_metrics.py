"""DevOps and MLOps performance metrics measured from what a repository holds.

The article this view grew from contrasts DevOps metrics (deployment speed, release frequency,
system uptime) with MLOps metrics (model accuracy, drift, data quality, retraining frequency).
Each is measured here only from a record that exists, with its evidence and time range:

* release frequency: the repository's git tags (tagger date, or commit date for a light tag);
* lead time from commit to release: for each release after the first, how long its commits
  waited for the tag (the median over every commit);
* retraining frequency: commits that changed a ``dvc.lock`` (each is a ``dvc repro`` someone
  kept);
* the primary metric across those retrainings: the first number in the ML pipeline's metrics
  file as committed with each of them;
* with a GitHub repository given (``--github``), deploy frequency (successful runs of the
  workflows that hold a deploy job) and change failure rate (failed runs among the completed
  runs of the default branch), over the latest runs GitHub returns.

Drift and data quality come from the repository's monitors (:mod:`mltop.core.monitor.findings`).
Everything else (uptime) says what it would need. Git
is run through its command line with a timeout, like the DVC importer does, and only in the
repository's own git root: a project folder inside another repository is not judged by that
repository's tags.
"""

from __future__ import annotations

import calendar
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from mltop.core.importers.dvc_git import Git, GitError
from mltop.core.monitor.findings import MonitorFinding
from mltop.core.pipelines.github_runs import GitHubClient, GitHubError
from mltop.core.pipelines.model import Phase, Pipeline, one_line, path_under

Side = Literal["devops", "mlops"]
MAX_RELEASES = 50
"""Releases whose lead time is measured (the newest); one ``git log`` each."""
MAX_RETRAININGS = 500
GITHUB_RUNS = 100
"""Runs asked of GitHub for deploy frequency and change failure rate (one page)."""
FAILED = {"failure", "timed_out", "startup_failure"}
MAX_METRIC_POINTS = 50
"""Retrainings whose metrics file is read (the newest), in one ``cat-file --batch``."""


@dataclass(frozen=True)
class OpsMetric:
    """One figure of the band, or what it would need when nothing records it."""

    side: Side
    name: str
    value: str | None
    evidence: str = ""
    period: str = ""
    needs: str = ""

    def line(self) -> str:
        if self.value is None:
            return f"{self.name}: not measured, needs {self.needs}"
        text = f"{self.name}: {self.value}"
        if self.period:
            text += f" ({self.period})"
        if self.evidence:
            text += f"; from {self.evidence}"
        return text


def _day(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


def _period(first: float, last: float) -> str:
    return _day(first) if _day(first) == _day(last) else f"{_day(first)} … {_day(last)}"


def frequency(count: int, noun: str, first: float, last: float) -> str:
    """How many events and, from two on, how often they came (the mean gap between consecutive
    ones): ``3 deploys, one every 2.0 days on average``."""
    text = f"{count} {noun}{'s' if count != 1 else ''}"
    if count > 1:
        gap = (last - first) / (count - 1)
        text += f", one every {duration_words(gap)} on average"
    return text


def duration_words(seconds: float) -> str:
    """A gap between releases in the unit a person counts it in.

    Seconds under a minute: tags made by one script a few seconds apart are not "0 min".
    """
    if seconds < 1:
        return "<1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def measure(
    root: Path,
    marker: str,
    devops: Pipeline | None,
    mlops: Pipeline | None,
    github: GitHubClient | None = None,
    branch: str | None = None,
    monitors: Sequence[MonitorFinding] = (),
) -> list[OpsMetric]:
    """The band for one repository: DevOps figures first, then MLOps. ``github`` (with the
    branch asked for, else the repository's default) adds what only the CI server records;
    ``monitors`` (what the repository's monitors found) give drift and data quality."""
    git = Git(Path(root)) if marker == ".git" else None
    no_git = f"its git history ({one_line(Path(root).name, 80)}/ holds no .git)"
    out: list[OpsMetric] = []
    tags: list[tuple[str, float]] = []
    tag_problem = ""
    if git is not None:
        try:
            tags = _tags(git)
        except GitError as exc:
            tag_problem = one_line(exc, 160)
    out.extend(_release_metrics(git, tags, tag_problem or (no_git if git is None else "")))
    deploys = list(
        dict.fromkeys(s.name for s in (devops.stages if devops else ()) if s.phase is Phase.DEPLOY)
    )
    if github is not None:
        out.extend(_github_metrics(github, branch, devops, Path(root)))
    else:
        needs = (
            "the run history of the deploy jobs ("
            + ", ".join(one_line(d, 40) for d in deploys[:3])
            + "): --github OWNER/REPO"
            if deploys
            else "a deploy job in CI, and its run history"
        )
        out.append(OpsMetric("devops", "deploy frequency", None, needs=needs))
        out.append(
            OpsMetric(
                "devops",
                "change failure rate",
                None,
                needs="CI results of the default branch: --github OWNER/REPO",
            )
        )
    out.append(OpsMetric("devops", "uptime", None, needs="an uptime monitor; mltop reads none"))
    out.extend(_ml_metrics(git, Path(root), mlops, no_git if git is None else ""))
    out.extend(_monitor_metrics(monitors))
    return out


def _monitor_metrics(monitors: Sequence[MonitorFinding]) -> list[OpsMetric]:
    """Drift and data quality from the first monitor that computed (others are in the phase
    table and the maturity evidence); what each would need when there is none."""
    found = next((m for m in monitors if m.error is None), None)
    if found is None:
        why = f" ({monitors[0].name}: {one_line(monitors[0].error, 120)})" if monitors else ""
        return [
            OpsMetric(
                "mlops",
                "drift",
                None,
                needs="a monitor: .mltop/monitor.yaml over a prediction log, or an Evidently "
                "workspace" + why,
            ),
            OpsMetric(
                "mlops",
                "data quality",
                None,
                needs="a monitor: .mltop/monitor.yaml over a prediction log" + why,
            ),
        ]
    evidence = f"{found.name} ({found.what})"
    drift = OpsMetric("mlops", "drift", found.drift_text(), evidence, found.period)
    if not found.quality_checked:
        quality = OpsMetric(
            "mlops",
            "data quality",
            None,
            needs=f"a prediction log monitor: {found.what} holds drift reports only",
        )
    else:
        quality = OpsMetric("mlops", "data quality", found.quality_text(), evidence, found.period)
    return [drift, quality]


def _github_metrics(
    client: GitHubClient, branch: str | None, devops: Pipeline | None, root: Path
) -> list[OpsMetric]:
    try:
        if branch is None:
            info = client.get("")
            found = info.get("default_branch") if isinstance(info, dict) else None
            branch = str(found) if isinstance(found, str) and found else None
        runs = client.runs(branch=branch, per_page=GITHUB_RUNS)
    except GitHubError as exc:
        why = f"GitHub runs, which could not be read ({one_line(exc, 160)})"
        return _unmeasured("devops", ("deploy frequency", "change failure rate"), why)
    where = f" on {one_line(branch, 40)}" if branch else ""
    files = [m for m in ((devops.members or (devops,)) if devops else ())]
    deploy_paths = {
        path_under(f.path, root) for f in files if any(s.phase is Phase.DEPLOY for s in f.stages)
    }
    out: list[OpsMetric] = []
    deployed = sorted(
        stamp
        for r in runs
        if str(r.get("path", "")).split("@")[0] in deploy_paths
        and r.get("conclusion") == "success"
        and (stamp := _stamp(r.get("created_at"))) is not None
    )
    if not deploy_paths:
        out.append(OpsMetric("devops", "deploy frequency", None, needs="a deploy job in CI"))
    elif not deployed:
        names = ", ".join(sorted(deploy_paths)[:3])
        out.append(
            OpsMetric(
                "devops",
                "deploy frequency",
                None,
                needs=f"a successful run of {names}{where} among GitHub's latest {len(runs)}",
            )
        )
    else:
        out.append(
            OpsMetric(
                "devops",
                "deploy frequency",
                frequency(len(deployed), "deploy", deployed[0], deployed[-1]),
                evidence=f"successful GitHub runs of {', '.join(sorted(deploy_paths)[:3])}{where}",
                period=_period(deployed[0], deployed[-1]),
            )
        )
    done = [
        (stamp, r.get("conclusion") in FAILED)
        for r in runs
        if r.get("status") == "completed"
        and r.get("conclusion") in (FAILED | {"success"})
        and (stamp := _stamp(r.get("created_at"))) is not None
    ]
    if not done:
        out.append(
            OpsMetric(
                "devops",
                "change failure rate",
                None,
                needs=f"completed GitHub runs{where}",
            )
        )
    else:
        failed = sum(1 for _stamp_, bad in done if bad)
        stamps = sorted(stamp for stamp, _bad in done)
        out.append(
            OpsMetric(
                "devops",
                "change failure rate",
                f"{failed} of {len(done)} runs failed ({100 * failed / len(done):.1f} %)",
                evidence=f"completed GitHub runs{where}",
                period=_period(stamps[0], stamps[-1]),
            )
        )
    return out


def _stamp(value: Any) -> float | None:
    """A GitHub ``2026-01-02T03:04:05Z`` time as a Unix timestamp."""
    if not isinstance(value, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, OverflowError):
        return None


def _tags(git: Git) -> list[tuple[str, float]]:
    raw = git.run(
        "for-each-ref",
        "--sort=creatordate",
        "--format=%(refname:short)%09%(creatordate:unix)",
        "refs/tags",
    )
    tags = []
    for line in raw.decode("utf-8", "replace").splitlines():
        name, _, stamp = line.rpartition("\t")
        if name and stamp.strip().isdigit():
            tags.append((name, float(stamp)))
    return tags


RELEASE_METRICS = ("release frequency", "lead time to release")
RETRAINING_METRICS = ("retraining frequency", "primary metric across retrainings")


def _unmeasured(side: Side, names: Sequence[str], needs: str) -> list[OpsMetric]:
    """The band's figures that share one missing source: each says what it needs."""
    return [OpsMetric(side, name, None, needs=needs) for name in names]


def _release_metrics(git: Git | None, tags: list[tuple[str, float]], why: str) -> list[OpsMetric]:
    if git is None or why:
        return _unmeasured("devops", RELEASE_METRICS, why)
    if not tags:
        needs = "release tags (git tag); this repository has none"
        return _unmeasured("devops", RELEASE_METRICS, needs)
    first, last = tags[0][1], tags[-1][1]
    names = f"{one_line(tags[0][0], 40)} … {one_line(tags[-1][0], 40)}"
    out = [
        OpsMetric(
            "devops",
            "release frequency",
            frequency(len(tags), "release", first, last),
            evidence=f"git tags {names}" if len(tags) > 1 else f"git tag {names.split(' … ')[0]}",
            period=_period(first, last),
        )
    ]
    if len(tags) < 2:
        out.append(
            OpsMetric("devops", "lead time to release", None, needs="two release tags or more")
        )
        return out
    waits: list[float] = []
    pairs = list(itertools.pairwise(tags))[-MAX_RELEASES:]
    try:
        for (prev, _), (tag, stamp) in pairs:
            raw = git.run("log", "--format=%ct", f"{prev}..{tag}", "--")
            waits.extend(stamp - float(t) for t in raw.split() if t.isdigit())
    except GitError as exc:
        out.append(OpsMetric("devops", "lead time to release", None, needs=one_line(exc, 160)))
        return out
    if not waits:
        out.append(
            OpsMetric("devops", "lead time to release", None, needs="commits between release tags")
        )
        return out
    out.append(
        OpsMetric(
            "devops",
            "lead time to release",
            f"median {duration_words(statistics.median(waits))} from commit to tag",
            evidence=f"{len(waits)} commits in {len(pairs)} releases",
            period=_period(pairs[0][0][1], pairs[-1][1][1]),
        )
    )
    return out


def _ml_metrics(git: Git | None, root: Path, mlops: Pipeline | None, why: str) -> list[OpsMetric]:
    dvc_files = [m for m in ((mlops.members or (mlops,)) if mlops else ()) if m.format == "dvc"]
    if git is None or why:
        needs = why or "a git repository"
        return _unmeasured("mlops", RETRAINING_METRICS, needs)
    if not dvc_files:
        needs = "a dvc.yaml whose dvc.lock is committed (the record of each retraining)"
        return _unmeasured("mlops", RETRAINING_METRICS, needs)
    locks = [path_under(Path(m.path).with_name("dvc.lock"), root) for m in dvc_files]
    try:
        raw = git.run("log", f"-n{MAX_RETRAININGS}", "--format=%H%x09%ct", "--", *locks)
    except GitError as exc:
        problem = one_line(exc, 160)
        return _unmeasured("mlops", RETRAINING_METRICS, problem)
    commits = []
    for line in raw.decode("utf-8", "replace").splitlines():
        sha, _, stamp = line.partition("\t")
        if sha and stamp.isdigit():
            commits.append((sha, float(stamp)))
    commits.reverse()  # oldest first
    where = ", ".join(one_line(p, 80) for p in locks)
    if not commits:
        needs = f"commits of {where} (run dvc repro and commit the lock)"
        return _unmeasured("mlops", RETRAINING_METRICS, needs)
    first, last = commits[0][1], commits[-1][1]
    out = [
        OpsMetric(
            "mlops",
            "retraining frequency",
            frequency(len(commits), "retraining", first, last),
            evidence=f"commits that changed {where}",
            period=_period(first, last),
        )
    ]
    out.append(_metric_trend(git, root, dvc_files, commits[-MAX_METRIC_POINTS:]))
    return out


def _metric_trend(
    git: Git, root: Path, dvc_files: list[Pipeline], commits: list[tuple[str, float]]
) -> OpsMetric:
    name = "primary metric across retrainings"
    files = [
        path_under(Path(p.path).parent / (s.group or "") / metric, root)
        for p in dvc_files
        for s in p.stages
        for metric in s.metrics
        if metric and not metric.startswith("$")
    ]
    if not files:
        return OpsMetric("mlops", name, None, needs="a metrics file declared in dvc.yaml")
    target = files[0]
    try:
        blobs = git.blobs([f"{sha}:{target}" for sha, _ in commits])
    except GitError as exc:
        return OpsMetric("mlops", name, None, needs=one_line(exc, 160))
    points: list[tuple[float, str, float]] = []
    key: str | None = None
    for (_sha, stamp), blob in zip(commits, blobs, strict=True):
        data = _load(blob, target)
        if data is None:
            continue
        if key is None:
            key = _first_number_key(data)
            if key is None:
                continue
        value = _lookup(data, key)
        if value is not None:
            points.append((stamp, key, value))
    if key is None or not points:
        return OpsMetric(
            "mlops", name, None, needs=f"{one_line(target, 80)} committed with the dvc.lock"
        )
    values = " → ".join(repr(v) for _s, _k, v in points[-6:])
    more = f"{len(points) - 6} earlier, " if len(points) > 6 else ""
    return OpsMetric(
        "mlops",
        name,
        f"{one_line(key, 60)} {more}{values}",
        evidence=f"{one_line(target, 80)} at {len(points)} of the retraining commits",
        period=_period(points[0][0], points[-1][0]),
    )


def _load(blob: bytes | None, path: str) -> Any:
    if blob is None:
        return None
    try:
        text = blob.decode("utf-8")
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError):
        return None


def _first_number_key(data: Any, prefix: str = "", depth: int = 0) -> str | None:
    """The dotted key of the first number in file order (DVC shows metrics the same way)."""
    if isinstance(data, dict) and depth < 20:
        for key, value in data.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                return dotted
            found = _first_number_key(value, dotted, depth + 1) if isinstance(value, dict) else None
            if found:
                return found
    return None


def _lookup(data: Any, dotted: str) -> float | None:
    value = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


__all__ = ["OpsMetric", "duration_words", "frequency", "measure"]

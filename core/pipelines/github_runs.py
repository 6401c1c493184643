"""GitHub Actions run status over the REST API (``/actions/runs``, ``/actions/runs/{id}/jobs``).

Only used when the user names a repository; the token comes from ``GITHUB_TOKEN``. Every
failure becomes a GitHubError whose text is one line a user can act on: a timeout, a rejected
token (401), a rate limit (403/429 with ``x-ratelimit-reset`` or ``retry-after``), a missing
repository (404). The base URL is configurable for GitHub Enterprise and for tests.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from mltop.core.pipelines.model import Pipeline, Stage, StageStatus, StatusState, one_line

DEFAULT_API = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(Exception):
    """A GitHub API failure; ``str()`` is one line."""


@dataclass
class GitHubClient:
    repo: str
    token: str | None = None
    base_url: str = DEFAULT_API
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not _REPO.match(self.repo):
            raise GitHubError(f"GitHub repository must look like owner/name, got {self.repo!r}")
        self.base_url = self.base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "mltop",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}/repos/{self.repo}{path}"
        try:
            response = httpx.get(url, params=params, headers=self._headers(), timeout=self.timeout)
        except httpx.TimeoutException:
            raise GitHubError(
                f"GitHub API timed out after {self.timeout:g} s ({self.base_url})"
            ) from None
        except httpx.HTTPError as exc:
            raise GitHubError(
                f"cannot reach GitHub API at {self.base_url}: {one_line(exc, 120)}"
            ) from None
        if response.status_code >= 400:
            raise GitHubError(_error_message(response, self.repo))
        try:
            return response.json()
        except ValueError:
            raise GitHubError(f"GitHub API returned invalid JSON for {path}") from None

    def runs(self, branch: str | None = None, per_page: int = 50) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"per_page": per_page}
        if branch:
            params["branch"] = branch
        data = self.get("/actions/runs", params)
        runs = data.get("workflow_runs") if isinstance(data, dict) else None
        if not isinstance(runs, list):
            raise GitHubError("GitHub API answer has no workflow_runs list")
        return [r for r in runs if isinstance(r, dict)]

    def jobs(self, run_id: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, 6):
            data = self.get(f"/actions/runs/{int(run_id)}/jobs", {"per_page": 100, "page": page})
            jobs = data.get("jobs") if isinstance(data, dict) else None
            if not isinstance(jobs, list):
                raise GitHubError("GitHub API answer has no jobs list")
            out.extend(j for j in jobs if isinstance(j, dict))
            total = data.get("total_count")
            if not jobs or not isinstance(total, int) or len(out) >= total:
                break
        return out


def _error_message(response: httpx.Response, repo: str) -> str:
    code = response.status_code
    try:
        body = response.json()
        detail = body.get("message", "") if isinstance(body, dict) else ""
    except ValueError:
        detail = ""
    detail = one_line(detail, 120)
    headers = response.headers
    if code == 401:
        return "GitHub API: 401 bad credentials; check the token in GITHUB_TOKEN"
    limited = (
        code == 429
        or headers.get("x-ratelimit-remaining") == "0"
        or (code == 403 and "rate limit" in detail.lower())
    )
    if code in (403, 429) and limited:
        retry = headers.get("retry-after")
        if retry and retry.strip().isdigit():
            return f"GitHub API rate limit ({code}): retry after {int(retry)} s"
        reset = headers.get("x-ratelimit-reset")
        if reset and reset.strip().isdigit():
            at = datetime.fromtimestamp(int(reset), UTC)
            wait = max(0, int(int(reset) - time.time()))
            return f"GitHub API rate limit ({code}): resets at {at:%H:%M:%S} UTC (in {wait} s)"
        return f"GitHub API rate limit ({code}): try again later"
    if code == 403:
        return f"GitHub API: 403 forbidden for {repo}" + (f": {detail}" if detail else "")
    if code == 404:
        return (
            f"GitHub API: 404 not found: {repo} (check owner/name; a private repository "
            "needs a token that can read Actions)"
        )
    return f"GitHub API: HTTP {code}" + (f": {detail}" if detail else "")


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def job_state(job: dict[str, Any]) -> StatusState:
    status = str(job.get("status") or "").lower()
    conclusion = str(job.get("conclusion") or "").lower()
    if status == "in_progress":
        return StatusState.RUNNING
    if status in ("queued", "waiting", "pending", "requested"):
        return StatusState.QUEUED
    if conclusion == "success":
        return StatusState.PASSED
    if conclusion in ("failure", "timed_out", "startup_failure", "action_required"):
        return StatusState.FAILED
    if conclusion == "cancelled":
        return StatusState.CANCELLED
    if conclusion in ("skipped", "neutral"):
        return StatusState.SKIPPED
    return StatusState.UNKNOWN


_PRECEDENCE = [
    StatusState.FAILED,
    StatusState.RUNNING,
    StatusState.QUEUED,
    StatusState.CANCELLED,
    StatusState.PASSED,
    StatusState.SKIPPED,
    StatusState.UNKNOWN,
]


def _name_pattern(name: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{\{.*?\}\}", name)
    return re.compile(".*?".join(re.escape(p) for p in parts) + r"$", re.DOTALL)


def _jobs_for(stage: Stage, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = list(dict.fromkeys([stage.name, stage.id]))
    patterns = [_name_pattern(n) for n in names if "${{" in n]
    out = []
    for job in jobs:
        jname = str(job.get("name") or "")
        if (
            jname in names
            or any(jname.startswith(n + " (") or jname.startswith(n + " / ") for n in names)
            or any(p.match(jname) for p in patterns)
        ):
            out.append(job)
    return out


def stage_status(stage: Stage, jobs: list[dict[str, Any]]) -> StageStatus | None:
    mine = _jobs_for(stage, jobs)
    if not mine:
        return None
    states = [job_state(j) for j in mine]
    state = min(states, key=_PRECEDENCE.index)
    starts = [t for t in (_time(j.get("started_at")) for j in mine) if t is not None]
    ends = [t for t in (_time(j.get("completed_at")) for j in mine) if t is not None]
    duration = max(ends) - min(starts) if starts and ends and max(ends) >= min(starts) else None
    if len(mine) == 1:
        summary = state.value
    else:
        ok = sum(1 for s in states if s is StatusState.PASSED)
        summary = f"{ok}/{len(mine)} jobs passed"
    details: list[str] = []
    for job in mine:
        for step in job.get("steps") or []:
            if isinstance(step, dict) and job_state(step) is StatusState.FAILED:
                details.append(
                    f"{one_line(job.get('name'), 60)}: step {one_line(step.get('name'), 60)!r} "
                    "failed"
                )
    url = mine[0].get("html_url")
    if isinstance(url, str):
        details.append(url)
    return StageStatus(state, summary, duration, tuple(details), source="github")


@dataclass(frozen=True)
class CiRun:
    """The workflow run whose jobs gave the statuses: enough to name it and to find the
    experiment runs logged at its commit (``head_sha``)."""

    id: int | None
    number: int | None
    head_sha: str
    branch: str | None
    state: StatusState
    url: str | None = None
    created: float | None = None

    def describe(self) -> str:
        number = self.number if self.number is not None else self.id
        text = f"GitHub run #{number} {self.state.value}"
        if self.branch:
            text += f" on {one_line(self.branch, 40)}"
        if self.head_sha:
            text += f" ({self.head_sha[:7]})"
        return text


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def latest_run(
    client: GitHubClient, workflow_path: str, branch: str | None = None
) -> dict[str, Any] | None:
    """The newest run of ``workflow_path`` (``.github/workflows/x.yml``) among recent runs."""
    runs = client.runs(branch=branch)
    wanted = workflow_path.removeprefix("./")
    mine = [r for r in runs if str(r.get("path") or "").split("@", 1)[0] == wanted]
    if not mine:
        return None
    return max(mine, key=lambda r: (_time(r.get("created_at")) or 0.0, r.get("id") or 0))


def ci_run(run: dict[str, Any]) -> CiRun:
    sha = str(run.get("head_sha") or "")
    url = run.get("html_url")
    branch = run.get("head_branch")
    return CiRun(
        id=_int_or_none(run.get("id")),
        number=_int_or_none(run.get("run_number")),
        head_sha=sha if re.fullmatch(r"[0-9a-fA-F]{4,64}", sha) else "",
        branch=str(branch) if isinstance(branch, str) and branch else None,
        state=job_state(run),
        url=url if isinstance(url, str) else None,
        created=_time(run.get("created_at")),
    )


def github_run_status(
    pipeline: Pipeline, client: GitHubClient, workflow_path: str, branch: str | None = None
) -> tuple[dict[str, StageStatus], str, CiRun | None]:
    """Like :func:`github_status`, plus the run the statuses came from (None if no run)."""
    run = latest_run(client, workflow_path, branch)
    if run is None:
        return {}, f"no recent GitHub run of {workflow_path}", None
    jobs = client.jobs(int(run["id"]))
    statuses = {}
    for stage in pipeline.stages:
        status = stage_status(stage, jobs)
        if status is not None:
            statuses[stage.id] = status
    info = ci_run(run)
    state = job_state(run)
    label = f"run #{run.get('run_number', run.get('id'))}"
    head = str(run.get("head_sha") or "")[:7]
    branch_name = run.get("head_branch")
    text = f"GitHub {label} {state.value}"
    if branch_name:
        text += f" on {one_line(branch_name, 40)}"
    if head:
        text += f" ({one_line(head, 7)})"
    return statuses, text, info


def github_status(
    pipeline: Pipeline, client: GitHubClient, workflow_path: str, branch: str | None = None
) -> tuple[dict[str, StageStatus], str]:
    """Status of each job of the latest run of ``workflow_path`` (``.github/workflows/x.yml``).

    Returns the per-stage statuses and a one-line description of the run used.
    """
    statuses, text, _run = github_run_status(pipeline, client, workflow_path, branch)
    return statuses, text

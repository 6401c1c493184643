"""GitHub Actions run status over REST, against a local server speaking GitHub's documented shape.

The server runs on 127.0.0.1 in a thread; each test sets what it answers. Response bodies follow
the documented ``GET /repos/{owner}/{repo}/actions/runs`` and ``.../runs/{id}/jobs`` payloads
(trimmed to the fields mltop reads plus a few it ignores).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.http import QuietHandler, serving

from mltop.core.cli.pipelines import pipelines_command
from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.github_runs import GitHubClient, GitHubError, github_status
from mltop.core.pipelines.model import StatusState

HERE = Path(__file__).resolve().parent / "pipelines"

RUNS = {
    "total_count": 2,
    "workflow_runs": [
        {
            "id": 30433642,
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "head_branch": "main",
            "head_sha": "acb5820ced9479c074f688cc328bf03f341a511d",
            "run_number": 562,
            "event": "push",
            "status": "completed",
            "conclusion": "failure",
            "workflow_id": 159038,
            "created_at": "2026-01-02T10:00:00Z",
            "updated_at": "2026-01-02T10:05:00Z",
            "html_url": "https://github.com/o/r/actions/runs/30433642",
        },
        {
            "id": 30433600,
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "head_branch": "main",
            "head_sha": "0000000000000000000000000000000000000000",
            "run_number": 561,
            "status": "completed",
            "conclusion": "success",
            "created_at": "2026-01-01T10:00:00Z",
        },
        {
            "id": 999,
            "name": "Docs",
            "path": ".github/workflows/docs.yml",
            "status": "completed",
            "conclusion": "success",
            "created_at": "2026-01-03T10:00:00Z",
        },
    ],
}


def job(
    name: str, conclusion: str | None, start: str, end: str | None, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": abs(hash(name)) % 10**8,
        "run_id": 30433642,
        "name": name,
        "status": status,
        "conclusion": conclusion,
        "started_at": start,
        "completed_at": end,
        "html_url": f"https://github.com/o/r/actions/runs/30433642/job/{name}",
        "steps": [
            {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1},
            {
                "name": "Run tests",
                "status": "completed",
                "conclusion": "failure" if conclusion == "failure" else "success",
                "number": 2,
            },
        ],
    }


JOBS = {
    "total_count": 4,
    "jobs": [
        job("lint", "success", "2026-01-02T10:00:00Z", "2026-01-02T10:00:14Z"),
        job("test (3.11)", "success", "2026-01-02T10:00:20Z", "2026-01-02T10:01:20Z"),
        job("test (3.12)", "failure", "2026-01-02T10:00:21Z", "2026-01-02T10:01:24Z"),
        job("build", None, "2026-01-02T10:02:00Z", None, status="in_progress"),
    ],
}


class Server:
    """What the fake API answers: a status, headers, a body, and an optional delay."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body: Any = None
        self.delay = 0.0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""


@pytest.fixture
def api() -> Iterator[Server]:
    state = Server()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, dict(self.headers)))
            if state.delay:
                time.sleep(state.delay)
            default = JOBS if "/jobs" in self.path else RUNS
            body = default if state.body is None else state.body
            # A client that gave up on a slow answer has closed its end.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_json(body, state.status, state.headers)

    with serving(Handler, poll=0.02) as state.url:
        yield state


def client(api: Server, **kw: Any) -> GitHubClient:
    return GitHubClient("octo/repo", token="t0ken", base_url=api.url, **kw)


def test_latest_run_jobs_map_onto_stages(api: Server) -> None:
    pipeline = parse_file(HERE / "sample/.github/workflows/ci.yml")
    statuses, note = github_status(pipeline, client(api), ".github/workflows/ci.yml")
    assert note == "GitHub run #562 failed on main (acb5820)"
    assert statuses["lint"].state is StatusState.PASSED
    assert statuses["lint"].duration == 14
    test = statuses["test"]
    assert test.state is StatusState.FAILED
    assert test.summary == "1/2 jobs passed"
    assert test.duration == 64  # from the first start to the last end of the matrix legs
    assert "test (3.12): step 'Run tests' failed" in test.details
    assert statuses["build"].state is StatusState.RUNNING
    path, headers = api.requests[0]
    assert path.startswith("/repos/octo/repo/actions/runs?")
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Accept"] == "application/vnd.github+json"
    assert api.requests[1][0].startswith("/repos/octo/repo/actions/runs/30433642/jobs")


def test_no_run_for_this_workflow(api: Server) -> None:
    pipeline = parse_file(HERE / "sample/.github/workflows/ci.yml")
    statuses, note = github_status(pipeline, client(api), ".github/workflows/other.yml")
    assert statuses == {} and note == "no recent GitHub run of .github/workflows/other.yml"


def test_401_bad_credentials(api: Server) -> None:
    api.status = 401
    api.body = {"message": "Bad credentials", "documentation_url": "https://docs.github.com"}
    with pytest.raises(GitHubError) as info:
        client(api).runs()
    assert str(info.value) == "GitHub API: 401 bad credentials; check the token in GITHUB_TOKEN"


def refusal(api: Server, status: int, message: str, headers: dict[str, str] | None = None) -> str:
    """The one-line error the client raises when the API answers ``status`` with ``message``."""
    api.status = status
    api.headers = headers or {}
    api.body = {"message": message}
    with pytest.raises(GitHubError) as info:
        client(api).runs()
    return str(info.value)


def test_403_rate_limit_says_when_it_resets(api: Server) -> None:
    reset = int(time.time()) + 120
    text = refusal(api, 403, "API rate limit exceeded for 1.2.3.4.", {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(reset),
    })  # fmt: skip
    assert text.startswith("GitHub API rate limit (403): resets at ")
    assert "UTC (in 1" in text and "\n" not in text


def test_429_retry_after(api: Server) -> None:
    text = refusal(api, 429, "secondary rate limit", {"retry-after": "30"})
    assert text == "GitHub API rate limit (429): retry after 30 s"


def test_403_without_rate_limit_is_forbidden(api: Server) -> None:
    message = "Resource not accessible by integration"
    text = refusal(api, 403, message, {"x-ratelimit-remaining": "4999"})
    assert text == f"GitHub API: 403 forbidden for octo/repo: {message}"


def test_404_names_the_repository(api: Server) -> None:
    assert "404 not found: octo/repo" in refusal(api, 404, "Not Found")


def test_timeout_is_one_line(api: Server) -> None:
    api.delay = 1.0
    start = time.perf_counter()
    with pytest.raises(GitHubError) as info:
        client(api, timeout=0.2).runs()
    assert time.perf_counter() - start < 0.9
    assert str(info.value) == f"GitHub API timed out after 0.2 s ({api.url})"


def test_invalid_json_and_unreachable_server(api: Server) -> None:
    api.body = ["not", "the", "documented", "shape"]
    with pytest.raises(GitHubError, match="no workflow_runs list"):
        client(api).runs()
    with pytest.raises(GitHubError, match=r"cannot reach GitHub API at http://127\.0\.0\.1:9"):
        GitHubClient("o/r", base_url="http://127.0.0.1:9", timeout=2).runs()


def test_repository_must_be_owner_slash_name() -> None:
    with pytest.raises(GitHubError, match="owner/name"):
        GitHubClient("not a repo")


def test_cli_shows_github_status_or_the_error(api: Server, tmp_path: Path) -> None:
    import io
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(HERE / "sample", root)
    out = io.StringIO()
    code = pipelines_command(
        root, "json", out=out, github_repo="octo/repo", github_token="x", github_api=api.url
    )
    data = json.loads(out.getvalue())
    assert code == 0
    stages = {s["id"]: s for s in data["devops"]["stages"]}
    assert stages["lint"]["status"]["state"] == "passed"
    assert stages["lint"]["status"]["source"] == "github"
    assert data["notes"] == ["GitHub run #562 failed on main (acb5820)"]
    api.status = 401
    api.body = {"message": "Bad credentials"}
    out = io.StringIO()
    code = pipelines_command(
        root, "table", out=out, github_repo="octo/repo", github_token="x", github_api=api.url
    )
    assert code == 1
    assert "GitHub API: 401 bad credentials" in out.getvalue()

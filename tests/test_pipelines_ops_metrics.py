"""The DevOps/MLOps metrics band, measured from a real git repository's tags and dvc.lock
commits (made here with fixed dates) and GitHub's runs (from a server on 127.0.0.1), and saying
what it needs where nothing records it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from helpers.http import QuietHandler, serving

from mltop.core.cli.pipelines import pipelines_command
from mltop.core.pipelines.ops_metrics import duration_words
from mltop.core.pipelines.overview import GitHubOptions, build_overview

HERE = Path(__file__).resolve().parent / "pipelines"
DAY = 86400
START = 1_767_225_600  # 2026-01-01 00:00 UTC

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str, when: int | None = None) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )


def commit(repo: Path, files: dict[str, str], when: int, message: str = "change") -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=when)


def lock(n: int) -> str:
    return f"schema: '2.0'\nstages:\n  train:\n    cmd: python train.py --seed {n}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    ci = (HERE / "sample/.github/workflows/ci.yml").read_text(encoding="utf-8")
    dvc = (
        "stages:\n  train:\n    cmd: python train.py\n    metrics:\n"
        "      - metrics.json:\n          cache: false\n"
    )
    commit(root, {".github/workflows/ci.yml": ci, "dvc.yaml": dvc}, START)
    # three retrainings, a week apart, each committing dvc.lock with its metrics
    for i, acc in enumerate((0.81, 0.84, 0.875)):
        when = START + (i + 1) * 7 * DAY
        metrics = json.dumps({"acc": acc, "loss": 1 - acc})
        commit(root, {"dvc.lock": lock(i), "metrics.json": metrics}, when, "retrain")
        if i == 0:
            git(root, "tag", "v0.1")
    # a code change one day after the last retraining, released two days later
    commit(root, {"src.py": "x = 1\n"}, START + 22 * DAY)
    git(root, "tag", "-a", "v0.2", "-m", "release", when=START + 24 * DAY)
    return root


def by_name(overview: object) -> dict[str, object]:
    return {m.name: m for m in overview.metrics}  # type: ignore[attr-defined]


def test_releases_lead_time_and_retrainings_come_from_git(repo: Path) -> None:
    metrics = by_name(build_overview(repo))
    release = metrics["release frequency"]
    assert release.value == "2 releases, one every 17.0 days on average"  # type: ignore[attr-defined]
    assert release.evidence == "git tags v0.1 … v0.2"  # type: ignore[attr-defined]
    # a light tag is dated by its commit, an annotated one by its tagger
    assert release.period == "2026-01-08 … 2026-01-25"  # type: ignore[attr-defined]
    lead = metrics["lead time to release"]
    # v0.2 holds the retrainings of day 14 and day 21 and the change of day 22: 10, 3, 2 days
    assert lead.value == "median 3.0 days from commit to tag"  # type: ignore[attr-defined]
    assert lead.evidence == "3 commits in 1 releases"  # type: ignore[attr-defined]
    retrain = metrics["retraining frequency"]
    assert retrain.value == "3 retrainings, one every 7.0 days on average"  # type: ignore[attr-defined]
    assert retrain.evidence == "commits that changed dvc.lock"  # type: ignore[attr-defined]
    trend = metrics["primary metric across retrainings"]
    assert trend.value == "acc 0.81 → 0.84 → 0.875"  # type: ignore[attr-defined]
    assert trend.evidence == "metrics.json at 3 of the retraining commits"  # type: ignore[attr-defined]


def test_what_cannot_be_measured_says_what_it_would_need(repo: Path) -> None:
    metrics = by_name(build_overview(repo))
    for name in ("change failure rate", "uptime", "drift", "data quality", "deploy frequency"):
        assert metrics[name].value is None  # type: ignore[attr-defined]
        assert metrics[name].needs  # type: ignore[attr-defined]
    assert "Evidently" in metrics["drift"].needs  # type: ignore[attr-defined]


def test_a_folder_without_its_own_git_is_not_judged_by_a_parent_repository(
    tmp_path: Path,
) -> None:
    project = tmp_path / "proj"
    shutil.copytree(HERE / "sample", project)
    metrics = by_name(build_overview(project))
    assert metrics["release frequency"].value is None  # type: ignore[attr-defined]
    assert "holds no .git" in metrics["release frequency"].needs  # type: ignore[attr-defined]


def test_cli_table_and_json_carry_the_same_figures(repo: Path) -> None:
    out = StringIO()
    pipelines_command(repo, "table", out=out)
    text = out.getvalue()
    assert "DevOps metrics:" in text and "MLOps metrics:" in text
    assert (
        "  retraining frequency: 3 retrainings, one every 7.0 days on average "
        "(2026-01-08 … 2026-01-22); "
        "from commits that changed dvc.lock"
    ) in text
    out = StringIO()
    pipelines_command(repo, "json", out=out)
    data = json.loads(out.getvalue())
    found = {m["name"]: m for m in data["metrics"]}
    assert found["primary metric across retrainings"]["value"] == "acc 0.81 → 0.84 → 0.875"
    assert found["drift"]["value"] is None and found["drift"]["side"] == "mlops"


class _Runs(QuietHandler):
    """GitHub's REST answers for repository o/r: its default branch and its latest runs."""

    def do_GET(self) -> None:
        if self.path == "/repos/o/r":
            body: dict[str, object] = {"default_branch": "trunk"}
        elif self.path.startswith("/repos/o/r/actions/runs?"):
            assert "branch=trunk" in self.path
            runs = [
                ("deploy.yml", "success", "2026-02-01T10:00:00Z"),
                ("deploy.yml", "failure", "2026-02-03T10:00:00Z"),
                ("deploy.yml", "success", "2026-02-05T10:00:00Z"),
                ("ci.yml", "success", "2026-02-01T09:00:00Z"),
                ("ci.yml", "failure", "2026-02-02T09:00:00Z"),
                ("ci.yml", "cancelled", "2026-02-04T09:00:00Z"),
            ]
            body = {
                "total_count": len(runs),
                "workflow_runs": [
                    {
                        "id": i,
                        "path": f".github/workflows/{name}",
                        "status": "completed",
                        "conclusion": conclusion,
                        "created_at": created,
                        "head_branch": "trunk",
                    }
                    for i, (name, conclusion, created) in enumerate(runs)
                ],
            }
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_json(body)


def test_deploy_frequency_and_change_failure_rate_come_from_github_runs(repo: Path) -> None:
    (repo / ".github/workflows/deploy.yml").write_text(
        "on: push\njobs:\n  ship:\n    runs-on: x\n    steps:\n"
        "      - run: kubectl apply -f k8s/\n",
        encoding="utf-8",
    )
    with serving(_Runs) as api:
        overview = build_overview(repo, GitHubOptions("o/r", token="t", api_url=api))
    metrics = by_name(overview)
    deploy = metrics["deploy frequency"]
    assert deploy.value == "2 deploys, one every 4.0 days on average"  # type: ignore[attr-defined]
    assert deploy.evidence == (  # type: ignore[attr-defined]
        "successful GitHub runs of .github/workflows/deploy.yml on trunk"
    )
    assert deploy.period == "2026-02-01 … 2026-02-05"  # type: ignore[attr-defined]
    cfr = metrics["change failure rate"]
    # a cancelled run is neither a success nor a failure of the change
    assert cfr.value == "2 of 5 runs failed (40.0 %)"  # type: ignore[attr-defined]
    assert cfr.evidence == "completed GitHub runs on trunk"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.2, "<1 s"), (12.4, "12 s"), (59.4, "59 s"), (90, "2 min"), (7200, "2.0 h")],
)
def test_a_gap_under_a_minute_is_said_in_seconds_not_as_zero_minutes(
    seconds: float, words: str
) -> None:
    assert duration_words(seconds) == words

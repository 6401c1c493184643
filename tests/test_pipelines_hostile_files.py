"""`mltop pipelines` over files that are not plain files, and over a tree deeper than Python's
recursion limit: it finishes and shows what it can read.

A FIFO named like a CI file, a JUnit report or a DVC stage output would block ``open()`` until a
writer came, so the command runs in a real subprocess with a deadline: a regression fails
instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import deep_tree
from helpers.pipelines import DVC_TRAIN_STAGE

DEADLINE = 60  # seconds; the command takes about one

WORKFLOW = """\
name: ci
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: python -m pytest
"""

DVC_LOCK = """\
schema: '2.0'
stages:
  train:
    cmd: python train.py
    deps:
    - path: train.py
      md5: 00000000000000000000000000000000
      size: 1
    outs:
    - path: model.pkl
      md5: 00000000000000000000000000000000
      size: 1
"""


def _pipelines(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "pipelines", str(root), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=subprocess.DEVNULL,
    )


def test_fifos_named_like_pipeline_files_and_outputs_never_block_the_command(
    tmp_path: Path,
) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(WORKFLOW)
    os.mkfifo(workflows / "lint.yml")
    os.mkfifo(tmp_path / ".gitlab-ci.yml")
    (tmp_path / "reports").mkdir()
    os.mkfifo(tmp_path / "reports" / "junit.xml")
    (tmp_path / "dvc.yaml").write_text(DVC_TRAIN_STAGE)
    (tmp_path / "dvc.lock").write_text(DVC_LOCK)
    (tmp_path / "train.py").write_text("x")
    os.mkfifo(tmp_path / "model.pkl")  # a stage output the status check would hash
    done = _pipelines(tmp_path)
    assert "Traceback" not in done.stderr
    assert '"ci.yml' in done.stdout or "ci.yml" in done.stdout
    assert "train" in done.stdout


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    with deep_tree(tmp_path):
        workflows = tmp_path / ".github" / "workflows"
        workflows.mkdir(parents=True)
        (workflows / "ci.yml").write_text(WORKFLOW)
        done = _pipelines(tmp_path)
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "RecursionError" not in done.stdout + done.stderr
        assert "ci.yml" in done.stdout

"""``mltop demo``: train the bundled sample project in a folder of its own.

The sample project ships inside the package (``mltop.sample_project``), so the demo works from a
wheel as well as from a clone. Training runs in a subprocess with this interpreter, exactly as a
user would run ``python train.py``, and logs with mltop's own writer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

IGNORE = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    ".mltop",
    "runs",
    "data",
    "models",
    "reports",
    "metrics.json",
    "__init__.py",
)


def sample_project_dir() -> Path:
    return Path(str(resources.files("mltop.sample_project")))


def prepare_demo(
    folder: Path | None = None,
    log: Callable[[str], None] = print,
    extra_args: list[str] | None = None,
) -> Path:
    """Copy the sample project into ``folder`` (default: a new temporary one) and train it."""
    target = folder or Path(tempfile.mkdtemp(prefix="mltop-demo-")) / "sample_project"
    if not (target / "train.py").exists():
        shutil.copytree(sample_project_dir(), target, ignore=IGNORE, dirs_exist_ok=True)
    log(f"mltop demo: training the sample project in {target} ...")
    cmd = [sys.executable, "train.py", *(extra_args or [])]
    result = subprocess.run(cmd, cwd=target, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        log(f"mltop demo: train.py exited with {result.returncode}: {tail[0]}")
    return target

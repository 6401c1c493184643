"""Shared helpers: real run folders written with mltop's own writer, and fixture locations."""

from __future__ import annotations

import contextlib
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltop.core.store import Store
from mltop.core.tracking import start_run

FIXTURES = Path(__file__).parent / "fixtures"
# The public pipeline files stay in the shared folder beside the checkout (CI always has it).
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def copy_fixture(relative: str, dest: Path) -> Path:
    """Copy a fixture folder into ``dest`` with write permission (the originals are read-only)."""
    src = FIXTURES / relative
    target = dest / Path(relative).name
    shutil.copytree(src, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target


def write_run(
    root: Path,
    name: str,
    steps: int = 5,
    params: dict[str, object] | None = None,
    fail: bool = False,
    experiment: str | None = None,
) -> Path:
    """A real run folder, as a training script using mltop.core.tracking would leave it."""
    try:
        with start_run(root, name=name, params=params or {"lr": 0.1}, experiment=experiment) as run:
            for step in range(steps):
                run.log(step=step, loss=1.0 / (step + 1), acc=step / max(steps, 1))
            if fail:
                raise RuntimeError("diverged: loss is NaN")
    except RuntimeError:
        pass
    return run.folder


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """A folder with three finished runs and one failed run."""
    root = tmp_path / "project"
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        write_run(root / "runs", f"sgd-lr{lr}", steps=10 + i, params={"lr": lr, "model": "sgd"})
    write_run(root / "runs", "sgd-diverged", steps=3, params={"lr": 5.0, "model": "sgd"}, fail=True)
    return root


def summary_rows(
    store: Store, run_ids: list[str] | None = None
) -> dict[tuple[str, str], tuple[object, ...]]:
    """The metric summaries of ``run_ids`` (default: every run), comparable across stores (NaN
    equals NaN).

    Following a run folds its appended points into these rows; tests compare them with a fresh
    import of the same files."""
    ids = [run.id for run in store.runs()] if run_ids is None else run_ids
    out: dict[tuple[str, str], tuple[object, ...]] = {}
    for run_id, by_key in store.summaries(ids).items():
        for key, s in by_key.items():
            values = (s.last, s.min, s.max, s.count, s.first_step, s.last_step, s.min_step,
                      s.max_step, s.last_time)  # fmt: skip
            out[run_id, key] = tuple("nan" if v != v else v for v in values)
    return out


@contextlib.contextmanager
def deep_tree(base: Path, levels: int = 1_100) -> Iterator[Path]:
    """A chain of ``levels`` nested folders under ``base``; yields the deepest.

    1,100 levels is past Python's default recursion limit of 1,000, which a recursive walk hits.
    shutil.rmtree (and so pytest's own clean-up) recurses per level too, so the chain is taken
    down here, after whatever the test put in its deepest folder.
    """
    chain = [base / "deep"]
    for _ in range(levels - 1):
        chain.append(chain[-1] / "d")
    for folder in chain:
        folder.mkdir()
    try:
        yield chain[-1]
    finally:
        for child in chain[-1].iterdir():
            shutil.rmtree(child, ignore_errors=True)
        for folder in reversed(chain):
            folder.rmdir()

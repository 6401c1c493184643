"""A run whose points carry one stray timestamp (a clock not set yet: 1970; an old event file left
in a resumed run's folder; a bogus point) starts when the bulk of its points started, says which
stamps it did not trust, and shows a duration of the run, not of the decades since 1970.

TensorBoard event files are written with the project's TensorBoard record encoder (the same
bytes a SummaryWriter writes; tests/test_import_tensorboard.py checks it against the fixture
written by torch and tensorboardX); DVCLive's TSV files are the real ones of the DVC fixture
project, with the ``timestamp`` column DVCLive writes given to them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from test_import_tensorboard import _event_file, _scalar, _version
from tui_pilot import SIZE, make_app, settled, until

from mltop.core.common import tfrecord
from mltop.core.discovery import ingest
from mltop.core.importers.run_start import START_NOTE_TAG, trusted_start
from mltop.core.runs.runs_view import Column
from mltop.core.store import open_memory_store
from mltop.tui.screens.runs.detail import RunDetailScreen

NOW = 1_764_000_000.0  # 2025-11-24
BOOT = 12.0  # seconds after 1970-01-01: a clock not set when the writer started
EVENTS = "events.out.tfevents.{wall}.host.1.0"


def _mltop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", *args], capture_output=True, text=True, timeout=120
    )


def _tensorboard_run(folder: Path, first: float, steps: int = 30, every: float = 10.0) -> None:
    """A run whose writer started with the clock at ``first``, then logged from NOW on."""
    records = [_version(first)]
    records += [_scalar(NOW + s * every, s, "loss", 1.0 / (s + 1)) for s in range(steps)]
    _event_file(folder, EVENTS.format(wall=int(first)), records)


def test_a_run_of_points_from_one_session_starts_at_its_earliest_point() -> None:
    stamps = NOW + np.arange(50) * 7.0
    assert trusted_start(stamps).start == NOW and trusted_start(stamps).note is None


def test_a_resumed_run_keeps_a_first_session_that_holds_a_good_share_of_its_points() -> None:
    first = NOW - 30 * 86_400 + np.arange(40) * 60.0
    second = NOW + np.arange(60) * 60.0
    assert trusted_start(np.concatenate([second, first])).start == first[0]


def test_a_handful_of_points_far_before_the_rest_are_not_the_start() -> None:
    stray = np.array([NOW - 400 * 86_400, NOW - 380 * 86_400])
    found = trusted_start(np.concatenate([stray, NOW + np.arange(100) * 60.0]))
    assert found.start == NOW
    assert found.note is not None and "2 earlier timestamp(s)" in found.note


def test_the_tensorboard_start_ignores_a_writer_clock_of_1970(tmp_path: Path) -> None:
    _tensorboard_run(tmp_path / "logs" / "boot-clock", BOOT)
    store = open_memory_store()
    assert ingest(tmp_path, store).problems == []
    (run,) = store.runs()
    assert run.start_time == NOW
    assert run.duration == pytest.approx(29 * 10.0)
    note = store.tags(run.id)[START_NOTE_TAG]
    assert "1 earlier timestamp(s)" in note and "1970-01-01 00:00:12 UTC" in note


def test_an_old_event_file_left_in_a_resumed_tensorboard_run_is_not_its_start(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "logs" / "resumed"
    old = NOW - 2265 * 86_400
    _event_file(folder, EVENTS.format(wall=int(old)), [_version(old), _scalar(old, 0, "loss", 9.0)])
    _tensorboard_run(folder, NOW)
    listed = _mltop("runs", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert run["duration"] == pytest.approx(290.0)
    table = _mltop("runs", str(tmp_path))
    row = next(line for line in table.stdout.splitlines() if "resumed" in line)
    assert "2265d" not in row and "4m50s" in row


def test_a_run_whose_every_stamp_is_before_2000_has_no_start_and_says_why(tmp_path: Path) -> None:
    records = [_version(BOOT)] + [_scalar(BOOT + s, s, "loss", 1.0) for s in range(5)]
    _event_file(tmp_path / "logs" / "no-rtc", EVENTS.format(wall=int(BOOT)), records)
    store = open_memory_store()
    ingest(tmp_path, store)
    (run,) = store.runs()
    assert run.start_time is None
    assert "start unknown: all 6 timestamps are before 2000" in store.tags(run.id)[START_NOTE_TAG]


def test_a_run_whose_clock_gets_set_while_it_trains_starts_when_it_was_set(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "logs" / "ntp"
    path = _event_file(
        folder,
        EVENTS.format(wall=int(BOOT)),
        [_version(BOOT)] + [_scalar(BOOT + s, s, "loss", 1.0) for s in range(3)],
    )
    store = open_memory_store()
    ingest(tmp_path, store)
    assert store.runs()[0].start_time is None
    with path.open("ab") as fh:  # the clock is set (NTP) and the run goes on
        fh.write(tfrecord.frame([_scalar(NOW + s, 3 + s, "loss", 0.5) for s in range(30)]))
    ingest(tmp_path, store)
    (run,) = store.runs()
    assert run.start_time == NOW
    assert "4 before 2000" in store.tags(run.id)[START_NOTE_TAG]


def _dvclive_with_times(tmp_path: Path, stamps_ms: list[int]) -> Path:
    """The fixture project's dvclive folder, its TSVs given DVCLive's ``timestamp`` column."""
    with tarfile.open(FIXTURES / "dvc" / "dvc-project.tar.gz") as tar:
        members = [m for m in tar.getmembers() if "/dvclive/" in m.name and m.isfile()]
        tar.extractall(tmp_path / "unpack", members=members, filter="data")
    live = tmp_path / "project" / "dvclive"
    live.parent.mkdir()
    (tmp_path / "unpack" / "dvc-project" / "dvclive").rename(live)
    for tsv in live.rglob("*.tsv"):
        header, *rows = tsv.read_text().splitlines()
        lines = [f"timestamp\t{header}"]
        lines += [f"{stamps_ms[i]}\t{row}" for i, row in enumerate(rows)]
        tsv.write_text("\n".join(lines) + "\n")
    return live


def test_a_dvclive_point_stamped_in_1970_does_not_start_the_run(tmp_path: Path) -> None:
    stamps = [int((NOW + 5 * i) * 1000) for i in range(20)]
    stamps[0] = 3_000  # the first step logged before the clock was set
    _dvclive_with_times(tmp_path, stamps)
    store = open_memory_store()
    assert ingest(tmp_path / "project", store).problems == []
    (run,) = store.runs()
    assert run.start_time == pytest.approx(NOW + 5)
    assert "before 2000" in store.tags(run.id)[START_NOTE_TAG]


def test_an_incremental_dvclive_read_keeps_the_start_and_its_note(tmp_path: Path) -> None:
    stamps = [int((NOW + 5 * i) * 1000) for i in range(20)]
    stamps[0] = 3_000
    live = _dvclive_with_times(tmp_path, stamps)
    store = open_memory_store()
    ingest(tmp_path / "project", store)
    with (live / "plots" / "metrics" / "train" / "loss.tsv").open("a") as fh:
        fh.write(f"{int((NOW + 200) * 1000)}\t20\t0.1\n")
    ingest(tmp_path / "project", store)
    (run,) = store.runs()
    assert run.start_time == pytest.approx(NOW + 5)
    assert START_NOTE_TAG in store.tags(run.id)


async def test_the_run_detail_shows_the_sensible_duration_and_the_note(tmp_path: Path) -> None:
    _tensorboard_run(tmp_path / "project" / "logs" / "boot-clock", BOOT)
    app = make_app(tmp_path / "project", tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        assert screen.table._cell(Column.attr("duration"), 0).plain == "4m50s"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.details)
        tags = app.screen.query_one("#detail-tags")
        text = " ".join(s.text for s in tags.render_lines(tags.region.reset_offset))
        assert START_NOTE_TAG in text
    assert app.return_code in (None, 0)

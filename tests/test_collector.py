"""The cyclic collector is held off during a bulk import and comes back as it was; so does
DuckDB's thread count."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_run

from mltop.core.common.collector import collector_held
from mltop.core.discovery import ingest
from mltop.core.importers import mltop_runs
from mltop.core.store import open_memory_store


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    with collector_held():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_held():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_holds_in_two_threads_turn_it_on_once_both_end() -> None:
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with collector_held():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with collector_held():
        thread.start()
        assert entered.wait(10)
    assert not gc.isenabled()  # the other thread still holds it
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_it_comes_back_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), collector_held():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_an_import_of_run_folders_writes_batches_with_the_collector_off_on_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        write_run(tmp_path / "runs", f"r{i}")
    store = open_memory_store()

    def threads() -> str:
        return str(store._con.execute("SELECT current_setting('threads')").fetchall()[0][0])

    before = threads()
    during: list[tuple[bool, str]] = []
    real = mltop_runs.MltopRunsImporter._import_batch

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        during.append((gc.isenabled(), threads()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mltop_runs.MltopRunsImporter, "_import_batch", spy)
    report = ingest(tmp_path, store)
    assert report.runs_added == 3 and not report.problems
    assert during == [(False, "1")]
    assert gc.isenabled() and threads() == before

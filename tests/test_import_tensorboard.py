"""TensorBoard event files: exactness against TensorBoard's own loaders, incremental reads, damage.

The fixture (tests/fixtures/tensorboard, see its PROVENANCE.md) was written by torch's and
tensorboardX's SummaryWriter; its oracles come from TensorBoard's EventAccumulator
(expected.json: what TensorBoard shows, with the resumed run purged) and EventFileLoader
(expected_raw_events.json: every record of every file).
"""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, copy_fixture, summary_rows

from mltop.core.common import tfrecord
from mltop.core.discovery import discover
from mltop.core.entities import ImportReport, stable_id
from mltop.core.importers import tensorboard, tfevents, tfevents_writer
from mltop.core.importers.base import Detection
from mltop.core.store import Store, open_memory_store

TB = FIXTURES / "tensorboard"
RESUMED = "mlp-resumed"


def _import(store: Store, root: Path) -> ImportReport:
    """Discover with this importer only and import, letting any exception escape."""
    found = discover(root, [tensorboard.IMPORTER])
    report = ImportReport()
    tensorboard.IMPORTER.import_sources(store, found.refs, report)
    return report


def _by_name(store: Store) -> dict[str, object]:
    return {run.name: run for run in store.runs()}


def _history(store: Store, run_id: str, key: str) -> list[tuple[int, float | None, float]]:
    table = store.history(run_id, key)
    return list(
        zip(
            table.column("step").to_pylist(),
            table.column("ts").to_pylist(),
            table.column("value").to_pylist(),
            strict=True,
        )
    )


def _event_file(folder: Path, name: str, payloads: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(tfrecord.frame(payloads))
    return path


def _scalar(wall: float, step: int, tag: str, value: float) -> bytes:
    return tfevents_writer.encode_event(
        wall, step, summary_values=[tfevents_writer.encode_simple_value(tag, value)]
    )


def _version(wall: float = 1.0e9) -> bytes:
    return tfevents_writer.encode_event(wall, 0, file_version="brain.Event:2")


@pytest.fixture(scope="module")
def raw_events() -> list[dict]:
    return json.loads((TB / "expected_raw_events.json").read_text())


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    return copy_fixture("tensorboard/runs", tmp_path)


# -- the reader ------------------------------------------------------------------------------


def test_crc32c_matches_the_standard_check_value_and_the_bytewise_version() -> None:
    assert tfrecord.crc32c(b"123456789") == 0xE3069283
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 70_000, dtype=np.uint8)
    lengths = np.array([0, 1, 8, 31, 4095, 4096, 4097, 9000, 20_001], dtype=np.int64)
    starts = rng.integers(0, 40_000, len(lengths)).astype(np.int64)
    got = tfrecord.crc32c_many(data, starts, lengths)
    for start, length, crc in zip(starts, lengths, got, strict=True):
        assert int(crc) == tfrecord.crc32c(data[start : start + length].tobytes())


def test_decode_matches_tensorboards_record_dump_file_by_file(raw_events: list[dict]) -> None:
    expected: dict[str, list[tuple]] = {}
    for row in raw_events:
        if row["what"] == "summary" and row.get("plugin") == "scalars":
            expected.setdefault(row["file"], []).append(
                (row["tag"], row["step"], row["wall_time"], row["value"])
            )
    files = sorted(p for p in (TB / "runs").rglob("*") if tensorboard.is_event_file(p.name))
    assert len(files) == 9
    for path in files:
        buf = path.read_bytes()
        cols = tfevents.decode(buf)
        got = [
            (cols.tag_names[t], s, w, v)
            for t, s, w, v in zip(
                cols.tag_ids.tolist(),
                cols.steps.tolist(),
                cols.walls.tolist(),
                cols.values.tolist(),
                strict=True,
            )
        ]
        assert got == expected.get(str(path.relative_to(TB / "runs")), [])
        assert cols.end == len(buf) and cols.corrupt_at is None
        assert cols.unreadable == cols.bad_checksums == 0


def test_decoders_fast_and_general_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    path = TB / "runs" / "linear-tbx" / "events.out.tfevents.1795723160.vm"
    buf = path.read_bytes()
    fast = tfevents.decode(buf)
    monkeypatch.setattr(
        tfevents,
        "_fast_simple_values",
        lambda buf, framing, out, index: tfevents._Fast(np.zeros(len(framing.starts), bool)),
    )
    general = tfevents.decode(buf)
    assert [fast.tag_names[t] for t in fast.tag_ids] == [
        general.tag_names[t] for t in general.tag_ids
    ]
    for name in ("steps", "walls", "values", "records"):
        assert np.array_equal(getattr(fast, name), getattr(general, name))


# -- exactness against the oracles -----------------------------------------------------------


def test_runs_are_the_folders_with_event_files_named_relative_to_the_logdir(logdir: Path) -> None:
    store = open_memory_store()
    report = _import(store, logdir)
    expected_runs = json.loads((TB / "expected_runs.json").read_text())
    runs = _by_name(store)
    assert set(runs) == {r["run"] for r in expected_runs}
    assert report.problems == []
    assert report.counts["tensorboard"].runs == 8
    for entry in expected_runs:
        run = runs[entry["run"]]
        assert run.status == "FINISHED" and run.experiment == "runs"
        assert set(store.summaries([run.id])[run.id]) == set(entry["scalar_tags"])


def test_every_point_matches_event_accumulator(logdir: Path) -> None:
    store = open_memory_store()
    _import(store, logdir)
    expected: dict[tuple[str, str], list[tuple]] = {}
    for row in json.loads((TB / "expected.json").read_text()):
        key = (row["run"], row["tag"])
        expected.setdefault(key, []).append((row["step"], row["wall_time"], row["value"]))
    assert sum(len(v) for v in expected.values()) == 1768
    runs = _by_name(store)
    assert store.point_count() == 1768
    for (run_name, tag), points in expected.items():
        assert _history(store, runs[run_name].id, tag) == sorted(points)


def test_resumed_run_keeps_what_tensorboard_shows(logdir: Path, raw_events: list[dict]) -> None:
    store = open_memory_store()
    _import(store, logdir)
    run = _by_name(store)[RESUMED]
    history = _history(store, run.id, "loss/train")
    assert [step for step, _, _ in history] == list(range(1, 201))

    # steps 101..120 exist in both files; the second file (after the restart) wins. The model
    # was restored from a checkpoint, so the values repeat: the wall times tell the two apart.
    def points(suffix: str) -> dict[int, tuple[float, float]]:
        return {
            r["step"]: (r["wall_time"], r["value"])
            for r in raw_events
            if r["file"].endswith(suffix) and r.get("tag") == "loss/train"
        }

    first, second = points(".4"), points(".5")
    assert len(first) == 120 and min(second) == 101
    assert all(first[s][0] < second[s][0] for s in range(101, 121))
    for step, wall, value in history:
        assert (wall, value) == (second[step] if step >= 101 else first[step])
    summary = store.summaries([run.id])[run.id]
    assert summary["loss/train"].count == 200 and summary["accuracy"].count == 20


def test_hparams_session_becomes_params_of_its_run(logdir: Path) -> None:
    store = open_memory_store()
    _import(store, logdir)
    runs = _by_name(store)
    sessions = [
        h
        for h in json.loads((TB / "expected_hparams.json").read_text())
        if h["tag"] == "_hparams_/session_start_info"
    ]
    assert len(sessions) == 4
    for session in sessions:
        run = runs[session["run"]]
        params = store.params(run.id)
        expected = session["plugin_data"]["sessionStartInfo"]["hparams"]
        assert set(params) == set(expected)
        for key, value in expected.items():
            if isinstance(value, str):
                assert params[key] == value
            else:
                assert float(params[key]) == value
        # ints travel as doubles; they are shown as the ints the script passed
        assert params["batch_size"] == "64"
        parent = runs[session["run"].split("/")[0]]
        assert run.parent_id == parent.id and parent.parent_id is None
        assert store.params(parent.id) == {}


def test_run_times_come_from_event_wall_times(logdir: Path, raw_events: list[dict]) -> None:
    store = open_memory_store()
    _import(store, logdir)
    run = _by_name(store)["mlp-lr0.1"]
    walls = [r["wall_time"] for r in raw_events if r["file"].startswith("mlp-lr0.1/events")]
    assert run.start_time == min(walls) and run.updated == max(walls)


# -- idempotence and incremental reads -------------------------------------------------------


def test_reimport_is_idempotent_and_an_unchanged_rescan_reads_nothing(logdir: Path) -> None:
    store = open_memory_store()
    _import(store, logdir)
    counts = store.table_counts()
    again = _import(store, logdir)
    assert again.points_added == 0 and again.runs_added == 0 and again.problems == []
    assert store.table_counts() == counts
    # forgetting the file states forces a full re-read: still the same rows
    store.delete_files(list(store.file_states()))
    _import(store, logdir)
    assert store.table_counts() == counts


def test_appended_events_are_read_from_the_last_complete_record(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "run-1"
    path = _event_file(run, "events.out.tfevents.1.host", [_version()] + [
        _scalar(1e9 + s, s, "loss", 1.0 / (s + 1)) for s in range(10)
    ])  # fmt: skip
    store = open_memory_store()
    assert _import(store, tmp_path).points_added == 10
    with open(path, "ab") as fh:
        fh.write(
            tfrecord.frame([_scalar(1e9 + s, s, "loss", 1.0 / (s + 1)) for s in range(10, 15)])
        )
    report = _import(store, tmp_path)
    assert report.points_added == 5 and report.runs_added == 0
    run_id = stable_id("tensorboard", str(run))
    assert [s for s, _, _ in _history(store, run_id, "loss")] == list(range(15))
    assert store.run(run_id).updated == 1e9 + 14
    fresh = open_memory_store()
    _import(fresh, tmp_path)
    assert summary_rows(store) == summary_rows(fresh)


def test_truncated_last_record_waits_for_the_rest(tmp_path: Path) -> None:
    payloads = [_version()] + [_scalar(1e9 + s, s, "acc", s / 10) for s in range(6)]
    data = tfrecord.frame(payloads)
    run = tmp_path / "logs" / "run-1"
    run.mkdir(parents=True)
    path = run / "events.out.tfevents.1.host"
    path.write_bytes(data[:-7])
    store = open_memory_store()
    report = _import(store, tmp_path)
    assert report.points_added == 5 and report.problems == []
    with open(path, "ab") as fh:
        fh.write(data[-7:])
    report = _import(store, tmp_path)
    assert report.points_added == 1 and report.problems == []
    run_id = stable_id("tensorboard", str(run))
    assert [v for _, _, v in _history(store, run_id, "acc")] == pytest.approx(
        [s / 10 for s in range(6)], rel=1e-6
    )


def test_new_event_file_in_a_run_is_read_on_its_own(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "run-1"
    _event_file(run, "events.out.tfevents.100.host", [_version()] + [
        _scalar(1e9 + s, s, "loss", float(s)) for s in range(5)
    ])  # fmt: skip
    store = open_memory_store()
    _import(store, tmp_path)
    _event_file(run, "events.out.tfevents.200.host", [_version(2e9)] + [
        _scalar(2e9 + s, s, "loss", float(s)) for s in range(5, 8)
    ])  # fmt: skip
    report = _import(store, tmp_path)
    assert report.points_added == 3
    assert store.point_count() == 8


def test_restart_in_a_new_file_purges_orphaned_points(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "run-1"
    _event_file(run, "events.out.tfevents.100.host", [_version()] + [
        _scalar(1e9 + s, s, "loss", 1.0) for s in range(1, 21)
    ])  # fmt: skip
    store = open_memory_store()
    _import(store, tmp_path)
    restart = tfevents_writer.encode_event(2e9, 11, session_log_status=1)
    _event_file(run, "events.out.tfevents.200.host", [_version(2e9), restart] + [
        _scalar(2e9 + s, s, "loss", 2.0) for s in range(11, 26)
    ])  # fmt: skip
    _import(store, tmp_path)
    history = _history(store, stable_id("tensorboard", str(run)), "loss")
    assert [s for s, _, _ in history] == list(range(1, 26))
    assert [v for s, _, v in history] == [1.0] * 10 + [2.0] * 15


def test_tensor_encoded_scalars_are_read(tmp_path: Path) -> None:
    enc = tfevents_writer.encode_tensor_value
    values = [
        enc("f32", 0.5, tfevents.DT_FLOAT),
        enc("f64", 0.25, tfevents.DT_DOUBLE),
        enc("f32_packed", 1.5, tfevents.DT_FLOAT, packed_field=True),
        enc("f64_packed", 2.5, tfevents.DT_DOUBLE, packed_field=True),
        enc("histo", 3.0, tfevents.DT_FLOAT, plugin="histograms"),
    ]
    payloads = [_version()]
    for step in range(3):
        payloads.append(tfevents_writer.encode_event(1e9 + step, step, summary_values=values))
        # later values carry no metadata, as TensorFlow writes them
        values = [enc(t, v, d, p, plugin=None) for t, v, d, p in (
            ("f32", 0.5, tfevents.DT_FLOAT, False), ("f64", 0.25, tfevents.DT_DOUBLE, False),
            ("f32_packed", 1.5, tfevents.DT_FLOAT, True),
            ("f64_packed", 2.5, tfevents.DT_DOUBLE, True), ("histo", 3.0, tfevents.DT_FLOAT, False),
        )]  # fmt: skip
    run = tmp_path / "logs" / "tf2"
    _event_file(run, "events.out.tfevents.1.host.v2", payloads)
    store = open_memory_store()
    _import(store, tmp_path)
    run_id = stable_id("tensorboard", str(run))
    summaries = store.summaries([run_id])[run_id]
    assert {k: (s.count, s.last) for k, s in summaries.items()} == {
        "f32": (3, 0.5),
        "f64": (3, 0.25),
        "f32_packed": (3, 1.5),
        "f64_packed": (3, 2.5),
    }


def test_nan_and_infinities_survive(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "diverged"
    specials = [1.0, math.nan, math.inf, -math.inf]
    _event_file(run, "events.out.tfevents.1.host", [_version()] + [
        _scalar(1e9 + s, s, "loss", v) for s, v in enumerate(specials)
    ])  # fmt: skip
    store = open_memory_store()
    _import(store, tmp_path)
    values = [v for _, _, v in _history(store, stable_id("tensorboard", str(run)), "loss")]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]


def test_unicode_names_and_tags_are_kept_exactly(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "run ü ✓" / "train split"
    tag = "loss/über ✓ a b"
    _event_file(run, "events.out.tfevents.1.host", [_version(), _scalar(1e9, 1, tag, 0.5)])
    store = open_memory_store()
    _import(store, tmp_path)
    (only,) = store.runs()
    assert only.name == "train split" and only.experiment == "run ü ✓"
    assert list(store.summaries([only.id])[only.id]) == [tag]


def test_detect_claims_event_files_and_keeps_walking() -> None:
    found = tensorboard.IMPORTER.detect(
        Path("/x/run"), ["sub"], ["events.out.tfevents.1.h", "notes.txt"]
    )
    assert isinstance(found, Detection) and not found.prune
    assert found.claimed == {"events.out.tfevents.1.h"}
    assert tensorboard.IMPORTER.detect(Path("/x"), [], ["a.csv"]) is None


# -- damaged input ---------------------------------------------------------------------------


def _points_of(cols: tfevents.EventColumns) -> set[tuple]:
    return {
        (cols.tag_names[t], s, v)
        for t, s, v in zip(
            cols.tag_ids.tolist(), cols.steps.tolist(), cols.values.tolist(), strict=True
        )
    }


def test_byte_mutations_never_raise_nor_invent_points() -> None:
    path = TB / "runs" / "mlp-lr0.1" / "events.out.tfevents.1795723160.vm.17298.0"
    original = path.read_bytes()
    full = tfevents.decode(original)
    good = _points_of(full)
    rng = random.Random(20261126)
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cols = tfevents.decode(bytes(data))
        points = _points_of(cols)
        # every checksum-verified point is one of the originals; most records survive
        assert points <= good
        if cols.first_wall is not None:  # times come from verified records only
            assert full.first_wall <= cols.first_wall <= cols.last_wall <= full.last_wall
        if cols.corrupt_at is None:
            assert len(points) >= len(good) - 3


def test_mutated_files_import_without_raising_and_report_one_line(tmp_path: Path) -> None:
    src = TB / "runs" / "mlp-lr0.01" / "events.out.tfevents.1795723160.vm.17298.2"
    original = src.read_bytes()
    rng = random.Random(7)
    store = open_memory_store()
    for i in range(25):
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        run = tmp_path / f"case{i}" / "run"
        run.mkdir(parents=True)
        (run / src.name).write_bytes(bytes(data))
        report = _import(store, tmp_path / f"case{i}")
        assert len(report.problems) <= 1
        for problem in report.problems:
            assert problem.path == str(run / src.name) and "\n" not in problem.message
        assert store.point_count(stable_id("tensorboard", str(run))) <= 440


def test_truncation_anywhere_keeps_every_complete_record(tmp_path: Path) -> None:
    path = TB / "runs" / "mlp-lr0.1" / "events.out.tfevents.1795723160.vm.17298.0"
    original = path.read_bytes()
    framing = tfrecord.scan(original)
    ends = (framing.starts + framing.lengths + 4).tolist()
    full = tfevents.decode(original)
    for cut in range(0, len(original), 97):
        cols = tfevents.decode(original[:cut])
        complete = sum(1 for e in ends if e <= cut)
        assert cols.corrupt_at is None and cols.record_count == complete
        assert len(cols.values) == int((full.records < complete).sum())


def test_empty_and_garbage_files_give_no_run_and_one_problem(tmp_path: Path) -> None:
    (tmp_path / "logs" / "empty").mkdir(parents=True)
    (tmp_path / "logs" / "empty" / "events.out.tfevents.1.h").write_bytes(b"")
    garbage = tmp_path / "logs" / "garbage" / "events.out.tfevents.1.h"
    garbage.parent.mkdir()
    garbage.write_bytes(random.Random(3).randbytes(5000))
    fine = _event_file(tmp_path / "logs" / "fine", "events.out.tfevents.1.h", [
        _version(), _scalar(1e9, 1, "loss", 0.5)
    ])  # fmt: skip
    store = open_memory_store()
    report = _import(store, tmp_path)
    assert [r.name for r in store.runs()] == ["fine"]
    assert [p.path for p in report.problems] == [str(garbage)]
    assert "corrupt record header at byte 0" in report.problems[0].message
    again = _import(store, tmp_path)
    assert again.problems == [] and fine.exists()


def test_non_utf8_tags_are_replaced_not_fatal(tmp_path: Path) -> None:
    value = b"\x0a\x03l\xff\xfe" + b"\x15" + struct.pack("<f", 1.0)
    event = tfevents_writer.encode_event(1e9, 1, summary_values=[value])
    _event_file(tmp_path / "logs" / "run", "events.out.tfevents.1.h", [_version(), event])
    store = open_memory_store()
    report = _import(store, tmp_path)
    (run,) = store.runs()
    assert list(store.summaries([run.id])[run.id]) == ["l\ufffd\ufffd"]
    assert report.problems == []


def test_a_corrupt_record_in_the_middle_is_skipped_and_reported(tmp_path: Path) -> None:
    payloads = [_version()] + [_scalar(1e9 + s, s, "loss", float(s)) for s in range(10)]
    data = bytearray(tfrecord.frame(payloads))
    framing = tfrecord.scan(bytes(data))
    value_byte = int(framing.starts[5] + framing.lengths[5]) - 2
    data[value_byte] ^= 0x40  # inside the float value of step 4
    path = _event_file(tmp_path / "logs" / "run", "events.out.tfevents.1.h", [])
    path.write_bytes(bytes(data))
    store = open_memory_store()
    report = _import(store, tmp_path)
    (run,) = store.runs()
    assert [s for s, _, _ in _history(store, run.id, "loss")] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    (problem,) = report.problems
    assert problem.path == str(path) and "bad checksum" in problem.message


def test_a_failed_write_leaves_nothing_behind(
    logdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_memory_store()

    def fail(table: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "add_points", fail)
    with pytest.raises(RuntimeError):
        _import(store, logdir)
    counts = store.table_counts()
    assert counts["runs"] == counts["metrics"] == counts["files"] == counts["params"] == 0


def test_a_run_folder_emptied_of_events_disappears(logdir: Path) -> None:
    store = open_memory_store()
    _import(store, logdir)
    for path in (logdir / "linear-tbx").glob("events.out.tfevents.*"):
        path.write_bytes(b"")
    _import(store, logdir)
    runs = _by_name(store)
    assert "linear-tbx" not in runs and "linear-tbx/1795723161.1445825" in runs


def test_corruption_in_appended_bytes_is_reported_at_its_file_offset(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "run"
    first = tfrecord.frame([_version()] + [_scalar(1e9 + s, s, "loss", 1.0) for s in range(3)])
    path = _event_file(run, "events.out.tfevents.1.h", [])
    path.write_bytes(first)
    store = open_memory_store()
    _import(store, tmp_path)
    more = bytearray(tfrecord.frame([_scalar(1e9 + s, s, "loss", 2.0) for s in range(3, 6)]))
    second_header = len(tfrecord.frame([_scalar(1e9 + 3, 3, "loss", 2.0)]))
    more[second_header + 9] ^= 0xFF  # the header checksum of the second appended record
    with open(path, "ab") as fh:
        fh.write(bytes(more))
    report = _import(store, tmp_path)
    assert report.points_added == 1
    (problem,) = report.problems
    assert f"corrupt record header at byte {len(first) + second_header}," in problem.message

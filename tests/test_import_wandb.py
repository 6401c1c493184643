"""W&B offline runs: the ``.wandb`` reader and importer against ``wandb leet inspect`` output.

Fixtures (tests/fixtures/wandb-offline/PROVENANCE.md): two real wandb 0.31 offline runs (one
finished, one ``finish(exit_code=1)``), and two live snapshots: a run copied while its .wandb
file was still the 7-byte header, and one copied at exactly 3 x 32 KiB, mid-record.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import struct
import tarfile
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers.stores import snapshot

from mltop.core.common.protowire import encode_len_field, encode_varint
from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport, SourceRef, Status
from mltop.core.importers import wandb_offline, wandb_records
from mltop.core.importers.wandb_offline import IMPORTER, KIND, run_id_for
from mltop.core.runs.system_keys import is_system_key
from mltop.core.store import Store, open_memory_store

FIXTURES = Path(__file__).parent / "fixtures" / "wandb-offline"
ORACLE = FIXTURES / "oracle"
LIVE_ORACLE = FIXTURES / "live" / "oracle"
FINISHED = "offline-run-20261126_200355-m5qvca58"
FAILED = "offline-run-20261126_200409-z57klp3u"
HEADER_ONLY = "offline-run-20261126_200907-ehf0f0uk"
BLOCK_CUT = "offline-run-20261126_201021-tz0wpl3i"


def _safe_member(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    # logs/debug-core.log is an absolute symlink into the generating machine's cache: skip it.
    if member.issym() and os.path.isabs(member.linkname):
        return None
    return tarfile.data_filter(member, path)


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter=_safe_member)
    return dest


@pytest.fixture
def wandb_dir(tmp_path: Path) -> Path:
    return extract(FIXTURES / "wandb-offline-runs.tar.gz", tmp_path) / "wandb"


@pytest.fixture
def live_dir(tmp_path: Path) -> Path:
    return extract(FIXTURES / "live" / "wandb-live-snapshots.tar.gz", tmp_path / "live")


def import_run(store: Store, folder: Path) -> ImportReport:
    report = ImportReport()
    IMPORTER.import_sources(store, [SourceRef(KIND, folder)], report)
    return report


def oracle_records(name: str, folder: Path = ORACLE) -> list[dict[str, Any]]:
    lines = (folder / f"{name}.inspect.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def oracle_history(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...]} from leet's history records (numeric, non-internal)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in records:
        if rec["type"] != "history":
            continue
        hist = rec["history"]
        step = hist.get("step", {}).get("num", 0)
        for key, value in hist["item"].items():
            if key.startswith("_") or isinstance(value, bool | dict | list | str):
                continue
            out.setdefault(key, []).append((step, float(value)))
    return out


def flat(prefix: str, value: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(value, dict):
        for k, v in value.items():
            flat(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = str(value)
    return out


def iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- protobuf/framing encoders, to derive records from the real ones ----------------------------


def history_record(num: int, step: int, items: dict[str | bytes, bytes]) -> bytes:
    body = b"".join(
        encode_len_field(
            1,
            encode_len_field(2, k if isinstance(k, bytes) else k.encode())
            + encode_len_field(16, v),
        )
        for k, v in items.items()
    )
    body += encode_len_field(2, encode_varint(1 << 3 | 0) + encode_varint(step))
    return encode_varint(1 << 3 | 0) + encode_varint(num) + encode_len_field(2, body)


def frame(payloads: list[bytes]) -> bytes:
    """A .wandb file holding these records, framed as wandb writes them."""
    out = bytearray(wandb_records.FILE_HEADER)
    for payload in payloads:
        rest = payload
        first = True
        while True:
            left = wandb_records.BLOCK_SIZE - len(out) % wandb_records.BLOCK_SIZE
            if left < 7:
                out += b"\x00" * left
                continue
            chunk, rest = rest[: left - 7], rest[left - 7 :]
            kind = (1 if first else 4) if not rest else (2 if first else 3)
            crc = zlib.crc32(chunk, zlib.crc32(bytes([kind])))
            out += struct.pack("<IHB", crc, len(chunk), kind) + chunk
            first = False
            if not rest:
                break
    return bytes(out)


def real_payloads(folder: Path) -> list[bytes]:
    data = next(folder.glob("run-*.wandb")).read_bytes()
    return wandb_records.read_chunks(data).payloads


def logged_last(folder: Path, record: bytes) -> None:
    """Rewrite the run's .wandb file with ``record`` just before its exit record, as if the run
    had logged it last."""
    payloads = real_payloads(folder)
    payloads.insert(-1, record)
    next(folder.glob("run-*.wandb")).write_bytes(frame(payloads))


# -- the reader ----------------------------------------------------------------------------------


def test_reader_finds_every_record_leet_finds(wandb_dir: Path) -> None:
    for name in (FINISHED, FAILED):
        chunks = wandb_records.read_chunks(next((wandb_dir / name).glob("*.wandb")).read_bytes())
        oracle = oracle_records(name)
        assert len(chunks.payloads) == len(oracle)
        assert chunks.problems == []
        kinds = [wandb_records.record_type(p)[0] for p in chunks.payloads]
        names = {
            2: "history", 3: "summary", 5: "config", 6: "files", 7: "stats", 11: "telemetry",
            12: "metric", 13: "output_raw", 17: "run", 18: "exit", 21: "header", 26: "environment",
        }  # fmt: skip
        assert [names[k] for k in kinds] == [r["type"] for r in oracle]


def test_reader_stops_before_a_record_cut_at_a_block_boundary(live_dir: Path) -> None:
    path = next((live_dir / "block-boundary-snapshot" / BLOCK_CUT).glob("*.wandb"))
    data = path.read_bytes()
    assert len(data) == 3 * 32768
    chunks = wandb_records.read_chunks(data)
    assert len(chunks.payloads) == len(oracle_records("block-boundary-snapshot", LIVE_ORACLE))
    assert chunks.problems == []
    assert chunks.end < len(data)  # the cut record is left for the next read
    final = next((live_dir / "block-boundary-snapshot" / f"final_{BLOCK_CUT}").glob("*.wandb"))
    rest = wandb_records.read_chunks(final.read_bytes()[chunks.end :], chunks.end, chunks.end)
    whole = wandb_records.read_chunks(final.read_bytes())
    assert chunks.payloads + rest.payloads == whole.payloads


def test_corrupt_block_is_skipped_and_reported_once_per_block(wandb_dir: Path) -> None:
    data = bytearray(next((wandb_dir / FINISHED).glob("*.wandb")).read_bytes())
    data[100] ^= 0xFF  # inside the first block's records
    chunks = wandb_records.read_chunks(bytes(data))
    assert len(chunks.problems) == 1
    assert "byte" in chunks.problems[0]
    whole = wandb_records.read_chunks(next((wandb_dir / FINISHED).glob("*.wandb")).read_bytes())
    # Block 0 is dropped from the bad chunk on; block 1 (a LAST tail, then whole records) stays.
    assert 0 < len(chunks.payloads) < len(whole.payloads)
    assert chunks.payloads[-1] == whole.payloads[-1]


# -- the importer against the oracle -------------------------------------------------------------


@pytest.mark.parametrize("name", [FINISHED, FAILED])
def test_run_matches_leet_inspect(wandb_dir: Path, name: str) -> None:
    store = open_memory_store()
    report = import_run(store, wandb_dir / name)
    assert report.problems == []
    summary = json.loads((ORACLE / f"{name}.summary.json").read_text())
    run = store.run(run_id_for(wandb_dir / name))
    assert run is not None
    assert run.name == summary["name"]
    assert run.native_id == summary["run_id"]
    assert run.experiment == summary["project"]
    assert run.status == (Status.FINISHED if summary["exit_code"] == 0 else Status.FAILED)
    assert run.error == (None if summary["exit_code"] == 0 else "exit code 1")
    assert run.start_time == pytest.approx(iso(summary["start_time"]), abs=1e-6)
    assert run.end_time is not None and run.end_time > run.start_time
    assert run.host == "vm"
    assert store.params(run.id) == flat("", summary["config"], {})
    tags = store.tags(run.id)
    assert {t for t in tags if not t.startswith("wandb.")} == set(summary["tags"])
    assert tags["wandb.notes"] == summary["notes"]
    assert tags["wandb.group"] == "lr-sweep"
    assert tags["wandb.job_type"] == "train"

    history = oracle_history(oracle_records(name))
    summaries = store.summaries([run.id])[run.id]
    for key, points in history.items():
        stored = store.history(run.id, key).to_pylist()
        assert [(p["step"], p["value"]) for p in stored] == points
        assert summaries[key].last == points[-1][1]
        assert summaries[key].last_step == summary["step"]
    # run.summary["best_epoch"] = 0 has no history: it is one point at the last step.
    assert summaries["best_epoch"].last == summary["summary"]["best_epoch"]
    assert summaries["best_epoch"].count == 1
    model_keys = {k for k in summaries if not is_system_key(k)}
    assert model_keys == set(history) | {"best_epoch"}
    # A define_metric(summary="max") key keeps its history; its max is the oracle's summary.
    assert summaries["val/acc"].max == summary["summary"]["val/acc"]["max"]
    assert [log.path for log in store.logs(run.id)] == [
        str(wandb_dir / name / "files" / "output.log")
    ]


def test_history_timestamps_are_wandb_timestamps(wandb_dir: Path) -> None:
    store = open_memory_store()
    import_run(store, wandb_dir / FINISHED)
    run_id = run_id_for(wandb_dir / FINISHED)
    first = next(r for r in oracle_records(FINISHED) if r["type"] == "history")
    stored = store.history(run_id, "train/loss").to_pylist()[0]
    assert stored["ts"] == first["history"]["item"]["_timestamp"]


def test_discovery_finds_run_folders_and_claims_the_wandb_logs(wandb_dir: Path) -> None:
    detection = IMPORTER.detect(wandb_dir, [FINISHED, FAILED, "latest-run"], ["debug.log"])
    assert detection is not None and detection.refs == [] and detection.claimed == {"debug.log"}
    folder = wandb_dir / FINISHED
    detection = IMPORTER.detect(folder, ["files", "logs", "tmp"], sorted(os.listdir(folder)))
    assert detection is not None and detection.prune
    assert [r.location for r in detection.refs] == [folder]

    store = open_memory_store()
    report = ingest(wandb_dir.parent, store, importers=[IMPORTER])
    assert report.problems == []
    assert report.counts[KIND].runs == 2
    assert {r.name for r in store.runs()} == {"sgd-lr0.01", "sgd-lr0.5-failed"}


def test_reimport_is_idempotent_and_an_unchanged_rescan_reads_nothing(wandb_dir: Path) -> None:
    store = open_memory_store()
    ingest(wandb_dir.parent, store, importers=[IMPORTER])
    before = (store.table_counts(), snapshot(store, summaries=True))
    again = ingest(wandb_dir.parent, store, importers=[IMPORTER])
    assert again.counts == {} and again.problems == []
    assert (store.table_counts(), snapshot(store, summaries=True)) == before


# -- live runs -----------------------------------------------------------------------------------


def test_header_only_run_shows_as_running_from_its_folder_name(live_dir: Path) -> None:
    folder = live_dir / "header-only-snapshot" / HEADER_ONLY
    store = open_memory_store()
    report = import_run(store, folder)
    assert report.problems == []
    run = store.run(run_id_for(folder))
    assert run is not None
    assert run.status == Status.RUNNING
    assert run.native_id == "ehf0f0uk" and run.name == "ehf0f0uk"
    local = datetime.strptime("20261126_200907", "%Y%m%d_%H%M%S").timestamp()
    assert run.start_time == local
    assert store.point_count(run.id) == 0
    assert [log.path for log in store.logs(run.id)] == [str(folder / "files" / "output.log")]


def test_only_the_console_grew_refreshes_the_run_clock(live_dir: Path) -> None:
    folder = live_dir / "header-only-snapshot" / HEADER_ONLY
    store = open_memory_store()
    import_run(store, folder)
    log = folder / "files" / "output.log"
    with open(log, "a") as fh:
        fh.write("epoch 20/60\n")
    later = log.stat().st_mtime + 5
    os.utime(log, (later, later))
    report = import_run(store, folder)
    assert report.problems == [] and report.counts == {}
    run = store.run(run_id_for(folder))
    assert run is not None and run.updated == later and run.status == Status.RUNNING


def test_block_boundary_snapshot_matches_leet(live_dir: Path) -> None:
    folder = live_dir / "block-boundary-snapshot" / BLOCK_CUT
    store = open_memory_store()
    assert import_run(store, folder).problems == []
    summary = json.loads((LIVE_ORACLE / "block-boundary-snapshot.summary.json").read_text())
    run = store.run(run_id_for(folder))
    assert run is not None and run.status == Status.RUNNING and run.name == summary["name"]
    history = oracle_history(oracle_records("block-boundary-snapshot", LIVE_ORACLE))
    summaries = store.summaries([run.id])[run.id]
    model_keys = {k for k in summaries if not is_system_key(k)}
    assert model_keys == {f"m{i}" for i in range(40)} == set(history)
    for key, points in history.items():
        assert summaries[key].count == len(points) == summary["step"] + 1
        assert summaries[key].last_step == summary["step"]
        assert store.history(run.id, key).column("value").to_pylist() == [v for _, v in points]


@pytest.mark.parametrize("snapshot_name", ["block-boundary-snapshot", "header-only-snapshot"])
def test_a_growing_file_is_read_incrementally_and_ends_equal_to_a_fresh_import(
    live_dir: Path, tmp_path: Path, snapshot_name: str
) -> None:
    final = next((live_dir / snapshot_name).glob("final_*"))
    folder = tmp_path / "grow" / final.name.removeprefix("final_")
    shutil.copytree(final, folder, symlinks=True)
    path = next(folder.glob("*.wandb"))
    data = path.read_bytes()
    rng = random.Random(7)
    blocks = list(range(32768, len(data), 32768))
    cuts = sorted({7, *blocks[:3], *blocks[-2:], *(rng.randrange(7, len(data)) for _ in range(3))})
    path.write_bytes(b"")
    store = open_memory_store()
    for cut in [*cuts, len(data)]:
        with open(path, "r+b") as fh:  # grow in place, as wandb does (same inode)
            fh.seek(0)
            fh.write(data[:cut])
        report = import_run(store, folder)
        assert report.problems == []
        state = store.file_states()[str(path)]
        assert state.offset <= cut
        # Every intermediate state equals a fresh import of the same bytes.
        fresh = open_memory_store()
        import_run(fresh, folder)
        assert snapshot(store, summaries=True) == snapshot(fresh, summaries=True)
    run = store.run(run_id_for(folder))
    assert run is not None and run.status == Status.FINISHED
    oracle = json.loads((LIVE_ORACLE / f"{snapshot_name}.FINAL.summary.json").read_text())
    assert run.name == oracle["name"]
    assert store.params(run.id) == flat("", oracle["config"], {})


def test_nan_infinity_and_unicode_keys_survive(wandb_dir: Path) -> None:
    folder = wandb_dir / FINISHED
    values = {
        "ünï/lösß": b"NaN",
        "train/loss": b"Infinity",
        "grad norm / max": b"-Infinity",
        "quoted": b'"NaN"',
        "text": b'"hello"',
        "flag": b"true",
        "image": b'{"_type": "image-file"}',
        "_timestamp": b"1795723450.5",
    }
    logged_last(folder, history_record(9000, 50, values))
    store = open_memory_store()
    assert import_run(store, folder).problems == []
    run_id = run_id_for(folder)
    last = {k: store.history(run_id, k).to_pylist()[-1] for k in store.summaries([run_id])[run_id]}
    assert math.isnan(last["ünï/lösß"]["value"]) and last["ünï/lösß"]["step"] == 50
    assert last["train/loss"]["value"] == math.inf
    assert last["grad norm / max"]["value"] == -math.inf
    assert math.isnan(last["quoted"]["value"])
    assert last["ünï/lösß"]["ts"] == 1795723450.5
    assert not {"text", "flag", "image"} & set(last)


def test_non_utf8_text_in_records_is_replaced_not_fatal(wandb_dir: Path) -> None:
    folder = wandb_dir / FINISHED
    payloads = real_payloads(folder)
    run_index = next(i for i, p in enumerate(payloads) if wandb_records.record_type(p)[0] == 17)
    payloads[run_index] = payloads[run_index].replace(b"sgd-lr0.01", b"sgd-\xff\xfe0.01")
    payloads.insert(-1, history_record(9001, 51, {b"b\xffad": b"1.5"}))
    next(folder.glob("*.wandb")).write_bytes(frame(payloads))
    store = open_memory_store()
    assert import_run(store, folder).problems == []
    run = store.run(run_id_for(folder))
    assert run is not None and run.name == "sgd-\ufffd\ufffd0.01"
    assert "b\ufffdad" in store.summaries([run.id])[run.id]


# -- bad input -----------------------------------------------------------------------------------


def assert_one_line_problems(report: ImportReport, folder: Path) -> None:
    for problem in report.problems:
        assert problem.path.startswith(str(folder))
        assert "\n" not in problem.message and problem.message


def test_mutated_files_never_raise_in_the_reader(wandb_dir: Path) -> None:
    data = next((wandb_dir / FINISHED).glob("*.wandb")).read_bytes()
    rng = random.Random(20261126)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if rng.random() < 0.3:
            del mutated[rng.randrange(len(mutated)) :]
        chunks = wandb_records.read_chunks(bytes(mutated))
        reading = wandb_offline._Reading()
        reading.feed(chunks, 0)
        assert chunks.end <= len(mutated)


def test_bad_files_are_reported_and_the_other_runs_still_imported(
    wandb_dir: Path, tmp_path: Path
) -> None:
    good = wandb_dir / FAILED
    data = next((wandb_dir / FINISHED).glob("*.wandb")).read_bytes()
    rng = random.Random(5)
    cases: dict[str, bytes] = {
        "emptied": b"",
        "garbage": bytes(rng.randrange(256) for _ in range(5000)),
        "truncated-header": data[:4],
        "wrong-magic": b":W&B\x00\x00\x00" + data[7:],
        "truncated-mid": data[: len(data) // 2],
        "not-utf8": b"\xff\xfe\xfd" * 1000,
    }
    for i in range(20):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            mutated[rng.randrange(7, len(mutated))] = rng.randrange(256)
        cases[f"mutated-{i}"] = bytes(mutated)
    store = open_memory_store()
    for label, content in cases.items():
        folder = tmp_path / "bad" / f"offline-run-20261126_200355-{label}"
        shutil.copytree(wandb_dir / FINISHED, folder, symlinks=True)
        next(folder.glob("*.wandb")).write_bytes(content)
        report = import_run(store, folder)
        assert_one_line_problems(report, folder)
        if label in ("garbage", "wrong-magic", "not-utf8"):
            assert len(report.problems) == 1 and report.problems[0].path.endswith(".wandb")
            assert store.run(run_id_for(folder)) is None  # nothing half-written
        if label.startswith("mutated"):
            assert report.problems, label  # a CRC catches every flipped byte
    report = import_run(store, good)
    assert report.problems == []
    assert store.run(run_id_for(good)) is not None

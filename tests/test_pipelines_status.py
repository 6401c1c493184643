"""Stage status from dvc.lock (hashed like DVC, without DVC) and from JUnit XML reports."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from mltop.core.pipelines import status as status_mod
from mltop.core.pipelines.detect import parse_file
from mltop.core.pipelines.model import Phase, StatusState
from mltop.core.pipelines.phases import assign_phases
from mltop.core.pipelines.status import (
    JUnitError,
    attach_junit,
    dir_md5,
    dvc_status,
    file_md5,
    find_junit_reports,
    parse_junit,
)

HERE = Path(__file__).resolve().parent / "pipelines"
SHARED_DVC = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "dvc"


# --- an independent implementation of DVC's hashes, written from DVC's documented format ---------
def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def dvc_dir_hash(files: dict[str, bytes]) -> str:
    listing = [{"md5": md5_bytes(files[rel]), "relpath": rel} for rel in sorted(files)]
    return md5_bytes(json.dumps(listing, sort_keys=True).encode()) + ".dir"


def make_workspace(root: Path) -> dict[str, object]:
    files = {
        "data/raw.csv": b"a,b\n1,2\n3,4\n",
        "src/prepare.py": b"print('prepare')\n",
        "src/train.py": b"print('train')\n",
        "src/evaluate.py": b"print('evaluate')\n",
        "data/prepared/train.csv": b"1,2\n",
        "data/prepared/sub/test.csv": b"3,4\n",
        "model.pkl": bytes(range(256)) * 4,
        "metrics.json": b'{"acc": 0.9}',
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "dvc.yaml").write_bytes((HERE / "sample/dvc.yaml").read_bytes())
    (root / "params.yaml").write_text("prepare:\n  split: 0.2\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    prepared = {
        "train.csv": files["data/prepared/train.csv"],
        "sub/test.csv": files["data/prepared/sub/test.csv"],
    }

    def entry(rel: str) -> dict[str, object]:
        data = files[rel]
        return {"path": rel, "hash": "md5", "md5": md5_bytes(data), "size": len(data)}

    prepared_entry = {
        "path": "data/prepared",
        "hash": "md5",
        "md5": dvc_dir_hash(prepared),
        "size": sum(len(v) for v in prepared.values()),
        "nfiles": 2,
    }
    lock = {
        "schema": "2.0",
        "stages": {
            "prepare": {
                "cmd": "python src/prepare.py",
                "deps": [entry("data/raw.csv"), entry("src/prepare.py")],
                "params": {"params.yaml": {"prepare.split": 0.2}},
                "outs": [prepared_entry],
            },
            "train": {
                "cmd": "python src/train.py",
                "deps": [prepared_entry, entry("src/train.py")],
                "params": {"params.yaml": {"train": {"lr": 0.1, "epochs": 3}}},
                "outs": [entry("model.pkl")],
            },
        },
    }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    return lock


def states(root: Path) -> dict[str, tuple[str, str]]:
    pipeline = parse_file(root / "dvc.yaml")
    return {k: (v.state.value, v.summary) for k, v in dvc_status(pipeline).items()}


def test_dvc_status_up_to_date_and_never_run(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    assert states(tmp_path) == {
        "prepare": ("up to date", "up to date"),
        "train": ("up to date", "up to date"),
        "evaluate": ("not run", "not run yet: not in dvc.lock"),
    }


def test_dvc_status_sees_changed_deps_outs_params_and_commands(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    (tmp_path / "src/train.py").write_bytes(b"print('train v2')\n")
    assert states(tmp_path)["train"] == ("changed", "changed since last run: src/train.py")
    assert states(tmp_path)["prepare"][0] == "up to date"

    (tmp_path / "data/prepared/sub/test.csv").write_bytes(b"3,5\n")  # same size, other bytes
    got = states(tmp_path)
    assert got["prepare"] == ("changed", "changed since last run: data/prepared")
    assert "data/prepared" in got["train"][1]

    (tmp_path / "params.yaml").write_text(
        "prepare:\n  split: 0.3\ntrain:\n  lr: 0.1\n  epochs: 4\n"
    )
    got = states(tmp_path)
    assert got["prepare"][1].endswith(", param prepare.split")
    details = dvc_status(parse_file(tmp_path / "dvc.yaml"))["train"].details
    assert "param train.epochs changed" in details

    (tmp_path / "model.pkl").unlink()
    assert "model.pkl missing" in dvc_status(parse_file(tmp_path / "dvc.yaml"))["train"].details

    text = (tmp_path / "dvc.yaml").read_text().replace("python src/train.py", "python src/fit.py")
    (tmp_path / "dvc.yaml").write_text(text)
    assert "command changed" in dvc_status(parse_file(tmp_path / "dvc.yaml"))["train"].details


def test_dvc_status_without_lock_is_not_run(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_bytes((HERE / "sample/dvc.yaml").read_bytes())
    assert {s for s, _ in states(tmp_path).values()} == {"not run"}


def test_dvc_directory_too_large_to_hash_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workspace(tmp_path)
    monkeypatch.setattr(status_mod, "MAX_DIR_FILES", 1)
    # sizes match, so the directory has to be hashed, and it has two files
    got = dvc_status(parse_file(tmp_path / "dvc.yaml"))
    assert got["prepare"].state is StatusState.UNKNOWN
    assert "not hashed" in got["prepare"].details[0]


def test_legacy_lock_entries_hash_text_with_crlf_as_lf(tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_bytes(b"line one\r\nline two\r\n")
    assert file_md5(path) == md5_bytes(b"line one\r\nline two\r\n")
    assert file_md5(path, dos2unix=True) == md5_bytes(b"line one\nline two\n")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\r\n" * 10)
    assert file_md5(binary, dos2unix=True) == md5_bytes(b"\x00\r\n" * 10)
    # a CRLF split across the read buffer is still one line ending
    big = tmp_path / "big.txt"
    data = b"x" * (status_mod.CHUNK - 1) + b"\r\n" + b"tail\r\n"
    big.write_bytes(data)
    assert file_md5(big, dos2unix=True) == md5_bytes(data.replace(b"\r\n", b"\n"))


def test_legacy_lock_without_hash_field_uses_dos2unix(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"a\r\nb\r\n")
    (tmp_path / "out.txt").write_bytes(b"ok\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n"
    )
    lock = {
        "schema": "2.0",
        "stages": {
            "s": {
                "cmd": "cp in.txt out.txt",
                "deps": [{"path": "in.txt", "md5": md5_bytes(b"a\nb\n"), "size": 6}],
                "outs": [{"path": "out.txt", "md5": md5_bytes(b"ok\n"), "size": 3}],
            }
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert states(tmp_path)["s"][0] == "up to date"


def test_dir_hash_matches_an_independent_implementation(tmp_path: Path) -> None:
    files = {"b.txt": b"b", "a/z.txt": b"z", "a/b c.txt": b"space", "é.txt": "ü".encode()}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert dir_md5(tmp_path) == dvc_dir_hash(files)


@pytest.mark.skipif(
    not (SHARED_DVC / "dvc-project.tar.gz").is_file(),
    reason=f"DVC project fixture not found at {SHARED_DVC}",
)
def test_real_dvc_project_reads_up_to_date_then_changed(tmp_path: Path) -> None:
    """dvc.lock written by DVC 3.67 (directory outputs included) matches our hashes."""
    with tarfile.open(SHARED_DVC / "dvc-project.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    project = tmp_path / "dvc-project"
    pipeline = parse_file(project / "dvc.yaml")
    got = dvc_status(pipeline)
    assert {k: v.state for k, v in got.items()} == {
        "prepare": StatusState.UP_TO_DATE,
        "featurize": StatusState.UP_TO_DATE,
        "train": StatusState.UP_TO_DATE,
        "evaluate": StatusState.UP_TO_DATE,
    }
    with (project / "src/featurize.py").open("a") as fh:
        fh.write("# touched\n")
    got = dvc_status(pipeline)
    assert got["featurize"].summary == "changed since last run: src/featurize.py"
    assert got["train"].state is StatusState.UP_TO_DATE


# --- JUnit ---------------------------------------------------------------------------------------
PYTEST_JUNIT = "\n".join(
    [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1"',
        ' skipped="1" tests="5" time="1.250" timestamp="2026-01-01T00:00:00" hostname="h">',
        '<testcase classname="tests.test_a" name="test_ok" time="0.1" />',
        '<testcase classname="tests.test_a" name="test_ok2" time="0.1" />',
        '<testcase classname="tests.test_a" name="test_bad" time="0.2">',
        '<failure message="assert 1 == 2">x</failure></testcase>',
        '<testcase classname="tests.test_b" name="test_err" time="0.3">',
        '<error message="boom">y</error></testcase>',
        '<testcase classname="tests.test_b" name="test_skip" time="0.0">',
        '<skipped message="later" /></testcase>',
        "</testsuite></testsuites>",
    ]
)


def test_parse_junit_counts_failures_and_duration(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(PYTEST_JUNIT)
    report = parse_junit(path)
    assert (report.tests, report.failures, report.errors, report.skipped) == (5, 1, 1, 1)
    assert report.passed == 2
    assert report.duration == pytest.approx(1.25)
    assert report.failed_cases == ("tests.test_a::test_bad", "tests.test_b::test_err")
    assert report.summary() == "5 tests, 2 ✓ 2 ✗ 1 skipped"


def test_parse_junit_from_suite_attributes_only(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text('<testsuite tests="7" failures="0" errors="0" skipped="2" time="3.5"/>')
    report = parse_junit(path)
    assert (report.tests, report.passed, report.skipped, report.duration) == (7, 5, 2, 3.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<testsuite><testcase", "invalid XML"),
        ("<html><body/></html>", "not a JUnit report"),
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            "<testsuite>&lol;</testsuite>",
            "refused",
        ),
    ],
)
def test_bad_junit_is_a_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(content)
    with pytest.raises(JUnitError) as info:
        parse_junit(path)
    assert message in str(info.value) and str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_huge_junit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.xml"
    with path.open("wb") as fh:
        fh.truncate(10_000_000)
    start = time.perf_counter()
    with pytest.raises(JUnitError, match="too large"):
        parse_junit(path, max_bytes=1_000_000)
    assert time.perf_counter() - start < 1.0


def test_junit_reports_found_and_attached_to_the_test_stage(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/junit.xml").write_text(PYTEST_JUNIT)
    (tmp_path / "reports/other.xml").write_text("<project/>")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules/junit.xml").write_text(PYTEST_JUNIT)
    found = find_junit_reports(tmp_path)
    assert found == [tmp_path / "reports/junit.xml"]
    pipeline = assign_phases(parse_file(HERE / "sample/.github/workflows/ci.yml"))
    assert pipeline.stage("test").phase is Phase.TEST  # type: ignore[union-attr]
    statuses = attach_junit(pipeline, [parse_junit(p) for p in found], tmp_path)
    assert list(statuses) == ["test"]
    test = statuses["test"]
    assert test.state is StatusState.FAILED
    assert test.summary == "junit 2 ✓ 2 ✗ 1 skipped"
    assert test.duration == pytest.approx(1.25)
    assert test.details[0] == "reports/junit.xml: 5 tests, 2 ✓ 2 ✗ 1 skipped"
    assert "failed: tests.test_a::test_bad" in test.details


def test_dvc_status_names_added_and_removed_params_in_a_tracked_section(tmp_path: Path) -> None:
    make_workspace(tmp_path)
    (tmp_path / "params.yaml").write_text("prepare:\n  split: 0.2\ntrain:\n  lr: 0.1\n  batch: 8\n")
    details = dvc_status(parse_file(tmp_path / "dvc.yaml"))["train"].details
    assert details == ("param train.epochs removed", "param train.batch added")
    (tmp_path / "params.yaml").unlink()
    got = dvc_status(parse_file(tmp_path / "dvc.yaml"))
    assert got["prepare"].details == ("params.yaml missing or unreadable",)

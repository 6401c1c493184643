"""Mutations of the real fixtures, per format: the ingest never crashes, hangs or loses silently.

Each format's healthy source (copied from tests/fixtures, see each PROVENANCE.md) is copied into
a few hundred folders, and one of its files is damaged in each copy the way files really break:
cut short, bytes flipped, a block overwritten with garbage, emptied, numbers made huge or turned
into other JSON types or nested deeper than parsers go, lines dropped or repeated, bytes that
are not UTF-8. For the SQLite
trackers some copies get values of the wrong type or out of range written by SQL instead.

One ``mltop`` ingest per format then runs in a subprocess, twice over the same store (the second
scan is the incremental path), under a deadline. It must:

* finish before the deadline and print no traceback;
* report no problem line that is a caught crash (a Python exception's name in the message: the
  importers' last-resort guards say ``cannot import: KeyError: ...``, which is a bug here);
* for every copy, yield runs or a problem line naming a path in it, unless the damage made the
  file stop looking like that source at all (the format's own test of a file says so: a ``.db``
  without SQLite's header, a CSV whose header is no longer Keras's). Those are counted and shown.

The seed is fixed, so a failure names a case folder that the same seed rebuilds.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FIXTURES

from mltop.core.importers.generic_logs import _looks_like_csv_metrics as looks_like_csv_metrics
from mltop.core.importers.generic_logs import _looks_like_jsonl_metrics as looks_like_jsonl_metrics
from mltop.core.importers.keras_csv import keras_header

pytestmark = pytest.mark.slow

SEED = 20261205
DEADLINE = 90.0  # seconds for one format's two scans; each takes a few seconds here

# A caught crash: a Python exception's name in a problem line ("KeyError: 'x'", "(TypeError").
CRASH = re.compile(r"\b(?!UnicodeDecodeError|ParseError)(?:[A-Z][a-z]+)+(?:Error|Exception)\b")

_INGEST = """
import json, sys
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.store import open_memory_store
root = Path(sys.argv[1])
store = open_memory_store()
problems = []
for _ in range(2):
    report = ingest(root, store)
    problems += [[p.path, p.message] for p in report.problems]
runs = [[r.location, r.location] for r in store.runs()]
print(json.dumps({"problems": problems, "runs": runs}))
"""


# -- mutations ------------------------------------------------------------------------------------

HUGE = [b"1e309", b"-1e309", b"99999999999999999999999999", b"1.7976931348623157e308", b"-0"]
WRONG_TYPES = [b'"abc"', b"[1, 2]", b'{"a": 1}', b"true", b"null", b'""', b"NaN", b"-Infinity"]
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(max(len(data), 1))]


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def garbage_block(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return rng.randbytes(64)
    at = rng.randrange(len(data))
    size = rng.choice([16, 512, 4096])
    return data[:at] + rng.randbytes(size) + data[at + size :]


def all_garbage(rng: random.Random, data: bytes) -> bytes:
    return rng.randbytes(max(len(data), 1))


def empty(rng: random.Random, data: bytes) -> bytes:
    return b""


def huge_number(rng: random.Random, data: bytes) -> bytes:
    return _replace_number(rng, data, HUGE)


def wrong_type(rng: random.Random, data: bytes) -> bytes:
    return _replace_number(rng, data, WRONG_TYPES)


def _replace_number(rng: random.Random, data: bytes, choices: list[bytes]) -> bytes:
    found = list(NUMBER.finditer(data))
    if not found:
        return flip_bytes(rng, data)
    out = data
    for match in sorted(
        rng.sample(found, min(len(found), rng.randint(1, 3))), key=lambda m: -m.start()
    ):
        out = out[: match.start()] + rng.choice(choices) + out[match.end() :]
    return out


def drop_or_repeat_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    if len(lines) < 2:
        return data + data
    at = rng.randrange(len(lines))
    if rng.random() < 0.5:
        del lines[at]
    else:
        lines.insert(at, lines[rng.randrange(len(lines))])
    return b"\n".join(lines)


def not_utf8(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice([b"\xff\xfe", b"\xc3", b"\x00", b"\xed\xa0\x80"]) + data[at:]


def deeply_nested(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice([2_000, 20_000])  # both past the recursion limit of Python's parsers
    return _replace_number(rng, data, [b"[" * depth + b"]" * depth, b"{" * depth])


BINARY = [truncate, flip_bytes, garbage_block, all_garbage, empty]
TEXT = [*BINARY, huge_number, wrong_type, drop_or_repeat_lines, not_utf8, deeply_nested]


# -- formats --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    name: str
    build: Callable[[Path], None]  # writes one healthy source into an empty folder
    targets: Callable[[Path], list[Path]]  # the files of a copy that may be damaged
    mutations: list[Callable[[random.Random, bytes], bytes]]
    # Whether a damaged file still looks like this source by the format's own test; None when
    # its name or place alone makes it one (it must then always give runs or a problem line).
    still_source: Callable[[Path], bool] | None = None
    sql: tuple[str, ...] = ()  # statements that write wrong types or values out of range
    cases: int = 200


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file() and not p.is_symlink())


def _extract(archive: Path, dest: Path, inner: str, keep: str | None = None) -> None:
    """Extract ``archive``'s ``inner`` folder (or only its ``keep`` subfolder) into ``dest``."""
    tmp = dest.parent / (dest.name + ".unpack")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if not (m.issym() or m.islnk())]
        tar.extractall(tmp, members=members, filter="data")
    src = tmp / inner / keep if keep else tmp / inner
    shutil.copytree(src, dest, dirs_exist_ok=True)
    shutil.rmtree(tmp)


def _small_mlflow_db(folder: Path) -> None:
    """The MLflow fixture database with three of its runs: the real schema, a quick copy."""
    _extract(FIXTURES / "mlflow" / "small-sqlite.tar.gz", folder, "small-sqlite")
    shutil.rmtree(folder / "mlruns")
    db = folder / "mlflow.db"
    con = sqlite3.connect(db)
    keep = [r[0] for r in con.execute("SELECT run_uuid FROM runs ORDER BY run_uuid LIMIT 3")]
    marks = ",".join("?" * len(keep))
    for table in ("metrics", "latest_metrics", "params", "tags"):
        con.execute(f"DELETE FROM {table} WHERE run_uuid NOT IN ({marks})", keep)
    con.execute(f"DELETE FROM runs WHERE run_uuid NOT IN ({marks})", keep)
    con.commit()
    con.execute("VACUUM")
    con.close()


def _copy(src: Path) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        shutil.copytree(src, folder, dirs_exist_ok=True)

    return build


def _single_file(src: Path) -> tuple[Callable[[Path], None], Callable[[Path], list[Path]]]:
    """A format read from one file: copy ``src`` into the folder; that copy is mutated."""

    def build(folder: Path) -> None:
        shutil.copyfile(src, folder / src.name)

    return build, lambda f: [f / src.name]


FORMATS = [
    Format(
        "mlflow-sqlite",
        _small_mlflow_db,
        lambda f: [f / "mlflow.db"],
        BINARY,
        sql=(
            "UPDATE metrics SET value = 'abc' WHERE rowid % 3 = 0",
            "UPDATE metrics SET value = 1e308 * 10",
            "UPDATE metrics SET step = 9223372036854775807",
            "UPDATE metrics SET timestamp = -99999999999999",
            "UPDATE metrics SET key = ''",
            "UPDATE runs SET start_time = 'yesterday', end_time = x'ff00'",
            "UPDATE runs SET status = 42, name = x'ff1b5b33316d'",
            "UPDATE params SET value = x'fffe00'",
            "UPDATE tags SET value = NULL",
            "UPDATE experiments SET name = name || x'1b5d303b7469746c6507'",
            "DROP TABLE metrics",
            "DELETE FROM experiments",
        ),
    ),
    Format(
        "mlflow-files",
        lambda f: _extract(FIXTURES / "mlflow" / "small-filestore.tar.gz", f, "small-filestore"),
        lambda f: [
            p
            for p in _files(f / "mlruns")
            if p.name == "meta.yaml" or p.parent.name in ("metrics", "params", "tags")
        ],
        TEXT,
        cases=100,  # 300 files per copy: the copying dominates
    ),
    Format(
        "trackio",
        _copy(FIXTURES / "trackio" / "trackio_dir"),
        lambda f: [f / "corpus-digits.db"],
        BINARY,  # beside its .lock, even an empty or garbage copy is a project to report
        sql=(
            "UPDATE metrics SET metrics = '[1, 2]' WHERE rowid % 2 = 0",
            'UPDATE metrics SET metrics = \'{"loss": 1e999, "acc": "x"}\'',
            "UPDATE metrics SET step = 9223372036854775807",
            "UPDATE metrics SET step = 'abc', timestamp = 42",
            "UPDATE metrics SET run_name = x'ff00'",
            "UPDATE metrics SET metrics = x'ff00fe'",
            "UPDATE metrics SET timestamp = 'not a time'",
            "UPDATE configs SET config = 'not json'",
            "DELETE FROM metrics",
        ),
    ),
    Format(
        "tensorboard",
        _copy(FIXTURES / "tensorboard" / "runs" / "mlp-resumed"),
        lambda f: _files(f, "*tfevents*"),
        BINARY,
    ),
    Format(
        "lightning",
        _copy(FIXTURES / "lightning-csvlogger" / "lightning_logs" / "version_1"),
        lambda f: [f / "metrics.csv", f / "hparams.yaml"],
        TEXT,
    ),
    Format(
        "keras",
        *_single_file(FIXTURES / "training-logs" / "keras-csvlogger" / "keras-resumed.csv"),
        TEXT,
        # A header that is no longer CSVLogger's may still be a plain metric log with an epoch
        # column; one without any step column is no metric log at all.
        still_source=lambda p: keras_header(p) is not None or looks_like_csv_metrics(p),
    ),
    Format(
        "hf-trainer",
        _copy(FIXTURES / "training-logs" / "hf-trainer" / "output_dir"),
        lambda f: _files(f, "trainer_state.json"),
        TEXT,
    ),
    Format(
        "wandb-offline",
        lambda f: _extract(
            FIXTURES / "wandb-offline" / "wandb-offline-runs.tar.gz",
            f,
            "wandb",
        ),
        lambda f: _files(f, "*.wandb"),
        BINARY,
        cases=120,
    ),
    Format(
        "dvclive",
        lambda f: _extract(FIXTURES / "dvc" / "dvc-project.tar.gz", f, "dvc-project", "dvclive"),
        lambda f: [p for p in _files(f) if p.suffix in (".tsv", ".json", ".yaml")],
        TEXT,
        cases=120,
    ),
    Format(
        "jsonl",
        *_single_file(FIXTURES / "training-logs" / "python-logging" / "run-a.metrics.jsonl"),
        TEXT,
        # The generic reader takes a .jsonl whose first line is an object with a step key.
        still_source=looks_like_jsonl_metrics,
    ),
    Format(
        "mltop",
        lambda f: _write_mltop_run(f),
        lambda f: _files(f, "*.json*"),
        TEXT,
    ),
]


def _write_mltop_run(folder: Path) -> None:
    from conftest import write_run

    run = write_run(folder / "runs", "fuzz", steps=20)
    for path in run.iterdir():
        shutil.move(path, folder / path.name)
    shutil.rmtree(folder / "runs")


def build_cases(fmt: Format, root: Path) -> dict[Path, str]:
    """The damaged copies, each with what was done to which file (for the failure message)."""
    rng = random.Random(f"{SEED}-{fmt.name}")
    base = root / "_base"
    base.mkdir(parents=True)
    fmt.build(base)
    cases: dict[Path, str] = {}
    for i in range(fmt.cases):
        case = root / f"case-{i:03d}"
        # Hard links: a copy costs no bytes; the damaged file is made a file of its own first.
        shutil.copytree(base, case, symlinks=True, copy_function=os.link)
        target = rng.choice(fmt.targets(case))
        data = target.read_bytes()
        target.unlink()
        target.write_bytes(data)
        if fmt.sql and rng.random() < 0.25:
            con = sqlite3.connect(target)
            try:
                # MLflow's schema has CHECK constraints; damage does not ask for permission.
                con.execute("PRAGMA ignore_check_constraints = ON")
                statement = rng.choice(fmt.sql)
                con.execute(statement)
                con.commit()
            finally:
                con.close()
            what = statement
        else:
            mutation = rng.choice(fmt.mutations)
            target.write_bytes(mutation(rng, data))
            what = mutation.__name__
        cases[case] = f"{target.relative_to(case)}: {what}"
    shutil.rmtree(base)
    return cases


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_damaged_copies_never_crash_hang_or_vanish(tmp_path: Path, fmt: Format) -> None:
    root = tmp_path / fmt.name
    cases = build_cases(fmt, root)
    done = subprocess.run(
        [sys.executable, "-c", _INGEST, str(root)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    crashes = [f"{path}: {msg}" for path, msg in out["problems"] if CRASH.search(msg)]
    assert crashes == [], "\n".join(crashes[:20])

    def under(case: Path, path: str) -> bool:
        return path == str(case) or path.startswith(str(case) + "/")

    silent = []
    not_sources = 0
    for case in cases:
        if any(under(case, loc) or under(case, src) for loc, src in out["runs"]):
            continue
        if any(under(case, path) for path, _ in out["problems"]):
            continue
        if fmt.still_source is not None and not all(fmt.still_source(t) for t in fmt.targets(case)):
            not_sources += 1
            continue
        silent.append(f"{case.name} ({cases[case]})")
    print(
        f"{fmt.name}: {len(cases)} damaged copies, {len(out['runs'])} runs, "
        f"{len(out['problems'])} problem lines, {not_sources} no longer this format"
    )
    assert silent == [], f"{len(silent)} damaged copies gave neither runs nor a problem line"
    assert not_sources < len(cases) / 2, "most damage should leave a recognisable source"

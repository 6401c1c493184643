"""Benchmark: importing a TensorBoard logdir, against TensorBoard's own EventAccumulator.

    python bench/import_tensorboard.py [--runs 100] [--tags 10] [--steps 1000]

Writes a logdir of RUNS runs × TAGS scalar tags × STEPS steps (one event per value, the way
``SummaryWriter.add_scalar`` writes them) with mltop's own TFRecord writer, so neither torch nor
TensorFlow is needed. Then times:

* decode: reading every event file into point columns (framing, CRCs, protobuf fields);
* payload CRC: checking every payload checksum, vectorised and byte by byte in Python;
* import: the same plus writing runs and points into an in-memory store;
* rescan: a second import of the unchanged logdir;
* append: 10 more steps appended to every run, then an incremental import;
* EventAccumulator (when the ``tensorboard`` package is importable): ``Reload()`` and
  ``Scalars(tag)`` for every tag of every run, the way TensorBoard loads a logdir.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mltop.core.common import tfrecord
from mltop.core.entities import ImportReport
from mltop.core.importers import tensorboard, tfevents, tfevents_writer
from mltop.core.store import open_memory_store

WALL0 = 1.7e9


def _events(tags: list[str], steps: range, rng: np.random.Generator) -> list[bytes]:
    values = rng.random((len(steps), len(tags)), dtype=np.float32)
    payloads = []
    for i, step in enumerate(steps):
        for j, tag in enumerate(tags):
            wall = WALL0 + step + j * 1e-3
            value = tfevents_writer.encode_simple_value(tag, float(values[i, j]))
            payloads.append(tfevents_writer.encode_event(wall, step, summary_values=[value]))
    return payloads


def write_logdir(root: Path, runs: int, tags: int, steps: int) -> list[Path]:
    names = [f"group_{j % 3}/metric_{j}" for j in range(tags)]
    files = []
    for r in range(runs):
        folder = root / f"run-{r:03d}"
        folder.mkdir(parents=True)
        payloads = [tfevents_writer.encode_event(WALL0, 0, file_version="brain.Event:2")]
        payloads += _events(names, range(1, steps + 1), np.random.default_rng(r))
        path = folder / f"events.out.tfevents.{int(WALL0)}.bench.{r}.0"
        path.write_bytes(tfrecord.frame(payloads))
        files.append(path)
    return files


def append_steps(files: list[Path], tags: int, first: int, count: int) -> None:
    names = [f"group_{j % 3}/metric_{j}" for j in range(tags)]
    for r, path in enumerate(files):
        extra = _events(names, range(first, first + count), np.random.default_rng(10_000 + r))
        with open(path, "ab") as fh:
            fh.write(tfrecord.frame(extra))


def mltop_import(store, root: Path) -> tuple[float, ImportReport]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    refs = []
    for dirpath, dirnames, filenames in os.walk(root):
        found = tensorboard.IMPORTER.detect(Path(dirpath), dirnames, filenames)
        if found:
            refs.extend(found.refs)
    report = ImportReport()
    tensorboard.IMPORTER.import_sources(store, refs, report)
    return time.perf_counter() - start, report


def decode_all(files: list[Path]) -> tuple[float, int]:
    start = time.perf_counter()
    points = 0
    for path in files:
        points += len(tfevents.decode(path.read_bytes()).values)
    return time.perf_counter() - start, points


def crc_speeds(files: list[Path]) -> tuple[float, float, float]:
    """(MB/s vectorised over every payload, MB/s pure-Python byte loop, payload MB)."""
    bufs = [p.read_bytes() for p in files]
    framings = [tfrecord.scan(b) for b in bufs]
    start = time.perf_counter()
    for buf, framing in zip(bufs, framings, strict=True):
        tfrecord.payload_ok(buf, framing.starts, framing.lengths)
    vectorised = time.perf_counter() - start
    total = sum(int(f.lengths.sum()) for f in framings)
    sample = bufs[0][: 1 << 20]
    start = time.perf_counter()
    tfrecord.crc32c(sample)
    bytewise = time.perf_counter() - start
    return total / vectorised / 1e6, len(sample) / bytewise / 1e6, total / 1e6


def event_accumulator(root: Path) -> tuple[float, int] | None:
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError:
        return None
    start = time.perf_counter()
    points = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            points += len(acc.Scalars(tag))
    return time.perf_counter() - start, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mltop-bench-tb-"))
    try:
        start = time.perf_counter()
        files = write_logdir(root, args.runs, args.tags, args.steps)
        size = sum(p.stat().st_size for p in files)
        total = args.runs * args.tags * args.steps
        print(
            f"logdir: {args.runs} runs × {args.tags} tags × {args.steps} steps = {total:,} points,"
            f" {size / 1e6:.1f} MB, written in {time.perf_counter() - start:.1f} s"
        )
        decode_s, decoded = decode_all(files)
        print(f"decode            {decode_s:7.2f} s  {decoded / decode_s / 1e6:5.2f} M points/s")
        fast, slow, payload_mb = crc_speeds(files)
        print(
            f"payload CRC-32C   {fast:7.0f} MB/s vectorised, {slow:.0f} MB/s byte by byte"
            f" ({payload_mb:.0f} MB of payloads: {payload_mb / fast:.2f} s vs"
            f" {payload_mb / slow:.1f} s)"
        )
        store = open_memory_store()
        import_s, report = mltop_import(store, root)
        print(
            f"import (store)    {import_s:7.2f} s  {report.points_added / import_s / 1e6:5.2f}"
            f" M points/s  ({report.runs_added} runs, {report.points_added:,} points)"
        )
        rescan_s, _ = mltop_import(store, root)
        print(f"rescan unchanged  {rescan_s * 1000:7.1f} ms")
        accumulated = event_accumulator(root)
        if accumulated is None:
            print("EventAccumulator  not run: the tensorboard package is not importable")
        else:
            ea_s, ea_points = accumulated
            print(
                f"EventAccumulator  {ea_s:7.2f} s  {ea_points / ea_s / 1e6:5.2f} M points/s"
                f"  ({ea_points:,} points)"
            )
            print(
                f"speed-up over EventAccumulator: decode {ea_s / decode_s:.1f}x,"
                f" import into the store {ea_s / import_s:.1f}x"
            )
        append_steps(files, args.tags, args.steps + 1, 10)
        append_s, appended = mltop_import(store, root)
        print(f"append 10 steps   {append_s * 1000:7.1f} ms  (+{appended.points_added:,} points)")
        assert store.point_count() == total + args.runs * args.tags * 10
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

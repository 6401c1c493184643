"""Decoding TensorBoard event records into columns of scalar points, without protobuf.

Only a handful of protobuf fields matter for scalars, so they are read straight off the wire:

* ``Event``: wall_time (1, double), step (2, int64), file_version (3), summary (5),
  session_log (7) with its status (1; START = 1 marks a restart).
* ``Summary.value`` (1): tag (1), simple_value (2, float), metadata (9) with
  ``plugin_data`` (1: plugin_name 1, content 2), tensor (8).
* ``TensorProto``: dtype (1), tensor_content (4), float_val (5), double_val (6), int_val (7),
  int64_val (10), half_val (13).
* The hparams plugin's ``HParamsPluginData``: session_start_info (3) with its
  ``map<string, google.protobuf.Value> hparams`` (1), and session_end_info (4) with status (1).

Everything else (graphs, images, histograms, text) is skipped by wire type. Points go into
typed arrays, never one Python object per point. The wire itself is read by
:mod:`mltop.core.common.protowire`; :mod:`~mltop.core.importers.tfevents_writer` writes the same
messages, for tests and the benchmark to make event files without TensorFlow.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mltop.core.common import tfrecord
from mltop.core.common.protowire import WireError, iter_spans, read_varint, signed64

SCALARS_PLUGIN = "scalars"
HPARAMS_PLUGIN = "hparams"
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
SESSION_START = 1  # SessionLog.START

# TensorProto dtypes a scalar summary can carry, with the numpy type of tensor_content.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF = 1, 2, 3, 9, 19
CONTENT_TYPES: dict[int, np.dtype[Any]] = {
    DT_FLOAT: np.dtype("<f4"),
    DT_DOUBLE: np.dtype("<f8"),
    DT_INT32: np.dtype("<i4"),
    DT_INT64: np.dtype("<i8"),
    DT_HALF: np.dtype("<f2"),
}
# hparams SessionEndInfo.status -> mltop status word
SESSION_STATUS = {1: "FINISHED", 2: "FAILED", 3: "RUNNING", 4: "KILLED"}

_DOUBLE = struct.Struct("<d").unpack_from
_FLOAT = struct.Struct("<f").unpack_from


def _text(buf: bytes, span: tuple[int, int]) -> str:
    return buf[span[0] : span[1]].decode("utf-8", errors="replace")


def _tensor_scalar(buf: bytes, start: int, end: int) -> float | None:
    """The value of a one-element numeric TensorProto, else None."""
    dtype = 0
    content: tuple[int, int] | None = None
    values: list[float] = []
    for number, wire, value in iter_spans(buf, start, end):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 4 and wire == 2:
            content = value
        elif number in (5, 6, 7, 10, 13):
            values.extend(_repeated_numbers(buf, number, wire, value))
    if content is not None and content[1] > content[0]:
        kind = CONTENT_TYPES.get(dtype)
        if kind is None or content[1] - content[0] != kind.itemsize:
            return None
        return float(np.frombuffer(buf, kind, 1, content[0])[0])
    if len(values) != 1 or dtype not in CONTENT_TYPES:
        return None
    if dtype == DT_HALF:
        return float(np.array([int(values[0])], np.uint16).view(np.float16)[0])
    return float(values[0])


def _repeated_numbers(buf: bytes, number: int, wire: int, value: object) -> list[float]:
    """float_val (5), double_val (6), int_val (7), int64_val (10), half_val (13), packed or not."""
    if wire == 2:
        start, end = cast(tuple[int, int], value)
        if number == 5:
            return list(np.frombuffer(buf, "<f4", (end - start) // 4, start).astype(float))
        if number == 6:
            return list(np.frombuffer(buf, "<f8", (end - start) // 8, start))
        out: list[float] = []
        pos = start
        while pos < end:
            v, pos = read_varint(buf, pos)
            out.append(float(signed64(v)))
        return out
    if number == 5 and wire == 5:
        return [_FLOAT(buf, value)[0]]  # type: ignore[arg-type]
    if number == 6 and wire == 1:
        return [_DOUBLE(buf, value)[0]]  # type: ignore[arg-type]
    if wire == 0:
        v = int(value)  # type: ignore[call-overload]
        return [float(signed64(v))]
    return []


@dataclass
class EventColumns:
    """Scalar points and run facts decoded from a span of one event file.

    Point columns are numpy arrays in file order; ``records`` gives each point's record number
    (0 = the first record read). ``restarts`` holds (record number, step) of each SessionLog
    START: TensorBoard drops every point read before it whose step is at or after that step.
    """

    tag_names: list[str] = field(default_factory=list)
    tag_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    walls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    records: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    restarts: list[tuple[int, int]] = field(default_factory=list)
    plugins: dict[str, str] = field(default_factory=dict)  # tag -> plugin of its first metadata
    hparams: dict[str, object] | None = None
    hparams_record: int = -1
    session_status: str | None = None
    session_record: int = -1
    first_wall: float | None = None
    last_wall: float | None = None
    file_version: str | None = None
    record_count: int = 0
    unreadable: int = 0
    bad_checksums: int = 0
    end: int = 0
    corrupt_at: int | None = None  # offset of a corrupt record header that ended the read


@dataclass
class _Slow:
    """Typed-array columns filled by the general decoder, record by record."""

    tag_ids: array[int] = field(default_factory=lambda: array("i"))
    steps: array[int] = field(default_factory=lambda: array("q"))
    walls: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))
    records: array[int] = field(default_factory=lambda: array("q"))

    def drop_record(self, number: int) -> None:
        """Forget points already appended for a record that turned out unreadable."""
        while len(self.records) and self.records[-1] == number:
            for column in (self.tag_ids, self.steps, self.walls, self.values, self.records):
                column.pop()


def decode(buf: bytes, offset: int = 0, plugins: dict[str, str] | None = None) -> EventColumns:
    """Decode the complete records of an event file's bytes from ``offset`` on.

    ``plugins`` is what earlier reads of the same run learnt about tags (TensorBoard writers put
    a tag's metadata on its first value only); it is updated in place. Records whose payload
    checksum fails are dropped when they carried anything used, and counted.
    """
    framing = tfrecord.scan(buf, offset)
    out = EventColumns(
        end=framing.end, corrupt_at=framing.corrupt_at, record_count=len(framing.starts)
    )
    out.plugins = plugins if plugins is not None else {}
    tag_index: dict[str, int] = {}
    fast = _fast_simple_values(buf, framing, out, tag_index)
    slow = _Slow()
    special: list[int] = []
    special_walls: dict[int, float] = {}
    unreadable: list[int] = []
    starts = framing.starts
    lengths = framing.lengths
    for number in np.flatnonzero(~fast.matched).tolist():
        start = int(starts[number])
        try:
            wall, used = _event(
                buf, start, start + int(lengths[number]), number, out, slow, tag_index
            )
        except (WireError, IndexError, struct.error, ValueError):
            unreadable.append(number)
            slow.drop_record(number)
            out.restarts = [r for r in out.restarts if r[0] != number]
            if out.hparams_record == number:
                out.hparams = None
            if out.session_record == number:
                out.session_status = None
            continue
        if used:
            special.append(number)
            if wall is not None:
                special_walls[number] = wall
    _merge(out, fast, slow)
    bad = _check_payloads(buf, framing, out, special, unreadable)
    # Times come only from checksum-verified records, so a damaged one cannot move them.
    walls = [w for n, w in special_walls.items() if n not in bad and w == w]
    finite = out.walls[~np.isnan(out.walls)]
    if len(finite):
        walls.extend((float(finite.min()), float(finite.max())))
    if walls:
        out.first_wall, out.last_wall = min(walls), max(walls)
    return out


@dataclass
class _Fast:
    matched: np.ndarray
    tag_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    walls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    records: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _fast_simple_values(
    buf: bytes, framing: tfrecord.Framing, out: EventColumns, tag_index: dict[str, int]
) -> _Fast:
    """Decode, all at once, the records of the one shape that makes up almost every file.

    That shape is ``Event{wall_time, step?, summary{value{tag, simple_value}}}`` with one-byte
    lengths and no metadata: what ``add_scalar`` writes after a tag's first value. Every other
    record is left for the general decoder (``matched`` is False for it).
    """
    starts = framing.starts
    lengths = framing.lengths
    n = len(starts)
    matched = np.zeros(n, dtype=bool)
    if n == 0:
        return _Fast(matched)
    # Padding lets every candidate be probed at fixed offsets without bounds checks.
    data = np.frombuffer(buf + bytes(160), dtype=np.uint8)
    last = len(data) - 1

    def at(index: np.ndarray) -> np.ndarray:
        picked: np.ndarray = data[np.minimum(index, last)]
        return picked

    ok = (lengths >= 18) & (lengths < 200) & (at(starts) == 0x09)
    has_step = at(starts + 9) == 0x10
    varint = sliding_window_view(data, 10)[np.minimum(starts + 10, last - 10)]
    more = varint >= 0x80
    ok &= ~more.all(axis=1)
    size = np.argmin(more, axis=1) + 1
    shifts = (7 * np.arange(10)).astype(np.uint64)
    parts = (varint & 0x7F).astype(np.uint64) << shifts
    parts[np.arange(10)[None, :] >= size[:, None]] = 0
    steps = np.where(has_step, np.bitwise_or.reduce(parts, axis=1).view(np.int64), 0)
    q = starts + 9 + np.where(has_step, 1 + size, 0)
    summary_len = at(q + 1).astype(np.int64)
    value_len = at(q + 3).astype(np.int64)
    tag_len = at(q + 5).astype(np.int64)
    ok &= (at(q) == 0x2A) & (at(q + 2) == 0x0A) & (at(q + 4) == 0x0A)
    ok &= (summary_len < 0x80) & (value_len < 0x80) & (tag_len < 0x80)
    ok &= (summary_len == value_len + 2) & (value_len == tag_len + 7)
    ok &= at(q + 6 + tag_len) == 0x15
    ok &= q + 2 + summary_len == starts + lengths
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return _Fast(matched)
    matched[idx] = True
    q = q[idx]
    tag_len = tag_len[idx]
    s = starts[idx]
    walls = sliding_window_view(data, 8)[s + 1].copy().view("<f8").ravel()
    values = (
        sliding_window_view(data, 4)[q + 7 + tag_len].copy().view("<f4").ravel().astype(np.float64)
    )
    tag_ids = np.empty(len(idx), dtype=np.int32)
    for size_ in np.unique(tag_len).tolist():
        members = np.flatnonzero(tag_len == size_)
        if size_ == 0:
            names, inverse = np.array([b""], dtype=object), np.zeros(len(members), np.int64)
            decoded = [""]
        else:
            rows = sliding_window_view(data, size_)[q[members] + 6]
            keys = np.ascontiguousarray(rows).view(f"V{size_}").ravel()
            names, inverse = np.unique(keys, return_inverse=True)
            decoded = [bytes(k).decode("utf-8", errors="replace") for k in names]
        ids = np.empty(len(decoded), dtype=np.int32)
        for j, tag in enumerate(decoded):
            index = tag_index.get(tag)
            if index is None:
                index = tag_index[tag] = len(out.tag_names)
                out.tag_names.append(tag)
            ids[j] = index
        tag_ids[members] = ids[inverse.ravel()]
    return _Fast(matched, tag_ids, steps[idx], walls, values, idx.astype(np.int64))


def _merge(out: EventColumns, fast: _Fast, slow: _Slow) -> None:
    """Both decoders' points, back in file order."""
    if not len(slow.records):
        out.tag_ids, out.steps, out.walls = fast.tag_ids, fast.steps, fast.walls
        out.values, out.records = fast.values, fast.records
        return
    slow_cols: tuple[np.ndarray, ...] = (
        np.frombuffer(slow.tag_ids, np.int32),
        np.frombuffer(slow.steps, np.int64),
        np.frombuffer(slow.walls, np.float64),
        np.frombuffer(slow.values, np.float64),
        np.frombuffer(slow.records, np.int64),
    )
    fast_cols = (fast.tag_ids, fast.steps, fast.walls, fast.values, fast.records)
    merged = [np.concatenate([f, s]) for f, s in zip(fast_cols, slow_cols, strict=True)]
    order = np.argsort(merged[4], kind="stable")
    out.tag_ids, out.steps, out.walls, out.values, out.records = (m[order] for m in merged)


def _event(
    buf: bytes,
    pos: int,
    end: int,
    number: int,
    out: EventColumns,
    slow: _Slow,
    tag_index: dict[str, int],
) -> tuple[float | None, bool]:
    """Decode one Event into ``out``; returns (wall_time, whether it carried non-point facts)."""
    wall: float | None = None
    step = 0
    summary: tuple[int, int] | None = None
    used = False
    for num, wire, value in iter_spans(buf, pos, end):
        if num == 1 and wire == 1:
            wall = _DOUBLE(buf, value)[0]
        elif num == 2 and wire == 0:
            step = signed64(value)
        elif num == 5 and wire == 2:
            summary = value
        elif num == 3 and wire == 2:
            out.file_version = _text(buf, value)
            used = True  # its wall time is when the writer started
        elif num == 7 and wire == 2:
            for n, w, v in iter_spans(buf, value[0], value[1]):
                if n == 1 and w == 0 and v == SESSION_START:
                    out.restarts.append((number, step))
                    used = True
    if summary is not None:
        used |= _summary(buf, summary, wall, step, number, out, slow, tag_index)
    return wall, used


def _summary(
    buf: bytes,
    span: tuple[int, int],
    wall: float | None,
    step: int,
    number: int,
    out: EventColumns,
    slow: _Slow,
    tag_index: dict[str, int],
) -> bool:
    used = False
    plugins = out.plugins
    ts = float("nan") if wall is None else wall
    for num, wire, value in iter_spans(buf, span[0], span[1]):
        if num != 1 or wire != 2:
            continue
        tag = ""
        simple: float | None = None
        tensor: tuple[int, int] | None = None
        plugin: str | None = None
        content: tuple[int, int] | None = None
        for n, w, v in iter_spans(buf, value[0], value[1]):
            if n == 1 and w == 2:
                tag = _text(buf, v)
            elif n == 2 and w == 5:
                simple = _FLOAT(buf, v)[0]
            elif n == 8 and w == 2:
                tensor = v
            elif n == 9 and w == 2:
                plugin, content = _plugin_data(buf, v)
        if plugin is not None and tag not in plugins:
            plugins[tag] = plugin
        if plugin == HPARAMS_PLUGIN and content is not None:
            used |= _hparams(buf, content, tag, number, out)
            continue
        if simple is None and tensor is not None:
            known = plugins.get(tag)
            if known in (None, "", SCALARS_PLUGIN):
                simple = _tensor_scalar(buf, tensor[0], tensor[1])
        if simple is None:
            continue
        index = tag_index.get(tag)
        if index is None:
            index = tag_index[tag] = len(out.tag_names)
            out.tag_names.append(tag)
        slow.tag_ids.append(index)
        slow.steps.append(step)
        slow.walls.append(ts)
        slow.values.append(simple)
        slow.records.append(number)
    return used


def _plugin_data(buf: bytes, span: tuple[int, int]) -> tuple[str | None, tuple[int, int] | None]:
    """(plugin_name, content span) of a SummaryMetadata."""
    for n, w, v in iter_spans(buf, span[0], span[1]):
        if n == 1 and w == 2:
            name = ""
            content = None
            for pn, pw, pv in iter_spans(buf, v[0], v[1]):
                if pn == 1 and pw == 2:
                    name = _text(buf, pv)
                elif pn == 2 and pw == 2:
                    content = pv
            return name, content
    return "", None


def _hparams(buf: bytes, span: tuple[int, int], tag: str, number: int, out: EventColumns) -> bool:
    """Session start (hparams) and end (status) of the hparams plugin."""
    for n, w, v in iter_spans(buf, span[0], span[1]):
        if n == 3 and w == 2 and tag == SESSION_START_TAG:
            params: dict[str, object] = {}
            for sn, sw, sv in iter_spans(buf, v[0], v[1]):
                if sn == 1 and sw == 2:
                    key, value = _map_entry(buf, sv)
                    params[key] = value
            out.hparams = params
            out.hparams_record = number
            return True
        if n == 4 and w == 2 and tag == SESSION_END_TAG:
            for en, ew, ev in iter_spans(buf, v[0], v[1]):
                if en == 1 and ew == 0:
                    out.session_status = SESSION_STATUS.get(ev)
            out.session_record = number
            return True
    return False


def _map_entry(buf: bytes, span: tuple[int, int]) -> tuple[str, object]:
    key = ""
    value: object = None
    for n, w, v in iter_spans(buf, span[0], span[1]):
        if n == 1 and w == 2:
            key = _text(buf, v)
        elif n == 2 and w == 2:
            value = _struct_value(buf, v)
    return key, value


def _struct_value(buf: bytes, span: tuple[int, int]) -> object:
    """A google.protobuf.Value: number, string or bool (lists and structs as their text)."""
    for n, w, v in iter_spans(buf, span[0], span[1]):
        if n == 2 and w == 1:
            return _DOUBLE(buf, v)[0]
        if n == 3 and w == 2:
            return _text(buf, v)
        if n == 4 and w == 0:
            return bool(v)
        if n == 1:
            return None
    return None


def _check_payloads(
    buf: bytes,
    framing: tfrecord.Framing,
    out: EventColumns,
    special: list[int],
    unreadable: list[int],
) -> set[int]:
    """Verify, in one vectorised pass, the checksum of every record that contributed.

    Records that could not be decoded are checked too, to tell damage (bad checksum) from a
    well-formed record of an unexpected shape. Returns the numbers of the damaged records.
    """
    used = np.union1d(out.records, np.array(special + unreadable, dtype=np.int64))
    used = used.astype(np.int64)
    if len(used) == 0:
        return set()
    ok = tfrecord.payload_ok(buf, framing.starts[used], framing.lengths[used])
    bad = used[~ok]
    out.unreadable = len(unreadable) - int(np.isin(unreadable, bad).sum())
    if len(bad) == 0:
        return set()
    out.bad_checksums = len(bad)
    keep = ~np.isin(out.records, bad)
    out.tag_ids, out.steps, out.walls = out.tag_ids[keep], out.steps[keep], out.walls[keep]
    out.values, out.records = out.values[keep], out.records[keep]
    bad_set = set(bad.tolist())
    out.restarts = [r for r in out.restarts if r[0] not in bad_set]
    if out.hparams_record in bad_set:
        out.hparams = None
    if out.session_record in bad_set:
        out.session_status = None
    return bad_set

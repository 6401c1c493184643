"""The one protobuf wire reader (TensorBoard events, W&B records): varints of every width, and
bytes that are not a message refused with a reason instead of read as something else.

Messages are made by Google's protobuf package (installed with MLflow for these tests), so the
reader is checked against the real encoder, not against its own writer alone.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mltop.core.common.protowire import (
    MAX_VARINT_BYTES,
    WireError,
    encode_len_field,
    encode_varint,
    iter_spans,
    read_varint,
    signed64,
)
from mltop.core.importers import wandb_records

wrappers = pytest.importorskip("google.protobuf.wrappers_pb2")
timestamp_pb2 = pytest.importorskip("google.protobuf.timestamp_pb2")

UINT64 = st.integers(0, 2**64 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


@given(value=UINT64)
def test_every_64_bit_value_reads_back_as_protobuf_wrote_it(value: int) -> None:
    data = wrappers.UInt64Value(value=value).SerializeToString()
    assert list(iter_spans(data)) == ([(1, 0, value)] if value else [])  # proto3 omits 0
    if value:
        assert encode_varint(value) == data[1:]  # our writer agrees byte for byte


@given(value=INT64)
def test_negative_int64_values_read_as_twos_complement(value: int) -> None:
    data = wrappers.Int64Value(value=value).SerializeToString()
    fields = [(number, signed64(raw)) for number, _, raw in iter_spans(data)]
    assert fields == ([(1, value)] if value else [])


def test_the_largest_varint_takes_ten_bytes_and_ends_where_it_should() -> None:
    data = encode_varint(2**64 - 1) + b"\x2a"
    assert len(data) == MAX_VARINT_BYTES + 1
    assert read_varint(data, 0) == (2**64 - 1, MAX_VARINT_BYTES)
    assert read_varint(data, MAX_VARINT_BYTES) == (42, MAX_VARINT_BYTES + 1)


@pytest.mark.parametrize("data", [b"\x80", b"\xff\xff", b"\x96\x81\x80"], ids=["1", "2", "3"])
def test_a_truncated_varint_is_refused(data: bytes) -> None:
    with pytest.raises(WireError, match="truncated varint"):
        read_varint(data, 0)


def test_an_over_long_varint_is_refused_rather_than_read_past_64_bits() -> None:
    with pytest.raises(WireError, match="varint too long"):
        read_varint(b"\xff" * MAX_VARINT_BYTES + b"\x01", 0)
    # Ten bytes whose last carries bits past the 64th: cut to 64 bits, as protobuf does.
    assert read_varint(b"\xff" * 9 + b"\x7f", 0) == (2**64 - 1, 10)


def test_fields_come_as_values_spans_and_positions() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1_795_723_160, nanos=5).SerializeToString()
    message = encode_len_field(3, stamp) + b"\x09" + bytes(8) + b"\x15" + bytes(4)
    fields = list(iter_spans(message))
    assert [(n, w) for n, w, _ in fields] == [(3, 2), (1, 1), (2, 5)]
    start, stop = fields[0][2]  # type: ignore[misc]
    assert message[start:stop] == stamp
    assert list(iter_spans(message, start, stop)) == [(1, 0, 1_795_723_160), (2, 0, 5)]
    assert fields[1][2] == stop + 1 and fields[2][2] == stop + 10


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x0a\x05abc", "runs past the end"),
        (b"\x09\x00\x00", "runs past the end"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\x08", "truncated varint"),
    ],
    ids=["string", "fixed64", "group", "varint"],
)
def test_bytes_that_are_not_a_message_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        list(iter_spans(data))


def test_the_wandb_reader_raises_its_own_error_name_for_the_shared_reader() -> None:
    with pytest.raises(wandb_records.ProtoError, match="truncated varint"):
        list(wandb_records.iter_fields(b"\x08\x80"))

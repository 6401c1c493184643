"""TensorBoard event messages written without TensorFlow, for tests and the benchmark.

The writer side of :mod:`~mltop.core.importers.tfevents`: the same fields, encoded the way
``SummaryWriter.add_scalar``, ``tf.summary.scalar`` and ``add_hparams`` write them, so event
files can be made on a machine with neither torch nor TensorFlow. mltop itself never writes
event files; this is apart so the reader module holds only what an import runs.
"""

from __future__ import annotations

import struct

import numpy as np

from mltop.core.common.protowire import encode_len_field, encode_varint
from mltop.core.importers.tfevents import (
    CONTENT_TYPES,
    DT_DOUBLE,
    DT_FLOAT,
    HPARAMS_PLUGIN,
    SCALARS_PLUGIN,
    SESSION_START_TAG,
)


def encode_event(
    wall_time: float,
    step: int = 0,
    *,
    summary_values: list[bytes] | None = None,
    file_version: str | None = None,
    session_log_status: int | None = None,
) -> bytes:
    """An Event message."""
    out = b"\x09" + struct.pack("<d", wall_time)
    if step:
        out += b"\x10" + encode_varint(step)
    if file_version is not None:
        out += encode_len_field(3, file_version.encode())
    if summary_values is not None:
        out += encode_len_field(5, b"".join(encode_len_field(1, v) for v in summary_values))
    if session_log_status is not None:
        out += encode_len_field(7, b"\x08" + encode_varint(session_log_status))
    return out


def encode_metadata(plugin: str, content: bytes = b"") -> bytes:
    plugin_data = encode_len_field(1, plugin.encode()) + (
        encode_len_field(2, content) if content else b""
    )
    return encode_len_field(9, encode_len_field(1, plugin_data))


def encode_simple_value(tag: str, value: float, plugin: str | None = None) -> bytes:
    """A Summary.Value with simple_value (what torch's SummaryWriter.add_scalar writes)."""
    out = encode_len_field(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
    return out + (encode_metadata(plugin) if plugin else b"")


def encode_tensor_value(
    tag: str, value: float, dtype: int = DT_FLOAT, packed_field: bool = False,
    plugin: str | None = SCALARS_PLUGIN,
) -> bytes:  # fmt: skip
    """A Summary.Value with a scalar TensorProto (what tf.summary.scalar writes in TF2)."""
    tensor = b"\x08" + encode_varint(dtype) + encode_len_field(2, b"")
    if packed_field:
        if dtype == DT_DOUBLE:
            tensor += encode_len_field(6, struct.pack("<d", value))
        else:
            tensor += encode_len_field(5, struct.pack("<f", value))
    else:
        tensor += encode_len_field(4, np.array([value], CONTENT_TYPES[dtype]).tobytes())
    out = encode_len_field(1, tag.encode()) + encode_len_field(8, tensor)
    return out + (encode_metadata(plugin) if plugin else b"")


def encode_hparams_start(params: dict[str, object]) -> bytes:
    """The hparams plugin's session_start_info value (as SummaryWriter.add_hparams writes it)."""
    entries = b""
    for key, value in params.items():
        if isinstance(value, bool):
            encoded = b"\x20" + encode_varint(int(value))
        elif isinstance(value, int | float):
            encoded = b"\x11" + struct.pack("<d", float(value))
        else:
            encoded = encode_len_field(3, str(value).encode())
        entries += encode_len_field(
            1, encode_len_field(1, key.encode()) + encode_len_field(2, encoded)
        )
    content = encode_len_field(3, entries)
    tensor = encode_len_field(8, b"\x08\x01")
    return (
        encode_len_field(1, SESSION_START_TAG.encode())
        + tensor
        + encode_metadata(HPARAMS_PLUGIN, content)
    )

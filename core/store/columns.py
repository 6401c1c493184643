"""Arrow columns built from their buffers, for the tables the store registers and inserts.

``pa.array`` would build them, but it first asks whether its input is a pandas object, and
asking imports pandas: about 40 MB resident for good and a third of a second, in imports and
scans that otherwise never need it (see :func:`.connection.string_array`, the text column
without nulls these build on).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.store.connection import string_array


def _validity(values: Sequence[object]) -> pa.Buffer | None:
    """The validity bitmap of ``values`` (None where there is no None)."""
    if None not in values:
        return None
    valid = np.fromiter((v is not None for v in values), np.bool_, len(values))
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def text_array(values: Sequence[str | None]) -> pa.Array:
    """A nullable string column."""
    valid = _validity(values)
    if valid is None:
        return string_array(values)  # type: ignore[arg-type]
    array = string_array([v if v is not None else "" for v in values])
    return pa.Array.from_buffers(pa.string(), len(values), [valid, *array.buffers()[1:]])


def float_array(values: Sequence[float | None]) -> pa.Array:
    """A nullable float64 column; a NaN stays a value, as ``pa.array`` keeps it."""
    n = len(values)
    data = np.fromiter((np.nan if v is None else v for v in values), np.float64, n)
    return pa.Array.from_buffers(pa.float64(), n, [_validity(values), pa.py_buffer(data)])


def int_array(values: Sequence[int | None]) -> pa.Array:
    """A nullable int64 column."""
    n = len(values)
    data = np.fromiter((0 if v is None else v for v in values), np.int64, n)
    return pa.Array.from_buffers(pa.int64(), n, [_validity(values), pa.py_buffer(data)])


def numbers_array(values: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """An int64 or float64 column from a numpy array (indices for ``take``), null where
    ``missing`` is True."""
    integers = values.dtype.kind in "iub"
    data = np.ascontiguousarray(values, np.int64 if integers else np.float64)
    kind = pa.int64() if integers else pa.float64()
    valid = None
    if missing is not None and missing.any():
        valid = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(kind, len(data), [valid, pa.py_buffer(data)])


def float_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An int64 or float64 column as a float64 numpy array, NaN where null."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = np.int64 if pa.types.is_int64(array.type) else np.float64
    values = np.frombuffer(array.buffers()[1], kind, len(array), array.offset * 8)
    values = values.astype(np.float64)
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")
        values[bits[array.offset : array.offset + len(array)] == 0] = np.nan
    return values


def raw_values(array: pa.Array) -> np.ndarray:
    """An int32, int64 or float64 Arrow array's data as numpy, read from its buffer; whatever a
    null slot holds is left there (see :func:`valid_mask`)."""
    kind = _NUMPY_KINDS[array.type]
    if len(array) == 0:
        return np.zeros(0, kind)
    width = np.dtype(kind).itemsize
    return np.frombuffer(array.buffers()[1], kind, len(array), array.offset * width)


_NUMPY_KINDS = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def valid_mask(array: pa.Array) -> np.ndarray:
    """True where ``array`` holds a value, from its validity bitmap (not ``to_numpy`` of
    ``is_valid``, which imports pandas)."""
    n = len(array)
    if not array.null_count:
        return np.ones(n, np.bool_)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")
    return bits[array.offset : array.offset + n].astype(np.bool_)


def positions_in(values: pa.Array | pa.ChunkedArray, value_set: pa.Array) -> np.ndarray:
    """Per element of ``values``, its position in ``value_set``, or -1 (``pc.index_in``).

    Read from the result's buffers: ``fill_null`` with a Python scalar, or numpy's view of an
    Arrow array, would import pandas (see :func:`.connection.string_array`).
    """
    found = pc.index_in(values, value_set=value_set)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks()
    n = len(found)
    if n == 0:
        return np.zeros(0, np.int64)
    validity, data = found.buffers()
    out = np.frombuffer(data, np.int32, n, found.offset * 4).astype(np.int64)
    if found.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
        out[bits[found.offset : found.offset + n] == 0] = -1
    return out

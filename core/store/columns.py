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

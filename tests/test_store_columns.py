"""Arrow columns read into numpy from their buffers: the values and nulls pyarrow itself gives,
for sliced arrays too, and without importing pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa

from mltop.core.store.columns import numbers_array, raw_values, valid_mask


def test_raw_values_and_valid_mask_read_sliced_arrays_as_pyarrow_does() -> None:
    for kind in (pa.int32(), pa.int64(), pa.float64()):
        whole = pa.array([5, None, -3, 7, None, 11, 2, 0, 9, 1], kind)
        for array in (whole, whole.slice(3), whole.slice(1, 6), whole.slice(10)):
            mask = valid_mask(array)
            assert mask.tolist() == array.is_valid().to_pylist()
            values = raw_values(array)
            assert values.dtype.itemsize == kind.bit_width // 8
            expected = array.to_pylist()
            assert [v if ok else None for v, ok in zip(values.tolist(), mask, strict=True)] == (
                expected
            )


def test_numbers_array_puts_nulls_where_told() -> None:
    array = numbers_array(np.array([1.5, 2.5, 3.5]), np.array([False, True, False]))
    assert array.to_pylist() == [1.5, None, 3.5]
    assert numbers_array(np.array([1, 2])).to_pylist() == [1, 2]
    assert numbers_array(np.array([4, 5]), np.array([False, False])).null_count == 0


def test_reading_columns_and_summarising_points_never_import_pandas() -> None:
    """In a fresh interpreter without the CLI's guard (see mltop.core.common.no_pandas)."""
    code = """
import sys
import pyarrow as pa
from mltop.core.store.columns import raw_values, valid_mask
from mltop.core.store.summaries import summarise_points
from mltop.core.store.connection import string_array
from mltop.core.store.columns import numbers_array, float_array
import numpy as np
points = pa.table({
    "run_id": string_array(["a", "a", "b"]), "key": string_array(["k", "k", "k"]),
    "step": numbers_array(np.array([0, 1, 0])), "ts": float_array([1.0, None, 2.0]),
    "value": numbers_array(np.array([0.5, 0.25, 1.0])),
})
assert summarise_points(points).num_rows == 2
raw_values(points["step"].chunk(0)); valid_mask(points["ts"].chunk(0))
print("pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

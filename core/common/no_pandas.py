"""Keep pandas out of mltop's processes: pyarrow's "is this a pandas object?" answered without it.

Many pyarrow calls (``pa.array`` of a list, ``Schema.empty_table``, a Python scalar in a compute
call) first ask whether their input is a pandas object, and the first such question imports
pandas: 36 MB resident for as long as the process lives (the app for hours), the first time a
scan imports runs (``POINTS_SCHEMA.empty_table()`` and ``pa.array`` in the importers and the
store). Nothing in mltop hands pyarrow a pandas object, so its command line and its app have
pyarrow ask the question once with pandas unimportable: pyarrow remembers the answer for such
checks, and still imports pandas when a call needs it for real (``Table.from_pandas``,
``to_pandas``).
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

import pyarrow as pa


class _Unimportable:
    """A finder that refuses pandas (an ``ImportError``, as when it is not installed)."""

    def find_spec(
        self, name: str, path: object = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas":
            raise ImportError("pandas is not needed to tell pandas objects apart")
        return None


def answer_without_pandas() -> None:
    """Make pyarrow settle, without importing pandas, that its inputs are not pandas objects.

    Does nothing when pandas is imported already: pyarrow then asks it.
    """
    if "pandas" in sys.modules:
        return
    finder = _Unimportable()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])  # the first question pyarrow asks: it looks for pandas, once
    finally:
        sys.meta_path.remove(finder)

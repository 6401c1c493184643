"""Which log lines are marked as errors, warnings and tracebacks."""

from __future__ import annotations

import pytest

from mltop.core.logs.loghighlight import Level, classify

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "train.py", line 228, in fit_mlp',
    "    model.partial_fit(data.X_train, data.y_train)",
    "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "           ~~~~~~~~~~~~^^^^^^^^^^^^^^^^^^^^^^^^^",
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
]


def test_every_line_of_a_python_traceback_is_marked() -> None:
    previous = None
    for line in TRACEBACK:
        assert classify(line, previous) is Level.TRACEBACK, line
        previous = line
    assert classify("ValueError: Solver produced non-finite weights") is Level.ERROR
    assert classify("torch.OutOfMemoryError: CUDA out of memory") is Level.ERROR


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("2026-11-27 06:00:00,123 ERROR trainer: NCCL timeout", Level.ERROR),
        ("E1127 06:00:29.123456 12345 cuda.cc:42] device lost", Level.ERROR),
        ("W1127 06:00:29.123456 12345 cuda.cc:42] slow", Level.WARNING),
        ("WARNING: disk almost full", Level.WARNING),
        ("UserWarning: the default changed", Level.WARNING),
        ("epoch 3 loss=0.12 error_rate=0.05", Level.NONE),
        ("no errors found, 0 failures", Level.NONE),
        ("    indented output that follows nothing", Level.NONE),
        ("x ^^^ not a caret line", Level.NONE),
    ],
)
def test_levels_come_from_the_lines_words(line: str, level: Level) -> None:
    assert classify(line) is level

"""``mltop runs`` in a terminal keeps the columns that fit whole and says what it left out;
piped, it prints every column; ``--columns`` chooses them. ``mltop diff`` puts the runs that do
not fit beside each other in a further table. A number is never cut.

The terminal is a real pseudo-terminal of a given width, with ``mltop runs`` running in it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from mltop.core.tracking import start_run

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
METRICS = ("val_loss", "val_acc", "train_loss", "lr", "epoch_time", "grad_norm")
PARAMS = ("lr", "batch_size", "optimizer", "weight_decay", "model", "seed")


def project(root: Path) -> None:
    for i in range(4):
        params = {"lr": 0.001 * (i + 1), "batch_size": 64, "optimizer": "adamw",
                  "weight_decay": 1e-4, "model": "resnet50", "seed": i}  # fmt: skip
        with start_run(root / "runs", name=f"resnet50-sweep-{i}", params=params) as run:
            values = {"val_loss": 0.114 + i / 1000, "val_acc": 0.96 - i / 100,
                      "train_loss": 0.1234567, "lr": 1.2345e-5, "epoch_time": 123.4,
                      "grad_norm": 3.3}  # fmt: skip
            for step in range(3):
                run.log(step=step, **values)


def in_terminal(columns: int, *args: str) -> str:
    """What ``mltop`` writes to a terminal ``columns`` wide (stdout and stderr together)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltop.core.cli", *args],
        stdin=child, stdout=child, stderr=child, env=env,
    )  # fmt: skip
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(timeout=120) == 0
    return ANSI.sub("", out.decode())


def table_lines(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("name"))
    end = next(i for i, line in enumerate(lines) if re.fullmatch(r"\d+ runs", line.strip()))
    return lines[start:end]


@pytest.mark.parametrize("columns", [80, 120])
def test_a_terminal_gets_the_columns_that_fit_whole_and_a_note_on_the_rest(
    tmp_path: Path, columns: int
) -> None:
    project(tmp_path)
    output = in_terminal(columns, "runs", str(tmp_path))
    lines = table_lines(output)
    assert len(lines) == 5 and all(len(line) <= columns for line in lines)
    assert "…" not in "\n".join(lines)
    headers = lines[0].split()
    assert headers[:2] == ["name", "status"]
    assert {"val_loss", "val_acc"} <= set(headers)
    values = {line.split()[0]: line.split() for line in lines[1:]}
    row = dict(zip(headers, values["resnet50-sweep-0"], strict=True))
    assert row["val_loss"] == "0.114" and row["val_acc"] == "0.96"
    note = " ".join(output[output.index("4 runs") :].split())
    assert "columns left out to fit" in note and "--columns" in note


def test_piped_output_keeps_every_column_whole(tmp_path: Path) -> None:
    project(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "runs", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    headers = table_lines(result.stdout)[0].split()
    assert set(headers) >= {f"params.{p}" for p in PARAMS} | set(METRICS)
    assert "…" not in result.stdout and "left out" not in result.stderr


def test_columns_chooses_what_is_printed(tmp_path: Path) -> None:
    project(tmp_path)
    output = in_terminal(80, "runs", str(tmp_path), "--columns", "name,val_loss,params.lr,lr")
    lines = table_lines(output)
    assert lines[0].split() == ["name", "val_loss", "params.lr", "lr"]
    assert lines[-1].split() == ["resnet50-sweep-0", "0.114", "0.001", "1.234e-05"]
    assert "left out" not in output


def test_an_unknown_column_is_a_usage_error(tmp_path: Path) -> None:
    project(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "runs", str(tmp_path), "--columns", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown column 'nope'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("columns", [80, 120])
def test_diff_in_a_terminal_puts_runs_that_do_not_fit_in_a_further_table(
    tmp_path: Path, columns: int
) -> None:
    project(tmp_path)
    names = [f"resnet50-sweep-{i}" for i in range(4)]
    output = in_terminal(columns, "diff", *names, "--root", str(tmp_path))
    lines = output[output.index("baseline:") :].splitlines()
    assert all(len(line) <= columns for line in lines)
    assert "…" not in "\n".join(lines)
    shown = " ".join(lines)
    assert all(name in shown for name in names)
    for value in ("0.114", "0.115", "0.116", "0.117", "0.96", "0.93", "1.234e-05", "123.4"):
        assert value in shown


def test_a_terminal_narrower_than_a_name_still_shows_the_names_shortened(tmp_path: Path) -> None:
    project(tmp_path)
    output = in_terminal(10, "runs", str(tmp_path))
    lines = table_lines(output)
    assert lines[0].strip() == "name" and len(lines) == 5
    assert all(len(line) <= 10 and line.endswith("…") for line in lines[1:])
    note = " ".join(output[output.index("4 runs") :].split())
    assert "left out to fit 10 columns (status," in note

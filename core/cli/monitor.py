"""``mltop monitor [LOG]``: drift, data quality, prediction quality and fairness of a log.

Flags win over ``.mltop/monitor.yaml`` (read from LOG when it is a folder holding one, from the
current folder when LOG is left out, or from ``--config``), which wins over names inferred
from the log's columns. The computing is mltop.core.monitor's; this module parses, prints and
gates. Exit: 0 computed (every gate held), 1 a gate was crossed, 2 a usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from rich.text import Text

from mltop.core.cli.output import (
    EXIT_OK,
    EXIT_PROBLEMS,
    Parser,
    UsageError,
    stderr_console,
    stdout_console,
)
from mltop.core.common.sanitize import inert, inert_json

_DESCRIPTION = """\
Compare a prediction log with a reference, over the whole log and per time window: drift per
feature (the test Evidently's DataDriftPreset picks, with its thresholds), data quality (missing
values, values outside the reference's range, unseen categories, schema changes), prediction
quality where labels exist (per model version too) and fairness per sensitive attribute.

LOG is a Parquet, CSV or JSONL file, a folder of them, or a glob (quote it); the files are read
in place. Without LOG, ./.mltop/monitor.yaml says what to monitor; a folder LOG holding
.mltop/monitor.yaml is read the same way."""


def _names(values: list[str] | None) -> tuple[str, ...]:
    """Repeatable, comma-separated column names (a name with a comma: use the config file)."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(out)


def _parser() -> Parser:
    from mltop.core.monitor.gates import GATE_HELP

    parser = Parser(
        prog="mltop monitor",
        description=_DESCRIPTION,
        epilog=f"--fail-on THRESHOLDS:\n{GATE_HELP}\n\nexit status: 0 computed (every threshold "
        "held), 1 a threshold was crossed, 2 a usage error or a log that cannot be read.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("log", nargs="?", help="prediction log: a file, a folder or a glob")
    parser.add_argument("--ref", help="reference file (or folder/glob) of the same shape")
    parser.add_argument(
        "--ref-window",
        metavar="A..B",
        help="the log's rows from A to B (excluded) as reference, against those after B",
    )
    parser.add_argument("--window", choices=("hour", "day", "week"), help="default: from the span")
    parser.add_argument("--format", choices=("table", "json", "md"), default="table")
    parser.add_argument("--fail-on", metavar="THRESHOLDS", help="CI gates (see below)")
    parser.add_argument("--config", help="a monitor.yaml (default: .mltop/monitor.yaml)")
    for role in ("timestamp", "prediction", "score", "label", "version"):
        parser.add_argument(f"--{role}", metavar="COLUMN", help=f"the {role} column")
    parser.add_argument(
        "--sensitive", action="append", metavar="COLUMN", help="sensitive attribute (repeatable)"
    )
    parser.add_argument(
        "--features", action="append", metavar="COLUMNS", help="features (default: the rest)"
    )
    parser.add_argument(
        "--categorical", action="append", metavar="COLUMNS", help="treat these as categories"
    )
    parser.add_argument(
        "--class-score",
        action="append",
        metavar="CLASS=COLUMN",
        help="multi-class: the score column of a class, for ROC AUC (repeatable)",
    )
    parser.add_argument("--task", choices=("classification", "regression"))
    parser.add_argument(
        "--drift", action="append", choices=("psi", "ks"), help="also run this test (repeatable)"
    )
    return parser


def cmd_monitor(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    from mltop.core.monitor import MonitorConfig, MonitorError, build_report, load_config
    from mltop.core.monitor.config import CONFIG_PATH, find_config
    from mltop.core.monitor.gates import GateError, check_gates, parse_gates
    from mltop.core.monitor.render import render_markdown, render_table, report_json

    args = _parser().parse_args(argv)
    err = stderr_console()
    config_path: Path | None = Path(args.config).expanduser() if args.config else None
    if config_path is None:
        folder = Path(args.log).expanduser() if args.log else Path(".")
        if folder.is_dir():
            config_path = find_config(folder)
    if args.log is None and config_path is None:
        raise UsageError(
            f"mltop monitor: give a LOG, or describe the monitor in ./{CONFIG_PATH.as_posix()}"
        )
    try:
        base = load_config(config_path) if config_path else MonitorConfig(log=str(args.log))
        if config_path and args.log and not Path(args.log).is_dir():
            base = base.merged(log=args.log)
        if args.ref:  # a flag's reference replaces the config's, whichever kind it was
            base = replace(base, reference_window=None)
        if args.ref_window:
            base = replace(base, reference=None)
        config = base.merged(
            reference=args.ref,
            reference_window=args.ref_window,
            window=args.window,
            timestamp=args.timestamp,
            prediction=args.prediction,
            score=args.score,
            label=args.label,
            version=args.version,
            sensitive=_names(args.sensitive),
            class_scores=_class_scores(args.class_score),
            features=_names(args.features) or None,
            categorical=_names(args.categorical),
            task=args.task,
            extra_tests=tuple(args.drift or ()),
            fail_on=args.fail_on,
        )
        gates = parse_gates(config.fail_on) if config.fail_on else []
        report = build_report(config)
    except GateError as exc:
        raise UsageError(f"mltop monitor: --fail-on: {exc}") from exc
    except MonitorError as exc:
        raise UsageError(f"mltop monitor: {exc}") from exc

    stream = out_file or sys.stdout
    if args.format == "json":
        stream.write(inert_json(report_json(report), indent=2, allow_nan=False) + "\n")
    elif args.format == "md":
        stream.write(render_markdown(report))
    else:
        console = stdout_console(out_file)
        console.print(render_table(report, console.width if console.is_terminal else None))
    for problem in report.problems:
        err.print(Text(f"mltop monitor: {inert(problem)}", style="yellow"))
    failures = check_gates(report, gates)
    for failure in failures:
        err.print(Text(f"mltop monitor: gate crossed: {inert(failure)}", style="red"))
    return EXIT_PROBLEMS if failures else EXIT_OK


def _class_scores(given: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``--class-score CLASS=COLUMN`` flags as (class, column) pairs."""
    pairs = []
    for text in given or ():
        name, sep, column = text.partition("=")
        if not sep or not name or not column:
            raise UsageError(f"mltop monitor: --class-score wants CLASS=COLUMN, not {text!r}")
        pairs.append((name, column))
    return tuple(pairs)

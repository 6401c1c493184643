"""The ``mltop`` command line: argument dispatch, one module per command.

``mltop [PATH]`` opens the TUI (launch.py); the subcommands (ingest.py, runs.py, diff.py,
tail.py, pipelines.py, demo.py, monitor.py) print tables or JSON for shells, pipes and CI.
output.py holds what they share (exit codes, UsageError, consoles, problem lines, opening the
store), sources.py the import each runs first (files under PATH, MLflow servers), usage.py the
top-level help.
Exit codes: 0 ok, 1 problems found (unreadable files, a failed gate), 2 usage errors.

May import: mltop.core's domain modules (store, discovery, diff, query, logtail, pipelines, ...)
and Rich. Textual (mltop.tui) only inside the functions that open the TUI, so scripted use never
loads it; mltop.core.pipelines only when ``mltop pipelines`` runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from mltop.core import __version__
from mltop.core.cli.demo import cmd_demo
from mltop.core.cli.diff import cmd_diff
from mltop.core.cli.host import cmd_host
from mltop.core.cli.ingest import cmd_ingest
from mltop.core.cli.launch import cmd_open
from mltop.core.cli.models import cmd_models
from mltop.core.cli.monitor import cmd_monitor
from mltop.core.cli.output import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError
from mltop.core.cli.pipelines import cmd_pipelines
from mltop.core.cli.runs import cmd_runs
from mltop.core.cli.tail import cmd_tail
from mltop.core.cli.usage import USAGE
from mltop.core.common.malloc import limit_malloc_arenas
from mltop.core.common.no_pandas import answer_without_pandas
from mltop.core.common.sanitize import inert
from mltop.core.store import StoreError

__all__ = ["COMMANDS", "USAGE", "main"]

COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "ingest": cmd_ingest,
    "runs": cmd_runs,
    "diff": cmd_diff,
    "models": cmd_models,
    "pipelines": cmd_pipelines,
    "tail": cmd_tail,
    "demo": cmd_demo,
    "monitor": cmd_monitor,
    "host": cmd_host,
}


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()  # before the TUI's threads start (see mltop.core.common.malloc)
    answer_without_pandas()  # 36 MB no command uses (see mltop.core.common.no_pandas)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return EXIT_OK
        if args and args[0] in ("-V", "--version"):
            sys.stdout.write(f"mltop {__version__}\n")
            return EXIT_OK
        if args and args[0] in COMMANDS:
            if args[0] == "demo" and os.path.isdir("demo"):
                # A folder named demo beside `mltop demo`: the command wins (it trains in a
                # folder of its own), so say how to open the folder before training starts.
                sys.stderr.write(
                    "mltop: running the `demo` command; to open the folder demo/, "
                    "run `mltop ./demo`\n"
                )
            return COMMANDS[args[0]](args[1:])
        return cmd_open(args)
    except UsageError as exc:
        sys.stderr.write(inert(str(exc), keep_newlines=True) + "\n")
        return EXIT_USAGE
    except StoreError as exc:
        sys.stderr.write(f"mltop: {inert(str(exc))}\n")
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mltop runs | head`: the reader left; say nothing, as other Unix tools do.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_OK

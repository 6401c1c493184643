"""``mltop demo [--live]``: train the bundled sample project in a folder and open mltop on it.

With ``--live`` a slow run trains in the background and is followed as it writes; the trainer
this command starts always ends with it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from mltop.core.cli.launch import cmd_open
from mltop.core.cli.output import EXIT_OK, EXIT_PROBLEMS, Parser, stderr_console
from mltop.core.cli.runs import cmd_runs
from mltop.core.common.sanitize import inert


def cmd_demo(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="mltop demo",
        description="Train the bundled sample project in a temporary folder and open mltop on it.",
    )
    parser.add_argument("--dir", help="folder to create the demo in (default: a temporary one)")
    parser.add_argument("--no-tui", action="store_true", help="only train and print the runs table")
    parser.add_argument(
        "--live",
        action="store_true",
        help="then train one slow run in the background and follow its log as it trains",
    )
    args = parser.parse_args(argv)
    from mltop.core.demo import prepare_demo

    err = stderr_console()
    with _training_status(err) as progress:
        folder = prepare_demo(
            Path(args.dir) if args.dir else None,
            log=lambda m: err.print(Text(m)),
            progress=progress,
        )
    if args.live:
        return _demo_live(folder, args.no_tui, err)
    if args.no_tui:
        return cmd_runs([str(folder)])
    code = cmd_open([str(folder)])
    err.print(Text(f"mltop demo: the demo folder is {folder} (`mltop {folder}` opens it again)"))
    return code


@contextlib.contextmanager
def _training_status(err: Console) -> Iterator[Callable[[str], None] | None]:
    """A status line that follows the sample's training on a terminal (nothing in a pipe).

    The sweep takes several seconds; one still line looked stuck. Each "training X" line the
    trainer prints replaces the status, with the count of runs so far.
    """
    if not err.is_terminal:
        yield None
        return
    started = 0
    with err.status(Text("mltop demo: starting the trainer…")) as status:

        def progress(line: str) -> None:
            nonlocal started
            if line.startswith("training "):
                started += 1
                what = line.removeprefix("training ").split(":", 1)[0]
                status.update(Text(f"mltop demo: training run {started}: {inert(what)}"))

        yield progress


def _demo_live(folder: Path, no_tui: bool, err: Console) -> int:
    """Start the live run and follow it: in the TUI, or (``--no-tui``) printed until it ends."""
    import threading

    from mltop.core.demo import LIVE_CONSOLE, start_live, stop_live, wait_for_live_run
    from mltop.core.tracking import OUTPUT_FILE

    proc = start_live(folder, log=lambda m: err.print(Text(m)))

    def ended_by(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # However mltop ends (q, Ctrl-C, an error, a closed SSH session, kill), the trainer it
    # started ends with it: the signals that would end mltop without cleaning up unwind instead.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ended_by)
    try:
        run_folder = wait_for_live_run(folder, proc)
        if run_folder is None:
            err.print(Text(f"mltop demo: the live run did not start (see {folder / LIVE_CONSOLE})"))
            return EXIT_PROBLEMS
        log = run_folder / OUTPUT_FILE
        if not no_tui:
            from mltop.tui.app import run_app_following

            return run_app_following(folder, log, title=f"{run_folder.name} (live demo)")
        from mltop.core.logs.logtail import TailOptions, tail_files, use_colour

        done = threading.Event()
        threading.Thread(target=lambda: (proc.wait(), done.set()), daemon=True).start()
        options = TailOptions(follow=True, colour=use_colour(sys.stdout), poll=0.5)
        with contextlib.suppress(KeyboardInterrupt):
            tail_files([log], sys.stdout, sys.stderr, options, stop=done)
        return EXIT_OK
    finally:
        if stop_live(proc):
            err.print(Text(f"mltop demo: stopped the live run (pid {proc.pid})"))
        err.print(
            Text(f"mltop demo: the demo folder is {folder} (`mltop {folder}` opens it again)")
        )

"""``mltop [PATH]``: open the TUI on PATH (or a text log straight in the Logs screen).

The TUI is imported only here and in ``mltop demo``, so scripted commands never load Textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mltop.core.cli.output import EXIT_PROBLEMS, Parser, resolve_root, stderr_console
from mltop.core.cli.sources import mlflow_urls
from mltop.core.cli.usage import USAGE


def cmd_open(argv: Sequence[str]) -> int:
    parser = Parser(prog="mltop", usage=USAGE, add_help=False)
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--store")
    parser.add_argument("--mlflow", action="append")
    parser.add_argument("--github", metavar="OWNER/REPO")
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    urls = mlflow_urls(args.mlflow)
    try:
        from mltop.tui.app import run_app
    except ImportError:
        stderr_console().print(
            "mltop: the TUI is not available in this installation; "
            "use `mltop runs` or `mltop ingest`"
        )
        return EXIT_PROBLEMS
    store_path = Path(args.store) if args.store else None
    if root.is_file() and root.suffix.lower() in (".log", ".out", ".err", ".txt") and not urls:
        # a text log: straight to the Logs screen
        from mltop.tui.screens.logs.standalone import run_logs_app

        return run_logs_app([root])
    if not urls:
        return run_app(root, store_path=store_path, github=args.github)
    # One server is passed as its URL, several as a tuple of URLs.
    server: str | tuple[str, ...] = urls[0] if len(urls) == 1 else tuple(urls)
    return run_app(root, store_path=store_path, mlflow_url=server, github=args.github)

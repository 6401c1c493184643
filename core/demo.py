"""``mltop demo``: train the bundled sample project in a folder of its own.

The sample project ships inside the package (``mltop.sample_project``), so the demo works from a
wheel as well as from a clone. Training runs in a subprocess with this interpreter, exactly as a
user would run ``python train.py``, and logs with mltop's own writer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from mltop.core.tracking import META_FILE

_IGNORED = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    "runs",
    "data",
    "models",
    "reports",
    "releases",
    "registry.json",
    "metrics.json",
    "monitor.json",
    "__init__.py",
)
MONITOR_CONFIG = "monitor.yaml"


def IGNORE(folder: str, names: list[str]) -> set[str]:
    """What the demo copy leaves out: outputs, caches and a store, but not the monitor config.

    ``.mltop/`` may hold a store from someone opening mltop on the sample project; its
    ``monitor.yaml`` is the project's own file, which makes the monitor show up.
    """
    ignored = set(_IGNORED(folder, names))
    if os.path.basename(folder) == ".mltop":
        ignored |= {name for name in names if name != MONITOR_CONFIG}
    return ignored


def sample_project_dir() -> Path:
    return Path(str(resources.files("mltop.sample_project")))


def prepare_demo(
    folder: Path | None = None,
    log: Callable[[str], None] = print,
    extra_args: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Copy the sample project into ``folder`` (default: a new temporary one), train it and
    simulate its served model's predictions (``serve.py``).

    Training takes several seconds; ``progress`` (when given) is called with each line the
    trainer prints as it prints it ("training digits/sgd-lr0.1: ..."), so the caller can show
    what is happening instead of one still line.
    """
    target = folder or Path(tempfile.mkdtemp(prefix="mltop-demo-")) / "sample_project"
    if not (target / "train.py").exists():
        shutil.copytree(sample_project_dir(), target, ignore=IGNORE, dirs_exist_ok=True)
    log(f"mltop demo: training the sample project in {target} ...")
    # The served model's thirty days of predictions (what the monitor reads) are simulated on
    # the side while the sweep trains: a couple of seconds the demo then does not wait for.
    serving = _script(target, "serve.py")
    try:
        # In a repository, the sweep's best models are then released as GTO versions (git tags)
        # by register.py, in the trainer's process (scikit-learn is imported once).
        register = ["--register"] if _make_repository(target, log) else []
        _follow(target, ["train.py", *(extra_args or []), *register], log, progress)
        output, _ = serving.communicate()
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait()
    if serving.returncode != 0:
        tail = output.strip().splitlines()[-1:] or ["no output"]
        log(f"mltop demo: serve.py exited with {serving.returncode}: {tail[0]}")
    return target


def _script(target: Path, name: str, *args: str) -> subprocess.Popen[str]:
    """A sample project script started in ``target``, its output and errors as one text stream
    (unbuffered, so progress lines arrive as they are printed; undecodable bytes replaced)."""
    return subprocess.Popen(
        [sys.executable, "-u", name, *args],
        cwd=target,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )


def _follow(
    target: Path,
    command: list[str],
    log: Callable[[str], None],
    progress: Callable[[str], None] | None,
) -> None:
    """Run a sample project script to its end, passing each line it prints to ``progress``."""
    lines: list[str] = []
    with _script(target, *command) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if line.strip():
                lines = [*lines[-19:], line]
                if progress is not None:
                    progress(line)
    if proc.returncode != 0:
        tail = lines[-1:] or ["no output"]
        log(f"mltop demo: {command[0]} exited with {proc.returncode}: {tail[0]}")


def _git(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=target,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=30,
        check=False,
    )


def _make_repository(target: Path, log: Callable[[str], None]) -> bool:
    """Make the demo folder a git repository with the project committed, as a team's project is:
    runs then record the commit they trained at and ``register.py`` tags its releases (GTO).

    Without git the demo still trains; it only has no model registry, and says why.
    """
    if shutil.which("git") is None:
        log("mltop demo: git is not installed, so the sample's models are not registered")
        return False
    if (target / ".git").exists():
        return True
    for args in (
        ("init", "-q", "-b", "main"),
        # The demo repository's own committer: commits and tags need no global git identity.
        ("config", "user.name", "mltop demo"),
        ("config", "user.email", "demo@mltop.invalid"),
        ("add", "-A"),
        ("commit", "-q", "-m", "sample project"),
    ):
        done = _git(target, *args)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            log(f"mltop demo: git {args[0]} failed ({tail}), so the models are not registered")
            return False
    return True


#: Where the background live run's own stdout/stderr go (its console is also in its output.log).
LIVE_CONSOLE = "live-train.out"


def start_live(folder: Path, log: Callable[[str], None] = print) -> subprocess.Popen[bytes]:
    """Start ``train.py --live`` (one slow run, about a minute) in the background.

    The process gets a session of its own and no terminal: the TUI that follows it owns the
    terminal (a Ctrl-C there must not reach the trainer first). :func:`stop_live` ends it when
    mltop exits. Its console lands in the run folder's ``output.log`` (the run writer copies it
    there) and, for anything printed before the run starts, in :data:`LIVE_CONSOLE` beside
    ``train.py``.
    """
    with open(folder / LIVE_CONSOLE, "ab") as console:
        proc = subprocess.Popen(
            [sys.executable, "-u", "train.py", "--live"],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    log(f"mltop demo: a live run is training in the background (pid {proc.pid})")
    return proc


def stop_live(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
    """Stop the live trainer; True if it was still running.

    An interrupt first, as Ctrl-C in its own terminal would be: the run writer then marks the
    run KILLED and closes its files. A trainer that ignores it for ``timeout`` seconds is
    killed (its run is then left RUNNING and shows as stale).
    """
    if proc.poll() is not None:
        return False
    try:
        # Its own session: the process group has the trainer's pid, and holds only its processes.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()
    return True


def wait_for_live_run(
    folder: Path, proc: subprocess.Popen[bytes], timeout: float = 30.0
) -> Path | None:
    """The run folder the live process created (found by its pid), once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for meta in (folder / "runs").glob(f"*/*/{META_FILE}"):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("pid") == proc.pid:
                return meta.parent
        if proc.poll() is not None:
            return None
        time.sleep(0.1)
    return None

"""Names from outside reach no terminal raw, on every output of the real ``mltop`` command.

One project holds hostile text everywhere a name can come from: run, experiment, param and
metric names written by mltop's own writer, an MLflow store written by MLflow's client, a CSV
written by Python's csv module, a pipeline written by PyYAML, and folder names holding a newline
and escape sequences. Every printable command runs as a subprocess over it, and its stdout and
stderr must hold no raw control, C1 or bidi character while the values stay readable.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml
from helpers.http import QuietHandler, serving

from mltop.core.tracking import METRICS_FILE, start_run

# A window title, a clipboard write, a screen clear, an 8-bit CSI, a right-to-left override, NUL,
# a newline and a carriage return, and Rich markup.
HOSTILE = (
    "t\x1b]0;TITLE\x07 c\x1b]52;c;cm0gLXJm\x07 \x1b[2Jclr \x9b31mcsi \u202eRLO \x00nul\nnl\rcr "
    "[red]x[/]"
)
# The same without what a file name cannot hold (NUL, "/" as in "[/]"), and a short one for keys.
FILE_NAME = "f\x1b]0;TITLE\x07 \x1b]52;c;QQ==\x07 \x1b[2J\x9b31m\u202eRLO\nforged: line\rcr [bold]x"
KEY = "k\x1b[2J\x9b\u202e[red]"

# Raw characters a terminal acts on (tab and newline are layout).
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def assert_inert(output: str) -> None:
    found = RAW.search(output)
    assert found is None, (
        f"raw {found.group()!r} at {found.start()}: {output[: found.start() + 40]!r}"
    )


def _mltop(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=180,
    )


def _write_mlflow(db: Path, artifacts: Path) -> None:
    """Hostile names through MLflow's own client (it refuses control characters only in keys)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.create_experiment("m" + HOSTILE, artifact_location=artifacts.as_uri())
    run = client.create_run(experiment, run_name="m" + HOSTILE)
    client.log_param(run.info.run_id, "model", HOSTILE)
    client.set_tag(run.info.run_id, "note", HOSTILE)
    client.log_metric(run.info.run_id, "loss", 0.25, step=1)
    client.set_terminated(run.info.run_id)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "project"
    runs = root / "runs"
    for prefix, loss in (("a", 0.5), ("b", 0.4)):
        with start_run(
            runs,
            name=prefix + HOSTILE,
            params={KEY: HOSTILE, "lr": loss},
            experiment="e" + HOSTILE,
            tags={"note": HOSTILE},
            capture_output=True,
        ) as run:
            print(f"epoch 1 {HOSTILE}")
            run.log(step=0, **{KEY: loss, "loss": loss})
    # A damaged file under a folder whose name tries to forge a second problem line.
    with start_run(root / FILE_NAME / "runs", name="broken") as run:
        run.log(step=0, loss=1.0)
    (run.folder / METRICS_FILE).write_bytes(b"\x00\x01garbage\n")
    # A plain metrics CSV: its folder names the experiment, its file the run, its header metrics.
    csv_folder = root / ("csv" + FILE_NAME)
    csv_folder.mkdir()
    with open(csv_folder / f"r{FILE_NAME}.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", KEY])
        writer.writerows([[0, 0.9, 1.0], [1, 0.8, 2.0]])
    _write_mlflow(root / "mlflow.db", root / "mlartifacts")
    workflows = root / ".github" / "workflows"
    workflows.mkdir(parents=True)
    workflow = {
        "on": "push",
        "jobs": {"test": {"name": "j" + HOSTILE, "runs-on": "ubuntu-latest", "steps": [
            {"name": "s" + HOSTILE, "run": "pytest " + HOSTILE},
        ]}},
    }  # fmt: skip
    (workflows / "ci.yml").write_text(yaml.safe_dump(workflow), encoding="utf-8")
    dvc = {"stages": {"train" + HOSTILE: {"cmd": "python train.py " + HOSTILE}}}
    (root / "dvc.yaml").write_text(yaml.safe_dump(dvc), encoding="utf-8")
    return root


def _store(tmp_path: Path) -> str:
    """A fresh store per command, so each one imports (and reports) the whole project."""
    return str(tmp_path / "store.duckdb")


def _run_ids(project: Path, tmp_path: Path) -> dict[str, str]:
    result = _mltop("runs", str(project), "--json", "--store", str(tmp_path / "ids.duckdb"))
    return {r["name"]: r["id"] for r in json.loads(result.stdout)}


def test_runs_table_shows_every_name_inert(project: Path, tmp_path: Path) -> None:
    result = _mltop("runs", str(project), "--store", _store(tmp_path))
    assert result.returncode == 1  # the damaged file
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "at␛]0;TITLE␇ c␛]52;c;cm0gLXJm␇" in out  # the mltop run's name, made visible
    assert "et␛]0;TITLE␇" in out  # its experiment
    assert "mt␛]0;TITLE␇" in out  # the MLflow run
    assert "params.k␛[2J\\x9b\\u202e[…" in out  # a param key, shortened to its column
    assert "  k␛[2J\\x9b\\u202e[red]" in out  # a metric key
    assert "rf␛]0;TITLE␇" in out  # the CSV run, named after its file
    assert out.rstrip().endswith("5 runs")


def test_runs_json_carries_exact_values_and_no_raw_controls(project: Path, tmp_path: Path) -> None:
    result = _mltop("runs", str(project), "--json", "--store", _store(tmp_path))
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    runs = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"a" + HOSTILE, "b" + HOSTILE, "m" + HOSTILE, "r" + FILE_NAME} <= set(runs)
    mine = runs["a" + HOSTILE]
    assert mine["experiment"] == "e" + HOSTILE
    assert mine["params"][KEY] == HOSTILE
    assert mine["metrics"][KEY] == 0.5
    assert runs["m" + HOSTILE]["experiment"] == "m" + HOSTILE
    assert runs["m" + HOSTILE]["params"]["model"] == HOSTILE
    assert runs["r" + FILE_NAME]["experiment"] == "csv" + FILE_NAME
    assert KEY in runs["r" + FILE_NAME]["metrics"]


def test_ingest_problem_is_one_inert_line_whatever_the_folder_name(
    project: Path, tmp_path: Path
) -> None:
    result = _mltop("ingest", str(project), "--store", _store(tmp_path))
    assert result.returncode == 1
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        str(project / "f␛]0;TITLE␇ ␛]52;c;QQ==␇ ␛[2J\\x9b31m\\u202eRLO␊forged: line␍cr")
    )
    assert lines[0].endswith("(1 line unreadable)")
    assert "5 runs" in result.stdout


def test_diff_table_json_and_markdown_are_inert(project: Path, tmp_path: Path) -> None:
    ids = _run_ids(project, tmp_path)
    pair = [ids["a" + HOSTILE][:10], ids["b" + HOSTILE][:10]]
    for fmt in ("table", "json", "md"):
        result = _mltop(
            "diff", *pair, "-C", str(project), "--store", _store(tmp_path), "--format", fmt
        )
        assert result.returncode == 0, result.stderr
        assert_inert(result.stdout)
        assert_inert(result.stderr)
        if fmt == "json":
            data = json.loads(result.stdout)
            (param,) = (p for p in data["params"] if p["key"] == KEY)
            assert [c["value"] for c in param["cells"]] == [HOSTILE, HOSTILE]
            assert KEY in [m["key"] for m in data["metrics"]]
            assert {r["name"] for r in data["runs"]} == {"a" + HOSTILE, "b" + HOSTILE}
        elif fmt == "md":
            assert "at␛\\]0;TITLE␇" in result.stdout  # Markdown escapes the bracket too
        else:
            assert "k␛[2J\\x9b\\u202e" in result.stdout


def test_tail_of_a_hostile_run_is_inert(project: Path, tmp_path: Path) -> None:
    ids = _run_ids(project, tmp_path)
    result = _mltop(
        "tail", ids["a" + HOSTILE][:10], "-C", str(project), "--store", _store(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    assert "epoch 1 t␛]0;TITLE␇" in result.stdout


def test_pipelines_table_json_and_markdown_are_inert(project: Path) -> None:
    for fmt in ("table", "json", "md"):
        result = _mltop("pipelines", str(project), "--format", fmt)
        assert_inert(result.stdout)
        assert_inert(result.stderr)
        if fmt == "json":
            data = json.loads(result.stdout)
            assert data["devops"]["stages"][0]["name"] == "j" + HOSTILE
            assert data["mlops"]["stages"][0]["id"] == "train" + HOSTILE
        else:
            assert "traint␛]0;TITLE␇" in result.stdout
    dag = _mltop("pipelines", str(project), "--dag", "dvc.yaml", "--format", "json")
    assert_inert(dag.stdout)
    assert json.loads(dag.stdout)["stages"][0]["commands"] == ["python train.py " + HOSTILE]


# -- on a real terminal: colours and progress on, still nothing hostile -----------------------

# What Rich itself writes to a terminal: colours, cursor hide/show, line erase and cursor moves
# for the progress display.
RICH_OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[hl]|\x1b\[[0-9]*[ABCDGK]|\r(?=\x1b\[)")


def _in_terminal(*args: str, timeout: float = 180.0) -> str:
    """Run mltop with a pseudo-terminal as stdin, stdout and stderr; return all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # no "\n" -> "\r\n": every byte is the program's own
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltop.core.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_terminal_output_with_progress_holds_only_richs_own_escapes(
    project: Path, tmp_path: Path
) -> None:
    for command in ("ingest", "runs"):
        output = _in_terminal(command, str(project), "--store", str(tmp_path / f"{command}.db"))
        assert "importing" in output  # the progress display was drawn
        assert_inert(RICH_OWN.sub("", output))
        assert "Traceback" not in output
    assert "␛]0;TITLE␇" in output


# -- names from an MLflow tracking server --------------------------------------------------------


def test_names_from_an_mlflow_server_are_inert(project: Path, tmp_path: Path) -> None:
    from mlflow_server import mlflow_server

    empty = tmp_path / "empty"
    empty.mkdir()
    with mlflow_server(project / "mlflow.db", tmp_path) as url:
        table = _mltop("runs", str(empty), "--mlflow", url)
        as_json = _mltop("runs", str(empty), "--mlflow", url, "--json", "--store", _store(tmp_path))
    for result in (table, as_json):
        assert result.returncode == 0, result.stderr
        assert_inert(result.stdout)
        assert_inert(result.stderr)
    assert "mt␛]0;TITLE␇" in table.stdout
    (run,) = json.loads(as_json.stdout)
    assert run["name"] == run["experiment"] == "m" + HOSTILE
    assert run["params"]["model"] == HOSTILE


class _HostileErrors(QuietHandler):
    """Answers every request as a failing tracking server whose error message is hostile."""

    def _answer(self) -> None:
        self.send_json({"error_code": "INTERNAL_ERROR", "message": "s" + HOSTILE}, status=500)

    do_GET = do_POST = _answer


def test_a_server_error_message_is_one_inert_problem_line(tmp_path: Path) -> None:
    with serving(_HostileErrors) as url:
        result = _mltop("runs", str(tmp_path), "--mlflow", url, "--store", _store(tmp_path))
    assert result.returncode == 1
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(url) and "st␛]0;TITLE␇ c␛]52;c;cm0gLXJm␇" in lines[0]


def test_a_source_whose_path_is_not_utf8_is_one_problem_and_the_rest_imports(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    for name in ("kept", "latin"):
        with start_run(root / "runs", name=name) as run:
            run.log(step=0, loss=0.5)
    # A folder named in Latin-1 (as old archives unpack): Python reads its byte 0xE9 as U+DCE9.
    latin = os.fsencode(root / "runs" / "latin")
    os.rename(latin, latin.replace(b"latin", b"caf\xe9"))
    result = _mltop("runs", str(root), "--json", "--store", _store(tmp_path))
    assert result.returncode == 1
    assert [r["name"] for r in json.loads(result.stdout)] == ["kept"]
    assert_inert(result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert (
        line
        == f"{root}/runs/caf\\xe9: the path is not valid UTF-8; skipped (rename it to import it)"
    )

"""The pipelines view reads the repository's monitors: the monitor phase, the maturity reading
and the MLOps band's drift and data quality. The projects are real: the sample project's own
pipeline files and its serve.py run in a subprocess, and the real Evidently workspace fixture."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from mltop.core.demo import sample_project_dir
from mltop.core.monitor import build_report, load_config
from mltop.core.pipelines.links import PipelineLinks
from mltop.core.pipelines.model import Phase
from mltop.core.pipelines.overview import build_overview
from mltop.core.pipelines.render import render_table
from mltop.tui.screens.pipelines.data import PipelinesData
from mltop.tui.screens.pipelines.screen import stage_detail

FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"


def sample_files(root: Path, *names: str) -> Path:
    sample = sample_project_dir()
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample / name, root / name)
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project's pipelines, its monitor config and thirty served days."""
    root = sample_files(
        tmp_path_factory.mktemp("served") / "proj",
        "dvc.yaml",
        ".github/workflows/ci.yml",
        ".mltop/monitor.yaml",
        "serve.py",
        "prepare.py",
        "params.yaml",
    )
    subprocess.run(
        [sys.executable, "serve.py"], cwd=root, check=True, capture_output=True, timeout=120
    )
    return root


def metric(overview, name: str):  # type: ignore[no-untyped-def]
    return next(m for m in overview.metrics if m.side == "mlops" and m.name == name)


def test_the_band_reads_drift_and_data_quality_from_the_monitor(served: Path) -> None:
    report = build_report(load_config(served / ".mltop" / "monitor.yaml"))
    overview = build_overview(served)
    assert [m.name for m in overview.monitors] == ["proj"]
    dataset = report.overall.dataset_drift
    drift = metric(overview, "drift")
    assert drift.value is not None
    assert drift.value.startswith(f"{dataset.drifted_count} of {dataset.tested_count} features")
    assert "over the whole log" in drift.value and report.windows[-1].start[:10] in drift.value
    assert drift.evidence == "proj (.mltop/monitor.yaml)"
    quality = metric(overview, "data quality")
    assert quality.value is not None
    assert "Credit utilization" in quality.value and "missing" in quality.value
    assert "partner_api" in quality.value
    maturity = overview.comparison.maturity
    assert any(e.startswith("monitor proj: ") for e in maturity.evidence)
    assert "nothing monitors drift or data quality" not in maturity.missing
    # the sample's monitor stage sits in the monitor phase
    row = next(r for r in overview.comparison.rows if r.phase is Phase.MONITOR)
    assert [s.id for s in row.mlops] == ["monitor"]


def test_an_evidently_workspace_is_the_monitor_phase_without_a_stage(tmp_path: Path) -> None:
    root = sample_files(tmp_path / "proj", "dvc.yaml")
    text = (root / "dvc.yaml").read_text(encoding="utf-8")
    (root / "dvc.yaml").write_text(text.split("  serve:")[0], encoding="utf-8")
    with tarfile.open(FIXTURES / "evidently_workspace.tar.gz") as tar:
        tar.extractall(root / "reports", filter="data")
    overview = build_overview(root)
    row = next(r for r in overview.comparison.rows if r.phase is Phase.MONITOR)
    assert row.mlops == ()
    assert row.mlops_gap.startswith("no monitor stage; monitor reports/evidently_workspace: ")
    assert "6 of 7 features drifted (85.7%) in the snapshot of 2025-03-28" in row.mlops_gap
    quality = metric(overview, "data quality")
    assert quality.value is None and "holds drift reports only" in quality.needs
    assert "nothing monitors drift or data quality" not in overview.comparison.maturity.missing


def test_without_a_monitor_the_band_says_what_it_needs(tmp_path: Path) -> None:
    root = sample_files(tmp_path / "proj", "dvc.yaml")
    overview = build_overview(root)
    assert overview.monitors == []
    assert ".mltop/monitor.yaml" in metric(overview, "drift").needs
    row = next(r for r in overview.comparison.rows if r.phase is Phase.MONITOR)
    assert row.mlops  # the sample's own monitor stage: a stage, but nothing to read


def test_a_monitor_that_cannot_be_computed_is_named_with_its_reason(tmp_path: Path) -> None:
    root = sample_files(tmp_path / "proj", "dvc.yaml", ".mltop/monitor.yaml")
    overview = build_overview(root)  # the config names data files serve.py has not written
    [found] = overview.monitors
    assert found.error is not None and "predictions.parquet" in found.error
    drift = metric(overview, "drift")
    assert drift.value is None and "proj: " in drift.needs
    # A monitor that cannot be computed watches nothing: a gap with its reason, not evidence.
    maturity = overview.comparison.maturity
    assert not any(e.startswith("monitor proj") for e in maturity.evidence)
    assert any(
        m.startswith("monitor proj: not computed: ") and "predictions.parquet" in m
        for m in maturity.missing
    )


def test_a_monitor_that_cannot_be_computed_leaves_the_monitor_gap_open(tmp_path: Path) -> None:
    root = sample_files(tmp_path / "proj", "dvc.yaml", ".mltop/monitor.yaml")
    text = (root / "dvc.yaml").read_text(encoding="utf-8")
    (root / "dvc.yaml").write_text(text.split("  serve:")[0], encoding="utf-8")  # no stage
    maturity = build_overview(root).comparison.maturity
    assert "nothing monitors drift or data quality" in maturity.missing
    assert any(m.startswith("monitor proj: not computed: ") for m in maturity.missing)


def test_a_monitor_folder_named_with_escapes_is_shown_inert(tmp_path: Path) -> None:
    root = sample_files(tmp_path / "proj", "dvc.yaml")
    text = (root / "dvc.yaml").read_text(encoding="utf-8")
    (root / "dvc.yaml").write_text(text.split("  serve:")[0], encoding="utf-8")
    hostile = root / "svc\x1b[31m[red]x"
    (hostile / ".mltop").mkdir(parents=True)
    (hostile / ".mltop" / "monitor.yaml").write_text(
        "log: gone.parquet\nreference: ref.parquet\n", encoding="utf-8"
    )
    overview = build_overview(root)
    row = next(r for r in overview.comparison.rows if r.phase is Phase.MONITOR)
    assert "\x1b" not in row.mlops_gap and "svc␛[31m[red]x" in row.mlops_gap
    printed = render_table(overview)
    assert "\x1b" not in printed and "svc␛[31m[red]x" in printed


def test_the_monitor_stage_pane_says_what_the_monitor_found(served: Path) -> None:
    overview = build_overview(served)
    data = PipelinesData(overview, PipelineLinks())
    mlops = overview.comparison.mlops
    assert mlops is not None
    stage = next(s for s in mlops.stages if s.id == "monitor")
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(stage_detail(data, "mlops", stage, mlops))
    pane = " ".join(console.export_text().split())
    [found] = overview.monitors
    assert f"monitor proj: {found.drift_text()}" in pane
    assert "partner_api" in pane


def test_the_overview_answers_at_once_and_computes_a_changed_monitor_when_asked(
    served: Path, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    shutil.copytree(served, root)
    first = build_overview(root, compute_monitors=False)
    [pending] = first.monitors
    assert pending.pending and pending.drift_text() == "computing…"
    assert metric(first, "drift").value == "computing…"
    computed = build_overview(root)
    [found] = computed.monitors
    assert not found.pending and "features drifted" in found.drift_text()
    # Files unchanged: the kept finding, without computing.
    [kept] = build_overview(root, compute_monitors=False).monitors
    assert kept == found
    # The log rewritten (new size and time): its finding is computing again.
    log = root / "data" / "predictions.parquet"
    log.write_bytes(log.read_bytes() + b"")
    os.utime(log, ns=(log.stat().st_atime_ns, log.stat().st_mtime_ns + 10**9))
    [changed] = build_overview(root, compute_monitors=False).monitors
    assert changed.pending


def test_a_monitor_still_computing_is_not_maturity_evidence_until_its_figures_are_in(
    served: Path, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    shutil.copytree(served, root)
    text = (root / "dvc.yaml").read_text(encoding="utf-8")
    (root / "dvc.yaml").write_text(text.split("  serve:")[0], encoding="utf-8")  # no stage
    first = build_overview(root, compute_monitors=False)
    [pending] = first.monitors
    assert pending.pending
    maturity = first.comparison.maturity
    assert not any(e.startswith("monitor proj") for e in maturity.evidence)
    assert "nothing monitors drift or data quality yet (monitor proj: computing…)" in (
        maturity.missing
    )
    computed = build_overview(root).comparison.maturity
    assert any(e.startswith("monitor proj: ") and "drifted" in e for e in computed.evidence)
    assert not any(m.startswith("nothing monitors") for m in computed.missing)
    assert computed.level == maturity.level


async def test_the_pipelines_screen_shows_computing_then_what_the_monitor_found(
    served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui_pilot import make_app, until

    from mltop.tui.screens.pipelines.screen import PipelinesLoaded, PipelinesScreen

    root = tmp_path / "proj"
    shutil.copytree(served, root)
    answers: list[PipelinesData | None] = []
    shown = PipelinesScreen.on_pipelines_loaded

    def recorded(self: PipelinesScreen, message: PipelinesLoaded) -> None:
        answers.append(message.data)
        shown(self, message)

    monkeypatch.setattr(PipelinesScreen, "on_pipelines_loaded", recorded)
    app = make_app(root, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.runs_screen.settled)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PipelinesScreen) and app.screen.settled)
        screen = app.screen
        assert isinstance(screen, PipelinesScreen) and screen.data is not None
        states = [[m.pending for m in a.overview.monitors] for a in answers if a is not None]
        assert states == [[True], [False]]
        # The first answer's monitor is computing: no maturity evidence until the second.
        readings = [a.overview.comparison.maturity for a in answers if a is not None]
        assert [any(e.startswith("monitor proj: ") for e in m.evidence) for m in readings] == [
            False,
            True,
        ]
        [found] = screen.data.overview.monitors
        assert "features drifted" in found.drift_text()

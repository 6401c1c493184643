"""DevOps and MLOps pipelines side by side: phase coverage and an MLOps maturity reading.

The maturity levels follow the usual reading of MLOps practice:

* level 0: training is manual; there is no pipeline definition with a training stage;
* level 1: training is an automated pipeline (dvc.yaml, Kubeflow, Argo) that also prepares and
  validates data and evaluates the model;
* level 2: the training pipeline itself is run by CI/CD: a CI job runs ``dvc repro``/``dvc exp
  run`` or submits the Kubeflow/Argo/Tekton pipeline.

Every reading comes with the evidence it rests on (which stage, which rule) and the concrete
pieces still missing, so a user can check it rather than trust it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mltop.core.monitor.findings import MonitorFinding
from mltop.core.pipelines.model import Phase, Pipeline, Stage, one_line, path_under
from mltop.core.pipelines.phase_names import name_tokens
from mltop.core.pipelines.phases import runs_ml_pipeline
from mltop.core.pipelines.repository import side_title

MLOPS_GAPS = {
    Phase.SOURCE: "no data stage",
    Phase.BUILD: "no feature or preprocessing stage",
    Phase.TEST: "no training stage",
    Phase.VERIFY: "no evaluation stage",
    Phase.PACKAGE: "no model registry stage",
    Phase.DEPLOY: "no model deployment stage",
    Phase.MONITOR: "nothing watches drift or data quality",
}
MONITOR_GAP = "nothing monitors drift or data quality"
DEVOPS_GAPS = {
    Phase.SOURCE: "no checkout stage",
    Phase.BUILD: "no build or lint stage",
    Phase.TEST: "no test stage",
    Phase.VERIFY: "no security scan or e2e stage",
    Phase.PACKAGE: "no package or image stage",
    Phase.DEPLOY: "no deploy stage",
    Phase.MONITOR: "nothing monitors the running service",
}


@dataclass(frozen=True)
class PhaseRow:
    phase: Phase
    devops: tuple[Stage, ...]
    mlops: tuple[Stage, ...]
    devops_note: str = ""
    # What stands in for a missing MLOps stage (the register phase: the registry's models).
    mlops_note: str = ""

    @property
    def coverage(self) -> str:
        if self.devops and self.mlops:
            return "both"
        if self.devops:
            return "DevOps only"
        if self.mlops:
            return "MLOps only"
        return "none"

    @property
    def devops_gap(self) -> str:
        return "" if self.devops else (self.devops_note or DEVOPS_GAPS[self.phase])

    @property
    def mlops_gap(self) -> str:
        return "" if self.mlops else (self.mlops_note or MLOPS_GAPS[self.phase])


@dataclass(frozen=True)
class Maturity:
    level: int
    headline: str
    evidence: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    devops: Pipeline | None
    mlops: Pipeline | None
    rows: tuple[PhaseRow, ...]
    unmapped_devops: tuple[Stage, ...]
    unmapped_mlops: tuple[Stage, ...]
    maturity: Maturity

    def summary(self) -> str:
        parts = []
        for label, pipeline, side in (
            ("DevOps", self.devops, "devops"),
            ("MLOps", self.mlops, "mlops"),
        ):
            if pipeline is None:
                parts.append(f"{label}: no pipeline found")
                continue
            covered = [r.phase.value for r in self.rows if getattr(r, side)]
            parts.append(
                f"{label} covers {len(covered)} of {len(Phase)} phases"
                + (f" ({', '.join(covered)})" if covered else "")
            )
        both = [r.phase.value for r in self.rows if r.coverage == "both"]
        neither = [r.phase.value for r in self.rows if r.coverage == "none"]
        parts.append("both: " + (", ".join(both) if both else "none"))
        parts.append("neither: " + (", ".join(neither) if neither else "none"))
        return "; ".join(parts)


def _by_phase(pipeline: Pipeline | None, phase: Phase) -> tuple[Stage, ...]:
    if pipeline is None:
        return ()
    return tuple(s for s in pipeline.stages if s.phase is phase)


def _is_data_validation(stage: Stage) -> bool:
    tokens = set(name_tokens(stage.name)) | set(name_tokens(stage.id))
    if any(t.startswith("validat") or t in ("expectations", "schema") for t in tokens):
        return stage.phase in (Phase.SOURCE, Phase.BUILD) or bool({"data", "dataset"} & tokens)
    return "data validation" in stage.phase_reason or any(
        k in c for c in stage.commands for k in ("great_expectations", "pandera", "tfdv")
    )


def _names(stages: Iterable[Stage], limit: int = 4) -> str:
    names = [
        (s.name if len(s.name) <= 40 else s.id) + (f" ({s.origin})" if s.origin else "")
        for s in stages
    ]
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text


def _display(pipeline: Pipeline, root: Path | None) -> str:
    if pipeline.members and root is not None:
        return side_title(pipeline, root)
    return path_under(pipeline.path, root)


def compare(
    devops: Pipeline | None,
    mlops: Pipeline | None,
    ci_pipelines: Sequence[Pipeline] = (),
    root: Path | None = None,
    monitors: Sequence[MonitorFinding] = (),
) -> Comparison:
    """Align two phase-assigned pipelines by phase and read MLOps maturity.

    ``ci_pipelines`` are all CI definitions found (not only the one shown), because any of
    them running the ML pipeline is level-2 evidence. ``monitors`` (what the monitors under
    the repository found) are the monitor phase's evidence, stage or no stage.
    """
    checkout_inside = devops is not None and any(
        any("checkout" in a for a in s.actions) for s in devops.stages
    )
    rows = tuple(
        PhaseRow(
            p,
            _by_phase(devops, p),
            _by_phase(mlops, p),
            "checkout happens inside jobs" if p is Phase.SOURCE and checkout_inside else "",
            _monitor_note(monitors) if p is Phase.MONITOR else "",
        )
        for p in Phase
    )
    unmapped_dev = tuple(s for s in devops.stages if s.phase is None) if devops else ()
    unmapped_ml = tuple(s for s in mlops.stages if s.phase is None) if mlops else ()
    ci = list(ci_pipelines)
    for shown in (devops.members or (devops,)) if devops is not None else ():
        if all(p.path != shown.path for p in ci):
            ci.append(shown)
    maturity = read_maturity(mlops, ci, rows, root, monitors)
    return Comparison(devops, mlops, rows, unmapped_dev, unmapped_ml, maturity)


def read_maturity(
    mlops: Pipeline | None,
    ci_pipelines: Sequence[Pipeline],
    rows: Sequence[PhaseRow],
    root: Path | None = None,
    monitors: Sequence[MonitorFinding] = (),
) -> Maturity:
    evidence: list[str] = []
    missing: list[str] = []
    by_phase = {row.phase: row for row in rows}
    # Evidence is what a monitor has found: one still computing (its first report, or its
    # files changed since) raises nothing until its figures are in, and one that cannot be
    # computed watches nothing: it is a gap to fix, named with its reason.
    found = [m for m in monitors if not m.pending and m.error is None]
    computing = [m for m in monitors if m.pending]
    broken = [m for m in monitors if not m.pending and m.error is not None]
    watched = bool(found)
    evidence.extend(f"monitor {one_line(m.name, 80)}: {m.drift_text()}" for m in found)
    ci_runs: list[str] = []
    ci_trains: list[str] = []
    train_commands = {
        " ".join(c.split())
        for s in (mlops.stages if mlops is not None else ())
        if s.phase is Phase.TEST
        for c in s.commands
        if c.strip()
    }
    for pipeline in ci_pipelines:
        for stage in pipeline.stages:
            where = f"CI job {stage.name!r} in {_display(pipeline, root)}"
            command = runs_ml_pipeline(stage)
            same = _runs_one_of(stage, train_commands)
            if command:
                ci_runs.append(f"{where} runs `{command}`")
            elif same:
                ci_runs.append(f"{where} runs the training stage's command `{same}`")
            elif stage.phase is Phase.TEST and "train" in stage.phase_reason:
                ci_trains.append(
                    f"CI job {stage.name!r} in {_display(pipeline, root)} trains "
                    f"({stage.phase_reason})"
                )
    if mlops is None:
        evidence.append("no ML pipeline definition found (dvc.yaml, Kubeflow, Argo)")
        evidence.extend(ci_trains)
        missing.append("no automated training pipeline")
        missing.extend(_ops_gaps(by_phase, watched, computing, broken))
        return Maturity(0, "level 0: training is manual", tuple(evidence), tuple(missing))
    where = _display(mlops, root)
    train = by_phase[Phase.TEST].mlops
    evaluate = by_phase[Phase.VERIFY].mlops
    data = by_phase[Phase.SOURCE].mlops
    validation = [s for s in mlops.stages if _is_data_validation(s)]
    if not train:
        evidence.append(f"{where} has no training stage")
        missing.append("no training stage in the ML pipeline")
        if not evaluate:
            missing.append("no evaluation stage")
        missing.extend(_ops_gaps(by_phase, watched, computing, broken))
        return Maturity(
            0,
            f"level 0: {where} automates no training, so training is manual",
            tuple(evidence),
            tuple(missing),
        )
    evidence.append(f"{where} trains in {_names(train)} ({train[0].phase_reason})")
    if data:
        evidence.append(f"data stages: {_names(data)}")
    else:
        missing.append("no data preparation stage")
    if validation:
        evidence.append(f"data validation: {_names(validation)}")
    else:
        missing.append("no data validation stage")
    if evaluate:
        evidence.append(f"evaluation: {_names(evaluate)}")
    else:
        missing.append("no evaluation stage")
    level = 1
    if ci_runs:
        level = 2
        evidence.extend(ci_runs)
    else:
        missing.append(
            "no CI job runs the ML pipeline (`dvc repro`, `dvc exp run` or a pipeline submit)"
        )
    missing.extend(_ops_gaps(by_phase, watched, computing, broken))
    partial = [m for m in missing if m in ("no evaluation stage", "no data validation stage")]
    if level == 2:
        headline = "level 2: the training pipeline is automated and CI runs it" + (
            "" if not partial else f", though it has {' and '.join(partial)}"
        )
    else:
        headline = (
            "level 1: training is an automated pipeline"
            + (" with evaluation" if evaluate else ", but nothing evaluates the model")
            + "; the pipeline itself is not run by CI"
        )
    return Maturity(level, headline, tuple(evidence), tuple(missing))


def _monitor_note(monitors: Sequence[MonitorFinding]) -> str:
    """The monitor phase's cell without a monitor stage: the monitors found beside it."""
    if not monitors:
        return ""
    first = monitors[0]
    more = f" (+{len(monitors) - 1} more)" if len(monitors) > 1 else ""
    # the folder's name and an error come from the disk: inert, as file-borne text in the table
    return one_line(f"no monitor stage; monitor {first.name}: {first.drift_text()}{more}", 300)


def _runs_one_of(stage: Stage, commands: set[str]) -> str | None:
    """A command of the ML pipeline's training stage that this CI stage runs verbatim."""
    if not commands:
        return None
    for block in stage.commands:
        for line in block.splitlines():
            flat = " ".join(line.split())
            if flat in commands:
                return flat
    return None


def _computing(monitors: Sequence[MonitorFinding]) -> str:
    """The monitors whose first figures are still being computed, named after a gap."""
    if not monitors:
        return ""
    more = f" (+{len(monitors) - 1} more)" if len(monitors) > 1 else ""
    return f" yet (monitor {one_line(monitors[0].name, 80)}: computing…{more})"


def _ops_gaps(
    by_phase: dict[Phase, PhaseRow],
    watched: bool = False,
    computing: Sequence[MonitorFinding] = (),
    broken: Sequence[MonitorFinding] = (),
) -> list[str]:
    gaps = []
    if not by_phase[Phase.PACKAGE].mlops:
        gaps.append("no model registry stage")
    if not by_phase[Phase.DEPLOY].mlops and not by_phase[Phase.DEPLOY].devops:
        gaps.append("nothing deploys the model")
    if not by_phase[Phase.MONITOR].mlops and not by_phase[Phase.MONITOR].devops and not watched:
        gaps.append(MONITOR_GAP + _computing(computing))
    gaps.extend(one_line(f"monitor {m.name}: {m.drift_text()}", 300) for m in broken)
    if not by_phase[Phase.TEST].devops:
        gaps.append("no CI job runs tests")
    return gaps

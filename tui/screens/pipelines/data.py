"""What the pipelines screen's worker hands back, shared by the pipelines and DAG screens.

It has a module of its own so the DAG screen (opened from the pipelines screen) can take it
without importing the pipelines screen back: no import cycle between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from mltop.core.pipelines.links import PipelineLinks, RunLink
from mltop.core.pipelines.model import Pipeline, StageStatus
from mltop.core.pipelines.overview import Overview


@dataclass
class PipelinesData:
    """One answer of the worker: the overview, its run links, and how long it took."""

    overview: Overview
    links: PipelineLinks
    link_note: str | None = None
    seconds: float = 0.0

    def pipeline(self, side: str) -> Pipeline | None:
        comparison = self.overview.comparison
        return comparison.devops if side == "devops" else comparison.mlops

    def statuses(self, side: str) -> dict[str, StageStatus]:
        return self.overview.status_of(self.pipeline(side))

    def stage_links(self, side: str) -> dict[str, RunLink]:
        return self.links.stages if side == "mlops" else {}

    def link_for(self, side: str, stage_id: str | None) -> RunLink | None:
        """The runs tied to a stage; on the DevOps side, the runs at the CI run's commit."""
        if side == "devops":
            return self.links.ci
        return self.links.stages.get(stage_id) if stage_id else None

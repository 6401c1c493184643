"""The model registry as evidence for the register phase and the MLOps maturity reading.

A pipeline definition says a stage registers models; the registry says whether it did: which
models exist under the repository, their latest versions and which carry an alias such as
``@champion`` (what a promotion step moves). Registries whose store lies under the repository's
folder belong to its ML pipeline. A registry with aliases is evidence of a promotion process; its
absence is a gap, stated as such. Read from the store (the registry is imported with the MLflow
source it belongs to), so this is applied where a store is at hand: the Pipelines screen, after
it links runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mltop.core.pipelines.compare import Comparison, Maturity
from mltop.core.pipelines.model import Phase
from mltop.core.store import Store

REGISTRY_GAP = "no model registry stage"
NO_ALIASES_GAP = "no model version carries an alias (such as @champion) to promote"
NO_REGISTRY_GAP = "no registered models under the repository (no model registry in use)"
SHOWN_MODELS = 3


@dataclass(frozen=True)
class RegisteredModelEvidence:
    name: str
    latest: str | None
    aliases: tuple[tuple[str, str], ...]
    source: str

    def text(self) -> str:
        parts = [self.name]
        if self.latest:
            parts.append(f"v{self.latest}")
        parts += [f"@{alias} v{version}" for alias, version in self.aliases]
        return " ".join(parts)


def _under(path: str, root: Path) -> bool:
    prefix = str(root).rstrip(os.sep) + os.sep
    return path == str(root) or path.startswith(prefix)


def registry_evidence(store: Store, root: Path) -> list[RegisteredModelEvidence]:
    """The registered models whose registry lies under ``root``, with latest version and aliases."""
    root = Path(root).resolve()
    summaries = store.registry_summaries()
    return [
        RegisteredModelEvidence(
            m.name, summaries.get((m.source, m.name), (0, None))[1], m.aliases, m.source
        )
        for m in store.registered_models()
        if _under(m.source, root)
    ]


def _summary(models: Sequence[RegisteredModelEvidence]) -> str:
    shown = "; ".join(m.text() for m in models[:SHOWN_MODELS])
    more = f"; and {len(models) - SHOWN_MODELS} more" if len(models) > SHOWN_MODELS else ""
    return shown + more


def with_registry(comparison: Comparison, models: Sequence[RegisteredModelEvidence]) -> Comparison:
    """``comparison`` with the register phase and the maturity reading told about the registry."""
    with_aliases = [m for m in models if m.aliases]
    maturity = comparison.maturity
    evidence = list(maturity.evidence)
    # Registered models answer the "no model registry stage" gap (something registers them);
    # without any, that no model is registered under the repository is a gap of its own.
    missing = [m for m in maturity.missing if m != REGISTRY_GAP or not models]
    if with_aliases:
        evidence.append(f"model registry with aliases: {_summary(with_aliases)}")
    elif models:
        evidence.append(f"model registry: {_summary(models)}")
        missing.append(NO_ALIASES_GAP)
    else:
        missing.append(NO_REGISTRY_GAP)
    note = f"no register stage; registry: {_summary(models)}" if models else ""
    rows = tuple(
        replace(row, mlops_note=note) if row.phase is Phase.PACKAGE else row
        for row in comparison.rows
    )
    return replace(
        comparison,
        rows=rows,
        maturity=Maturity(maturity.level, maturity.headline, tuple(evidence), tuple(missing)),
    )


__all__ = [
    "RegisteredModelEvidence",
    "registry_evidence",
    "with_registry",
]

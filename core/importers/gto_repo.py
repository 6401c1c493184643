"""A git repository that declares GTO artifacts without being a DVC project.

GTO needs only git: a repository whose ``dvc.yaml`` (its ``artifacts:``) or ``artifacts.yaml``
declares artifacts is a model registry even when ``dvc init`` was never run (no ``.dvc/``), and
``gto show`` reads it. Such a folder holds no runs of its own (the runs behind its versions are
logged by whatever tracker trained them), so this importer only names the folder as a source:
its registry is read with the other local registries by :mod:`mltop.core.registry.sync`. A
folder with ``.dvc/`` is the DVC importer's, whose source carries the same registry. A DVC
project whose ``.dvc/`` is removed but whose declarations stay becomes this importer's source
at the same folder: the runs DVC's importer made there are dropped, as they would be had the
folder gone, since nothing reads them any more (``dvc init`` again brings them back).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mltop.core.entities import ImportReport, SourceRef
from mltop.core.importers.base import Detection
from mltop.core.importers.dvc_git import EXP_KIND, find_git_dir
from mltop.core.importers.dvc_git import KIND as DVC_KIND
from mltop.core.store import Store

KIND = "gto"
DECLARATIONS = frozenset({"dvc.yaml", "artifacts.yaml"})


class GtoRepoImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if not DECLARATIONS & set(filenames) or (dirpath / ".dvc").is_dir():
            return None
        if find_git_dir(dirpath) is None:
            return None
        return Detection([SourceRef(KIND, dirpath)])

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        """No runs to import (the registry is synced after every importer); what DVC's importer
        left in a folder that is no DVC project any more is dropped."""
        for ref in refs:
            store.forget_source_kinds(str(ref.location), (DVC_KIND, EXP_KIND))


IMPORTER = GtoRepoImporter()

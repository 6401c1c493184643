"""MLflow's registry fields as mltop keeps them, shared by the three MLflow readers.

MLflow writes the same facts slightly differently per store (a stage ``"None"`` for no stage, a
deleted version kept on disk with the stage ``Deleted_Internal``, times in epoch milliseconds);
these helpers make one :class:`~mltop.core.entities.ModelVersion` of each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mltop.core.entities import ModelVersion, RegisteredModel
from mltop.core.importers.mlflow_common import ms_to_s

DELETED_STAGE = "Deleted_Internal"
NO_STAGE = "None"
# MLflow's LoggedModelStatus: stores keep its number, the REST API its name with a prefix.
LOGGED_STATUS = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}
LOGGED_STATUS_PREFIX = "LOGGED_MODEL_"


def text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def stage_of(value: object) -> tuple[str | None, bool]:
    """(stage or None when unset, whether the version is deleted)."""
    stage = text(value)
    if stage == DELETED_STAGE:
        return None, True
    if stage in (None, "", NO_STAGE):
        return None, False
    return stage, False


def make_model(
    kind: str,
    source: str,
    name: str,
    row: Mapping[str, object],
    tags: Mapping[str, str],
    aliases: Mapping[str, str],
) -> RegisteredModel:
    return RegisteredModel(
        name=name,
        source_kind=kind,
        source=source,
        description=text(row.get("description")),
        created=ms_to_s(row.get("created")),
        updated=ms_to_s(row.get("updated")),
        tags=tuple(sorted(tags.items())),
        aliases=tuple(sorted(aliases.items())),
    )


def make_version(
    kind: str,
    source: str,
    row: Mapping[str, object],
    tags: Mapping[str, str],
    aliases: list[str],
) -> ModelVersion:
    """``row`` holds MLflow's field names (``current_stage``, ``run_id``, ...); times in ms."""
    stage, deleted = stage_of(row.get("current_stage"))
    return ModelVersion(
        name=str(row["name"]),
        version=str(row["version"]),
        source_kind=kind,
        source=source,
        run_native_id=text(row.get("run_id")) or None,
        uri=text(row.get("source")),
        status=text(row.get("status")),
        status_message=text(row.get("status_message")),
        stage=stage,
        description=text(row.get("description")),
        created=ms_to_s(row.get("creation_timestamp")),
        updated=ms_to_s(row.get("last_updated_timestamp")),
        user_id=text(row.get("user_id")),
        model_id=text(row.get("model_id")),
        deleted=deleted,
        tags=tuple(sorted(tags.items())),
        aliases=tuple(sorted(aliases)),
    )


def aliases_by_version(aliases: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        out.setdefault(str(version), []).append(alias)
    return out


def logged_status(value: object) -> str | None:
    """A logged model's status as one word (``READY``) from a number or a REST name."""
    word = text(value)
    if word is None:
        return None
    if word.strip().isdigit():
        return LOGGED_STATUS.get(int(word), word)
    return word.removeprefix(LOGGED_STATUS_PREFIX)


_LOGGED_MODEL = re.compile(r"^models:/(m-[0-9a-f]+)$")


def logged_model_id(v: ModelVersion) -> str | None:
    """The MLflow 3 logged model a version was registered from: MLflow's ``model_id`` when the
    store keeps it (file store), else the id its ``models:/m-...`` source names (SQLite)."""
    if v.model_id:
        return v.model_id
    found = _LOGGED_MODEL.match(v.uri or "")
    return found[1] if found else None

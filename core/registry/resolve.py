"""What the command line and the Models screen ask of the registry: the models with their
versions in one listing, a version as one self-contained JSON object, and ``models:/`` URIs
resolved to versions (and so to the runs a diff compares).

``models:/NAME@ALIAS`` and ``models:/NAME/VERSION`` are MLflow's own model URIs; a name held by
two registries (two databases under one folder) is ambiguous and said to be, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mltop.core.compare.diff_format import json_number
from mltop.core.entities import LoggedModel, ModelVersion, RegisteredModel
from mltop.core.registry import fields
from mltop.core.store import Store

MODELS_URI = "models:/"
_VERSION = re.compile(r"^(?P<name>.+)/(?P<version>[^/@]+)$")
_ALIAS = re.compile(r"^(?P<name>.+)@(?P<alias>[^/@]+)$")


class RegistryRefError(ValueError):
    """A ``models:/`` URI that names no version; ``str()`` is one line."""


@dataclass(frozen=True)
class ModelListing:
    """A model, its live version count and latest version, and (when read) its versions,
    newest first. The Models screen lists models without their versions (counted by the
    store) and reads one model's versions when it is shown."""

    model: RegisteredModel
    count: int
    latest: str | None
    versions: tuple[ModelVersion, ...] = field(default=())
    # The MLflow 3 logged models the versions were registered from, by model id.
    logged: Mapping[str, LoggedModel] = field(default_factory=dict)

    @property
    def live(self) -> list[ModelVersion]:
        return [v for v in self.versions if not v.deleted]

    def logged_model(self, v: ModelVersion) -> LoggedModel | None:
        """The logged model ``v`` was registered from, when the registry holds it."""
        model_id = fields.logged_model_id(v)
        return self.logged.get(model_id) if model_id and not v.deleted else None

    def alias_version(self, alias: str) -> ModelVersion | None:
        target = dict(self.model.aliases).get(alias)
        return next((v for v in self.live if v.version == target), None)


def listings(store: Store, name: str | None = None, *, versions: bool = True) -> list[ModelListing]:
    """Every model (or the models called ``name``) by name then source, with its versions
    unless ``versions`` is False (then only counted)."""
    summaries = store.registry_summaries()
    read: dict[tuple[str, str], list[ModelVersion]] = {}
    logged: dict[str, dict[str, LoggedModel]] = {}
    if versions:
        for v in store.model_versions(name):
            read.setdefault((v.source, v.name), []).append(v)
        for (source, model_id), model in store.logged_models().items():
            logged.setdefault(source, {})[model_id] = model
    out = []
    for m in store.registered_models():
        if name is not None and m.name != name:
            continue
        count, latest = summaries.get((m.source, m.name), (0, None))
        found = tuple(read.get((m.source, m.name), ()))
        out.append(ModelListing(m, count, latest, found, logged.get(m.source, {})))
    return out


def with_versions(store: Store, listing: ModelListing) -> ModelListing:
    """``listing`` with its versions and their logged models read (one model's: indexed
    store reads)."""
    source = listing.model.source
    found = store.model_versions(listing.model.name, source)
    ids = sorted({i for v in found if (i := fields.logged_model_id(v))})
    logged = {i: m for (_, i), m in store.logged_models(source, ids).items()}
    return ModelListing(listing.model, listing.count, listing.latest, tuple(found), logged)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def logged_model_json(model: LoggedModel | None) -> dict[str, Any] | None:
    """A logged model's facts and its metrics (each key's latest value) and params."""
    if model is None:
        return None
    return {
        "model_id": model.model_id,
        "name": model.name,
        "status": model.status,
        "source_run_id": model.run_native_id,
        "experiment_id": model.experiment_id,
        "creation_timestamp": _ms(model.created),
        "last_updated_timestamp": _ms(model.updated),
        "metrics": {k: json_number(v) for k, v in model.final_metrics().items()},
        "params": dict(model.params),
    }


def version_json(v: ModelVersion, logged: LoggedModel | None = None) -> dict[str, Any]:
    """A version with its model's name, so scripts need no joins; MLflow's field names (and
    the logged model it was registered from, with that model's metrics and params)."""
    return {
        "name": v.name,
        "version": v.version,
        "run_id": v.run_native_id,
        "mltop_run_id": v.run_id,
        "source": v.uri,
        "status": v.status,
        "status_message": v.status_message,
        "current_stage": v.stage or ("Deleted" if v.deleted else "None"),
        "deleted": v.deleted,
        "aliases": list(v.aliases),
        "tags": dict(v.tags),
        "description": v.description,
        "model_id": v.model_id,
        "logged_model_id": fields.logged_model_id(v),
        "logged_model": logged_model_json(logged),
        "creation_timestamp": _ms(v.created),
        "last_updated_timestamp": _ms(v.updated),
        "user_id": v.user_id,
        "registry": v.source,
        "registry_kind": v.source_kind,
    }


def model_json(listing: ModelListing) -> dict[str, Any]:
    m = listing.model
    return {
        "name": m.name,
        "description": m.description,
        "tags": dict(m.tags),
        "aliases": dict(m.aliases),
        "creation_timestamp": _ms(m.created),
        "last_updated_timestamp": _ms(m.updated),
        "version_count": listing.count,
        "latest_version": listing.latest,
        "registry": m.source,
        "registry_kind": m.source_kind,
    }


def parse_ref(text: str) -> tuple[str, str | None, str | None] | None:
    """(name, alias, version) of a ``models:/`` URI; None when ``text`` is not one."""
    if not text.startswith(MODELS_URI):
        return None
    rest = text[len(MODELS_URI) :]
    if m := _ALIAS.match(rest):
        return m["name"], m["alias"], None
    if m := _VERSION.match(rest):
        return m["name"], None, m["version"]
    raise RegistryRefError(
        f"{text}: not a model version URI (models:/NAME@ALIAS or models:/NAME/VERSION)"
    )


def resolve_ref(store: Store, text: str) -> ModelVersion:
    """The live version a ``models:/`` URI names; RegistryRefError when there is none."""
    parsed = parse_ref(text)
    if parsed is None:
        raise RegistryRefError(f"{text}: not a models:/ URI")
    name, alias, version = parsed
    found = listings(store, name)
    if not found:
        known = sorted({m.name for m in store.registered_models()})
        hint = (
            f" (models: {', '.join(known[:8])}{', ...' if len(known) > 8 else ''})"
            if known
            else " (no registry found)"
        )
        raise RegistryRefError(f"{text}: no registered model named {name!r}{hint}")
    if len(found) > 1:
        where = ", ".join(f.model.source for f in found)
        raise RegistryRefError(f"{text}: model {name!r} is in {len(found)} registries ({where})")
    listing = found[0]
    if alias is not None:
        chosen = listing.alias_version(alias)
        if chosen is None:
            known_aliases = ", ".join(f"@{a}" for a, _ in listing.model.aliases) or "none"
            raise RegistryRefError(
                f"{text}: model {name!r} has no alias {alias!r} (aliases: {known_aliases})"
            )
        return chosen
    # GTO names versions v1.2.0 and mltop keeps them as 1.2.0: both spellings are the version.
    wanted = {version, version[1:] if version.startswith("v") else version}
    chosen = next((v for v in listing.versions if v.version in wanted), None)
    if chosen is None or chosen.deleted:
        state = "was deleted" if chosen is not None else "does not exist"
        live = ", ".join(v.version for v in listing.live) or "none"
        raise RegistryRefError(f"{text}: version {version} of {name!r} {state} (versions: {live})")
    return chosen


def champion(listing: ModelListing) -> ModelVersion | None:
    return listing.alias_version("champion")


def badges(aliases: Sequence[tuple[str, str]]) -> str:
    """``@champion v5  @challenger v7``: the aliases of a model as the Models screen shows them."""
    return "  ".join(f"@{alias} v{version}" for alias, version in aliases)

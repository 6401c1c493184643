"""A tracking server's registry over REST: ``registered-models/search`` and
``model-versions/search``, both paged with ``page_token`` until the server stops sending one.

The client, its deadlines, retries and credentials, and the guard against a server whose
``next_page_token`` never ends are the run importer's (:mod:`mltop.core.importers.mlflow_rest`).
Aliases come with the models (``model-versions/search`` does not fill them). A server whose
registry is disabled answers 404: that is one line, and its runs are imported as before.
MLflow 3's logged models that versions were registered from come from ``logged-models/search``
over every experiment (a page carries each model's metrics and params), keeping those versions
point at; a server before MLflow 3 has no such endpoint and no such versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from mltop.core.common.httpclient import RemoteError
from mltop.core.entities import LoggedModel, ModelVersion, RegisteredModel
from mltop.core.importers import mlflow_rest as tracking
from mltop.core.importers import mlflow_rest_client as rest_client
from mltop.core.importers.mlflow_common import metric_value, ms_to_s
from mltop.core.registry import fields

KIND = tracking.KIND
MODELS_PAGE = 1_000  # MLflow's ceiling for registered-models/search
VERSIONS_PAGE = 10_000
LOGGED_PAGE = 1_000


class NoRegistry(Exception):
    """The server has no model registry; ``str()`` is the one line to report."""


def _pages(
    client: tracking.MlflowRestClient,
    endpoint: str,
    key: str,
    page_size: int,
    body: dict[str, Any] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """One registry listing, paged with ``page_token`` through the tracking client's guard
    against a server whose pages never end (a GET, or a POST of ``body`` when given)."""

    def fetch(token: str | None) -> Any:
        params: dict[str, Any] = {"max_results": page_size, **(body or {})}
        if token:
            params["page_token"] = token
        path = f"{rest_client.API}/{endpoint}"
        if body is not None:
            return client.http.post_json(path, params, what=endpoint)
        return client.http.get_json(path, params, what=endpoint)

    identity = rest_client.unseen(
        lambda row: json.dumps([row.get("name"), row.get("version"), row.get("info")])
    )
    yield from rest_client.pages(fetch, endpoint, key, identity)


def _pairs(items: object, key: str, value: str) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {
        str(i.get(key)): str(i.get(value, ""))
        for i in items
        if isinstance(i, dict) and i.get(key) is not None
    }


def _logged_model(raw: dict[str, Any]) -> LoggedModel | None:
    """One ``logged-models/search`` entry; None when it is not shaped like one."""
    try:
        return _parse_logged_model(raw)
    except (TypeError, ValueError, KeyError):
        return None


def _parse_logged_model(raw: dict[str, Any]) -> LoggedModel | None:
    info, data = raw.get("info"), raw.get("data") or {}
    if not isinstance(info, dict) or not isinstance(data, dict) or not info.get("model_id"):
        return None
    metrics = tuple(
        (
            str(m.get("key")),
            metric_value(float(m.get("value", "nan"))),
            int(m.get("step") or 0),
            int(m["timestamp"]) if m.get("timestamp") is not None else None,
            fields.text(m.get("dataset_name")),
        )
        for m in data.get("metrics") or ()
        if isinstance(m, dict) and m.get("key") is not None
    )
    return LoggedModel(
        model_id=str(info["model_id"]),
        name=fields.text(info.get("name")),
        experiment_id=fields.text(info.get("experiment_id")),
        run_native_id=fields.text(info.get("source_run_id")),
        status=fields.logged_status(info.get("status")),
        created=ms_to_s(info.get("creation_timestamp_ms")),
        updated=ms_to_s(info.get("last_updated_timestamp_ms")),
        metrics=metrics,
        params=tuple(sorted(_pairs(data.get("params"), "key", "value").items())),
    )


def read_logged_models(
    client: tracking.MlflowRestClient,
    versions: Sequence[ModelVersion],
    page_size: int = LOGGED_PAGE,
) -> tuple[list[LoggedModel], str]:
    """The logged models ``versions`` were registered from, and a digest of what was read
    ("" when none is wanted). Read apart from the registry: its failure costs only these."""
    ids = {i for v in versions if (i := fields.logged_model_id(v))}
    if not ids:
        return [], ""
    experiments = sorted(
        str(e["experiment_id"]) for e in client.experiments() if e.get("experiment_id")
    )
    raw: list[dict[str, Any]] = []
    endpoint = "logged-models/search"
    body = {"experiment_ids": experiments}
    try:
        for page in _pages(client, endpoint, "models", page_size, body):
            raw += [m for m in page if (m.get("info") or {}).get("model_id") in ids]
    except RemoteError as exc:
        if exc.status == 404 or exc.kind == "not-found":
            return [], ""  # a server before MLflow 3 has no logged models
        raise
    found = {m.model_id: m for r in raw if (m := _logged_model(r)) is not None}
    digest = hashlib.sha1(json.dumps(raw, sort_keys=True).encode()).hexdigest()
    return [found[i] for i in sorted(found)], digest


def read_server(
    client: tracking.MlflowRestClient,
    *,
    models_page: int = MODELS_PAGE,
    versions_page: int = VERSIONS_PAGE,
) -> tuple[list[RegisteredModel], list[ModelVersion], str]:
    """Every model and live version of the server, and a digest of what was read."""
    source = client.url
    digest = hashlib.sha1()
    raw_models: list[dict[str, Any]] = []
    try:
        for page in _pages(client, "registered-models/search", "registered_models", models_page):
            raw_models.extend(page)
    except RemoteError as exc:
        if exc.status == 404 or exc.kind == "not-found":
            raise NoRegistry(
                "no model registry (registered-models/search answered 404: the registry is "
                "disabled or the server predates it); runs imported, no models"
            ) from None
        raise
    raw_versions: list[dict[str, Any]] = []
    for page in _pages(client, "model-versions/search", "model_versions", versions_page):
        raw_versions.extend(page)
    models: list[RegisteredModel] = []
    aliases_of: dict[str, dict[str, list[str]]] = {}
    for m in raw_models:
        name = fields.text(m.get("name"))
        if not name:
            continue
        aliases = _pairs(m.get("aliases"), "alias", "version")
        aliases_of[name] = fields.aliases_by_version(aliases)
        row = {
            "description": m.get("description"),
            "created": m.get("creation_timestamp"),
            "updated": m.get("last_updated_timestamp"),
        }
        models.append(
            fields.make_model(
                KIND, source, name, row, _pairs(m.get("tags"), "key", "value"), aliases
            )
        )
    versions: list[ModelVersion] = []
    seen: set[tuple[str, str]] = set()
    for v in raw_versions:
        name, version = fields.text(v.get("name")), fields.text(v.get("version"))
        if not name or not version or (name, version) in seen:
            continue
        seen.add((name, version))
        versions.append(
            fields.make_version(
                KIND,
                source,
                v,
                _pairs(v.get("tags"), "key", "value"),
                aliases_of.get(name, {}).get(version, []),
            )
        )
    digest.update(json.dumps([raw_models, raw_versions], sort_keys=True).encode())
    return models, versions, digest.hexdigest()

"""A tracking server's registry over REST: ``registered-models/search`` and
``model-versions/search``, both paged with ``page_token`` until the server stops sending one.

The client, its deadlines, retries and credentials, and the guard against a server whose
``next_page_token`` never ends are the run importer's (:mod:`mltop.core.importers.mlflow_rest`).
Aliases come with the models (``model-versions/search`` does not fill them). A server whose
registry is disabled answers 404: that is one line, and its runs are imported as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from mltop.core.common.httpclient import RemoteError
from mltop.core.entities import ModelVersion, RegisteredModel
from mltop.core.importers import mlflow_rest as tracking
from mltop.core.importers import mlflow_rest_client as rest_client
from mltop.core.registry import fields

KIND = tracking.KIND
MODELS_PAGE = 1_000  # MLflow's ceiling for registered-models/search
VERSIONS_PAGE = 10_000


class NoRegistry(Exception):
    """The server has no model registry; ``str()`` is the one line to report."""


def _pages(
    client: tracking.MlflowRestClient, endpoint: str, key: str, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """One registry listing, paged with ``page_token`` through the tracking client's guard
    against a server whose pages never end."""

    def fetch(token: str | None) -> Any:
        params: dict[str, Any] = {"max_results": page_size}
        if token:
            params["page_token"] = token
        return client.http.get_json(f"{rest_client.API}/{endpoint}", params, what=endpoint)

    identity = rest_client.unseen(lambda row: json.dumps([row.get("name"), row.get("version")]))
    yield from rest_client.pages(fetch, endpoint, key, identity)


def _pairs(items: object, key: str, value: str) -> dict[str, str]:
    if not isinstance(items, list):
        return {}
    return {
        str(i.get(key)): str(i.get(value, ""))
        for i in items
        if isinstance(i, dict) and i.get(key) is not None
    }


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
    digest.update(json.dumps([raw_models, raw_versions], sort_keys=True).encode())
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
    return models, versions, digest.hexdigest()

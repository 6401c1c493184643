"""The model registry read from each MLflow source, checked field by field against MLflow's client.

The stores were written by the real MLflow 3.17.2 and read back through ``MlflowClient`` into
the oracles (tests/fixtures/mlflow-registry/PROVENANCE.md). The REST reader runs against a real
``mlflow server`` over a copy of the SQLite store; MLflow's client then adds versions to it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import mlflow  # noqa: F401  (a test dependency: the `test` extra installs it)
import mlflow_server
import pytest
from mlflow.tracking import MlflowClient

from mltop.core import cli
from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport
from mltop.core.importers import mlflow_rest, mlflow_rest_client
from mltop.core.registry import mlflow_rest as registry_rest
from mltop.core.registry import sync as registry_sync
from mltop.core.store import Store, open_memory_store, open_store

FIXTURE = Path(__file__).parent / "fixtures" / "mlflow-registry"


def _extract(name: str, dest: Path) -> Path:
    with tarfile.open(FIXTURE / name) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _oracle(store: str) -> dict:
    return json.loads((FIXTURE / f"oracle_{store}.json").read_text())


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def assert_matches_oracle(store: Store, oracle: dict, *, rest: bool = False) -> None:
    """Every model and live version equals what MlflowClient read, field by field."""
    live = {(v.name, v.version): v for v in store.model_versions() if not v.deleted}
    expected = {(o["name"], o["version"]): o for o in oracle["model_versions"]}
    assert set(live) == set(expected)
    for key, o in expected.items():
        v = live[key]
        assert v.run_native_id == o["run_id"], key
        assert v.uri == o["source"], key
        assert v.status == o["status"], key
        assert v.status_message == o["status_message"], key
        assert (v.stage or "None") == o["current_stage"], key
        assert sorted(v.aliases) == sorted(o["aliases"]), key
        assert dict(v.tags) == o["tags"], key
        assert v.description == o["description"], key
        assert v.model_id == o["model_id"], key
        assert v.user_id == o["user_id"], key
        assert _ms(v.created) == o["creation_timestamp"], key
        assert _ms(v.updated) == o["last_updated_timestamp"], key
        # The version's run is the imported run MLflow names.
        assert v.run_id is not None, key
        run = store.run(v.run_id)
        assert run is not None and run.native_id == o["run_id"], key
    models = {m.name: m for m in store.registered_models()}
    assert set(models) == {o["name"] for o in oracle["registered_models"]}
    for o in oracle["registered_models"]:
        m = models[o["name"]]
        assert m.description == o["description"]
        assert dict(m.tags) == o["tags"]
        assert dict(m.aliases) == o["aliases"]
        assert _ms(m.created) == o["creation_timestamp"]
        assert _ms(m.updated) == o["last_updated_timestamp"]
        versions = [v.version for v in store.model_versions(o["name"], deleted=False)]
        assert sorted(versions, key=int) == sorted(o["versions"], key=int)
    if not rest:  # the API hides deleted versions; the stores keep them, flagged
        deleted = [(v.name, v.version) for v in store.model_versions() if v.deleted]
        assert deleted == [("diabetes-regressor", "2")]


def test_sqlite_store_registry_matches_mlflow_client(tmp_path):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    store = open_memory_store()
    report = ingest(root, store)
    assert report.problems == []
    assert_matches_oracle(store, _oracle("sqlite"))


def test_file_store_registry_matches_mlflow_client(tmp_path):
    root = _extract("file-store.tar.gz", tmp_path)
    store = open_memory_store()
    report = ingest(root, store)
    assert report.problems == []
    assert_matches_oracle(store, _oracle("filestore"))


def test_unchanged_registry_is_not_read_again(tmp_path, monkeypatch):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    store = open_memory_store()
    ingest(root, store)
    reads: list[Path] = []
    real = registry_sync.mlflow_sqlite.read_database
    monkeypatch.setattr(
        registry_sync.mlflow_sqlite, "read_database", lambda db: reads.append(db) or real(db)
    )
    ingest(root, store)
    assert reads == []
    # A change to the registry (a new alias written by the real sqlite3 library) is read.
    with sqlite3.connect(root / "sqlite" / "mlflow.db") as con:
        con.execute(
            "INSERT INTO registered_model_aliases VALUES ('staging', 2, 'iris-classifier', "
            "'default')"
        )
    ingest(root, store)
    assert len(reads) == 1
    v2 = next(v for v in store.model_versions("iris-classifier") if v.version == "2")
    assert v2.aliases == ("staging",)


def test_registry_of_a_deleted_store_is_forgotten(tmp_path):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    store = open_memory_store()
    ingest(root, store)
    assert store.registered_models()
    (root / "sqlite" / "mlflow.db").unlink()
    ingest(root, store)
    assert store.registered_models() == [] and store.model_versions() == []


# -- bad input ---------------------------------------------------------------------------------


def test_store_without_registry_tables_is_one_line_and_runs_still_import(tmp_path):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    db = root / "sqlite" / "mlflow.db"
    # An MLflow before the registry had none of its tables: drop them from a copy.
    with sqlite3.connect(db) as con:
        for table in (
            "registered_model_aliases", "registered_model_tags", "model_version_tags",
            "model_versions", "registered_models",
        ):  # fmt: skip
            con.execute(f"DROP TABLE {table}")
    store = open_memory_store()
    report = ingest(root, store)
    assert report.runs_added == 9
    assert [p.path for p in report.problems] == [str(db)]
    message = report.problems[0].message
    assert "no model registry tables" in message and "runs imported" in message
    assert store.registered_models() == []


def test_truncated_meta_yaml_is_one_line_and_the_rest_is_read(tmp_path):
    root = _extract("file-store.tar.gz", tmp_path)
    meta = root / "filestore" / "mlruns" / "models" / "iris-classifier" / "version-2" / "meta.yaml"
    text = meta.read_bytes()
    meta.write_bytes(text[: len(text) // 3] + b"\nsource: 'models:/m-")
    store = open_memory_store()
    report = ingest(root, store)
    assert report.runs_added == 9
    assert [p.path for p in report.problems] == [str(meta)]
    assert "not valid YAML" in report.problems[0].message
    versions = {(v.name, v.version) for v in store.model_versions()}
    assert ("iris-classifier", "2") not in versions
    assert ("iris-classifier", "3") in versions and ("diabetes-regressor", "1") in versions


def test_registry_disabled_server_is_one_line_and_runs_still_import(tmp_path):
    # No real mlflow server can run with its registry switched off, so a scripted server serves
    # the real server's captured run listings and its real 404 body for everything else.
    from test_mlflow_rest_faults import EXPERIMENTS, RUNS, fixture_bytes, reply, scripted_server

    with scripted_server() as fake:
        fake.route(EXPERIMENTS, reply(200, fixture_bytes("small-experiments-search")))
        fake.route(RUNS, reply(200, fixture_bytes("small-runs-search-all")))
        fake.route(
            f"{mlflow_rest_client.API}/registered-models/search",
            reply(404, fixture_bytes("error-unknown-endpoint"), "text/html; charset=utf-8"),
        )
        store = open_memory_store()
        report = ImportReport()
        mlflow_rest.sync_server(store, fake.url, report, histories=False)
        registry_sync.sync_server(store, fake.url, report)
    assert report.runs_added > 0
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.path == fake.url
    assert "no model registry" in problem.message and "404" in problem.message
    assert store.registered_models() == []


# -- a real mlflow server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("registry-server")
    root = _extract("sqlite-store.tar.gz", work)
    with mlflow_server.mlflow_server(root / "sqlite" / "mlflow.db", work) as url:
        yield url, work


def test_server_registry_matches_mlflow_client(server):
    url, _ = server
    store = open_memory_store()
    report = ImportReport()
    mlflow_rest.sync_server(store, url, report, histories=False)
    registry_sync.sync_server(store, url, report)
    assert report.problems == []
    assert_matches_oracle(store, _oracle("sqlite"), rest=True)


def test_server_registry_is_read_whole_one_version_per_page(server):
    url, _ = server
    with mlflow_rest.connect(url) as client:
        models, versions, _ = registry_rest.read_server(client, models_page=1, versions_page=1)
    assert sorted(m.name for m in models) == ["diabetes-regressor", "iris-classifier"]
    assert len(versions) == 6 and len({(v.name, v.version) for v in versions}) == 6


def test_server_model_with_more_than_a_page_of_versions_is_read_whole(server):
    url, work = server
    client = MlflowClient(url)
    client.create_registered_model("many-versions")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1)[
        0
    ]
    for _ in range(120):
        client.create_model_version(
            "many-versions", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
    client.set_registered_model_alias("many-versions", "champion", "117")
    with mlflow_rest.connect(url) as rest:
        _, versions, _ = registry_rest.read_server(rest, versions_page=50)
    mine = [v for v in versions if v.name == "many-versions"]
    assert sorted(int(v.version) for v in mine) == list(range(1, 121))
    assert [v.version for v in mine if v.aliases] == ["117"]
    # And through the command line, as a CI job would read it.
    out = work / "models.json"
    with open(out, "w") as fh:
        code = cli.cmd_models(
            [str(work / "sqlite" / "artifacts"), "--mlflow", url, "--format", "json"], fh
        )
    assert code == 0
    data = json.loads(out.read_text())
    listed = [v for v in data["versions"] if v["name"] == "many-versions"]
    assert len(listed) == 120
    champion = next(v for v in listed if v["aliases"])
    assert champion["version"] == "117" and champion["run_id"] == run.info.run_id


# -- the command ---------------------------------------------------------------------------------


def test_models_command_json_is_one_object_per_version(tmp_path, capsys):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    out = tmp_path / "out.json"
    with open(out, "w") as fh:
        assert cli.cmd_models([str(root), "--format", "json"], fh) == 0
    data = json.loads(out.read_text())
    oracle = {(o["name"], o["version"]): o for o in _oracle("sqlite")["model_versions"]}
    for v in data["versions"]:
        if v["deleted"]:
            assert (v["name"], v["version"]) == ("diabetes-regressor", "2")
            continue
        o = oracle[(v["name"], v["version"])]
        for key in ("run_id", "source", "status", "current_stage", "description", "tags"):
            assert v[key] == o[key], (key, v["name"], v["version"])
        assert v["model_id"] is None and v["logged_model_id"] == o["model_id_from_source"]
        assert sorted(v["aliases"]) == sorted(o["aliases"])
    iris = next(m for m in data["models"] if m["name"] == "iris-classifier")
    assert iris["aliases"] == {"champion": "3", "challenger": "4"}
    assert iris["latest_version"] == "4" and iris["version_count"] == 4


def test_models_command_table_and_markdown(tmp_path):
    root = _extract("file-store.tar.gz", tmp_path)
    table = tmp_path / "table.txt"
    with open(table, "w") as fh:
        assert cli.cmd_models([str(root)], fh) == 0
    text = table.read_text()
    assert "@challenger v4  @champion v3" in text
    assert "logreg-C1 (iris-species)" in text and "Production" in text
    assert "(version deleted)" in text and "2 models, 6 versions" in text
    md = tmp_path / "table.md"
    with open(md, "w") as fh:
        assert cli.cmd_models([str(root), "--format", "md"], fh) == 0
    assert "| iris-classifier | v3 | @champion | Production | READY |" in md.read_text()


def test_registry_survives_reopening_the_store_file(tmp_path):
    root = _extract("sqlite-store.tar.gz", tmp_path / "proj")
    with open_store(root) as store:
        ingest(root, store)
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    with open_store(moved) as store:
        ingest(moved, store)
        assert [m.source for m in store.registered_models()] == [
            str(moved / "sqlite" / "mlflow.db")
        ] * 2
        assert all(v.run_id for v in store.model_versions(deleted=False))


# -- diff of model versions ----------------------------------------------------------------------


def _diff(argv: list[str], tmp_path: Path) -> tuple[int, str]:
    out = tmp_path / "diff.txt"
    with open(out, "w") as fh:
        code = cli.cmd_diff(argv, fh)
    return code, out.read_text()


def test_diff_of_aliases_compares_their_runs_with_the_same_gates(tmp_path):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    refs = ["models:/iris-classifier@champion", "models:/iris-classifier@challenger"]
    # @challenger (logreg-C10) loses 0.048 cv_accuracy against @champion (logreg-C1).
    code, text = _diff([*refs, "-C", str(root), "--fail-on", "cv_accuracy<-0.01"], tmp_path)
    assert code == 1
    assert "baseline: logreg-C1" in text and "logreg-C10" in text
    code, _ = _diff([*refs, "-C", str(root), "--fail-on", "val_accuracy<-0.01"], tmp_path)
    assert code == 0
    code, text = _diff(
        ["models:/iris-classifier/1", "models:/iris-classifier/2", "-C", str(root), "--json"],
        tmp_path,
    )
    assert code == 0
    names = [r["name"] for r in json.loads(text)["runs"]]
    assert names == ["logreg-C0.1", "sgd-alpha1e-3"]


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("models:/iris-classifier@prod", "has no alias 'prod' (aliases: @challenger, @champion)"),
        ("models:/iris/1", "no registered model named 'iris'"),
        ("models:/iris-classifier/9", "version 9 of 'iris-classifier' does not exist"),
        ("models:/diabetes-regressor/2", "version 2 of 'diabetes-regressor' was deleted"),
        ("models:/iris-classifier", "not a model version URI"),
    ],
)
def test_diff_of_an_unknown_model_version_is_one_line_and_exit_2(tmp_path, capsys, ref, says):
    root = _extract("sqlite-store.tar.gz", tmp_path)
    code = cli.main(["diff", "models:/iris-classifier@champion", ref, "-C", str(root)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err


# -- the runs filter -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('model = "iris-classifier"', {"logreg-C0.1", "sgd-alpha1e-3", "logreg-C1", "logreg-C10"}),
        ("alias = champion", {"logreg-C1", "ridge-a1"}),
        ('model ~ "^diab" and alias in (challenger)', {"ridge-a0.1"}),
        # gbr-40 made diabetes v2, which was deleted: it is no model's run any more.
        ("not model", {"ridge-a10", "gbr-40", "rf-depth3"}),
        ("alias", {"logreg-C1", "logreg-C10", "ridge-a1", "ridge-a0.1"}),
    ],
)
def test_runs_filter_on_registry_facts(tmp_path, text, expected):
    from mltop.core.runs.query import compile_query

    root = _extract("file-store.tar.gz", tmp_path)
    store = open_memory_store()
    ingest(root, store)
    assert {r.name for r in store.runs(compile_query(text))} == expected


# -- pipelines: the register phase and maturity --------------------------------------------------

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [model.pkl]
  evaluate:
    cmd: python evaluate.py
    deps: [model.pkl]
    metrics: [metrics.json]
"""


def _pipeline_project(tmp_path: Path, with_registry: bool) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "dvc.yaml").write_text(DVC_YAML)
    if with_registry:
        _extract("sqlite-store.tar.gz", root)
    return root


def test_registry_with_aliases_is_register_phase_and_maturity_evidence(tmp_path):
    from mltop.core.pipelines.model import Phase
    from mltop.core.pipelines.overview import build_overview
    from mltop.core.pipelines.registry_evidence import registry_evidence, with_registry

    root = _pipeline_project(tmp_path, with_registry=True)
    store = open_memory_store()
    ingest(root, store)
    overview = build_overview(root)
    assert "no model registry stage" in overview.comparison.maturity.missing
    comparison = with_registry(overview.comparison, registry_evidence(store, root))
    assert "no model registry stage" not in comparison.maturity.missing
    assert (
        "model registry with aliases: diabetes-regressor v3 @challenger v3 @champion v1; "
        "iris-classifier v4 @challenger v4 @champion v3" in comparison.maturity.evidence
    )
    package = next(r for r in comparison.rows if r.phase is Phase.PACKAGE)
    assert package.mlops_gap.startswith("no register stage; registry: diabetes-regressor v3")


def test_no_registry_is_a_maturity_gap(tmp_path):
    from mltop.core.pipelines.overview import build_overview
    from mltop.core.pipelines.registry_evidence import (
        NO_REGISTRY_GAP,
        registry_evidence,
        with_registry,
    )

    root = _pipeline_project(tmp_path, with_registry=False)
    store = open_memory_store()
    ingest(root, store)
    comparison = with_registry(build_overview(root).comparison, registry_evidence(store, root))
    assert NO_REGISTRY_GAP in comparison.maturity.missing
    assert not any("model registry" in line for line in comparison.maturity.evidence)


# -- DVC's model registry (GTO), from real git tags ----------------------------------------------

GTO_DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    outs: [models/churn.pkl]
artifacts:
  churn:
    path: models/churn.pkl
    type: model
    desc: Churn classifier
    labels: [tabular, gbm]
"""


def _git(repo: Path, *args: str, when: int | None = None) -> None:
    import os
    import subprocess

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    if when is not None:  # tags made in one second must still replay in the order made
        env["GIT_COMMITTER_DATE"] = env["GIT_AUTHOR_DATE"] = f"@{when} +0000"
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def test_gto_versions_and_stages_from_git_tags(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "dvc.yaml").write_text(GTO_DVC_YAML)
    (repo / ".dvc").mkdir()  # what `dvc init` leaves (DVC itself is not needed to read GTO)
    (repo / ".dvc" / "config").write_text("")
    _git(repo, "add", "dvc.yaml", ".dvc/config")
    _git(repo, "commit", "-q", "-m", "first model", when=1_796_000_000)
    _git(repo, "tag", "-a", "churn@v1.0.0", "-m", "first release", when=1_796_000_010)
    _git(repo, "tag", "-a", "churn#prod#1", "-m", "to prod", when=1_796_000_020)
    (repo / "train.py").write_text("print('v2')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "better model", when=1_796_000_100)
    _git(repo, "tag", "-a", "churn@v1.1.0", "-m", "second release", when=1_796_000_110)
    _git(repo, "tag", "-a", "churn#staging#2", "-m", "to staging", when=1_796_000_120)
    _git(repo, "tag", "-a", "churn#prod#3", "-m", "promote", when=1_796_000_130)
    _git(repo, "tag", "-a", "churn#staging!#4", "-m", "off staging", when=1_796_000_140)
    (repo / "README").write_text("x\n")
    _git(repo, "add", "README")
    _git(repo, "commit", "-q", "-m", "third", when=1_796_000_200)
    _git(repo, "tag", "-a", "churn@v1.2.0", "-m", "bad release", when=1_796_000_210)
    _git(repo, "tag", "-a", "churn@v1.2.0!", "-m", "deregistered", when=1_796_000_220)
    _git(repo, "tag", "v9.9.9", when=1_796_000_230)  # an ordinary release tag: not GTO's

    store = open_memory_store()
    report = ingest(repo, store)
    assert [p for p in report.problems if "registry" in p.message] == []
    (model,) = store.registered_models()
    assert (model.name, model.source_kind, model.description) == (
        "churn", "gto", "Churn classifier",
    )  # fmt: skip
    assert model.aliases == (("prod", "1.1.0"),)  # staging was unassigned, prod moved on
    assert dict(model.tags) == {"labels": "tabular, gbm", "path": "models/churn.pkl",
                                "type": "model"}  # fmt: skip
    versions = {v.version: v for v in store.model_versions("churn")}
    assert sorted(versions) == ["1.0.0", "1.1.0", "1.2.0"]
    assert versions["1.2.0"].deleted and not versions["1.1.0"].deleted
    assert versions["1.1.0"].aliases == ("prod",) and versions["1.0.0"].aliases == ()
    assert versions["1.0.0"].description == "first release"
    assert versions["1.0.0"].created == 1_796_000_010
    assert versions["1.1.0"].uri == "models/churn.pkl"
    from mltop.core.registry.resolve import resolve_ref

    assert resolve_ref(store, "models:/churn@prod").version == "1.1.0"
    assert resolve_ref(store, "models:/churn/v1.0.0").version == "1.0.0"
    # and the command line reads the same
    out = tmp_path / "models.json"
    with open(out, "w") as fh:
        assert cli.cmd_models([str(repo), "--format", "json"], fh) == 0
    data = json.loads(out.read_text())
    assert data["models"][0]["aliases"] == {"prod": "1.1.0"}
    assert data["models"][0]["latest_version"] == "1.1.0"


def test_live_watch_reads_a_registry_change_without_a_full_scan(tmp_path):
    from mltop.core.live.watch import Watcher

    root = _extract("sqlite-store.tar.gz", tmp_path)
    db = root / "sqlite" / "mlflow.db"
    store = open_memory_store()
    ingest(root, store)
    watcher = Watcher([root], store, lambda u: None)
    watcher.apply({str(db)})  # settles what the watcher knows
    with sqlite3.connect(db) as con:  # the real sqlite3 library moves @champion to v4
        con.execute(
            "UPDATE registered_model_aliases SET version = 4 "
            "WHERE name = 'iris-classifier' AND alias = 'champion'"
        )
    watcher.apply({str(db)})
    iris = next(m for m in store.registered_models() if m.name == "iris-classifier")
    assert dict(iris.aliases)["champion"] == "4"


def _client_oracle(client: MlflowClient) -> dict:
    """What MlflowClient reads of a registry, in the shape of the fixture's oracles."""
    models, versions = [], []
    for m in client.search_registered_models(max_results=1000):
        m = client.get_registered_model(m.name)
        found = client.search_model_versions(f"name = '{m.name}'", max_results=1000)
        models.append(
            {
                "name": m.name, "description": m.description, "tags": dict(m.tags),
                "aliases": {k: str(v) for k, v in m.aliases.items()},
                "creation_timestamp": m.creation_timestamp,
                "last_updated_timestamp": m.last_updated_timestamp,
                "versions": [str(v.version) for v in found],
            }
        )  # fmt: skip
        for v in found:
            v = client.get_model_version(m.name, v.version)
            versions.append(
                {
                    "name": v.name, "version": str(v.version), "run_id": v.run_id or None,
                    "source": v.source, "status": v.status, "status_message": v.status_message,
                    "current_stage": v.current_stage, "description": v.description,
                    "tags": dict(v.tags), "aliases": list(v.aliases), "model_id": v.model_id,
                    "user_id": v.user_id, "creation_timestamp": v.creation_timestamp,
                    "last_updated_timestamp": v.last_updated_timestamp,
                }
            )  # fmt: skip
    return {"registered_models": models, "model_versions": versions}


def test_registry_edited_by_mlflow_matches_its_client(tmp_path):
    """A rename, a version with no run, a new model with no versions, a moved alias and a
    version tag with an empty value, made by MLflow's client, then read by both."""
    root = _extract("sqlite-store.tar.gz", tmp_path)
    client = MlflowClient(f"sqlite:///{root / 'sqlite' / 'mlflow.db'}")
    client.rename_registered_model("iris-classifier", "iris-species-classifier")
    client.create_registered_model("empty-model")
    client.create_model_version("diabetes-regressor", "s3://bucket/model", description="")
    client.set_registered_model_alias("diabetes-regressor", "champion", "3")
    client.set_model_version_tag("diabetes-regressor", "4", "note", "")
    store = open_memory_store()
    report = ingest(root, store)
    assert report.problems == []
    oracle = _client_oracle(client)
    live = {(v.name, v.version): v for v in store.model_versions() if not v.deleted}
    expected = {(o["name"], o["version"]): o for o in oracle["model_versions"]}
    assert set(live) == set(expected)
    for key, o in expected.items():
        v = live[key]
        got = {
            "name": v.name, "version": v.version, "run_id": v.run_native_id,
            "source": v.uri, "status": v.status,
            "status_message": v.status_message, "current_stage": v.stage or "None",
            "description": v.description, "tags": dict(v.tags), "aliases": sorted(v.aliases),
            "model_id": v.model_id, "user_id": v.user_id, "creation_timestamp": _ms(v.created),
            "last_updated_timestamp": _ms(v.updated),
        }  # fmt: skip
        assert got == {**o, "aliases": sorted(o["aliases"])}, key
    models = {m.name: m for m in store.registered_models()}
    assert set(models) == {o["name"] for o in oracle["registered_models"]}
    for o in oracle["registered_models"]:
        m = models[o["name"]]
        assert (m.description, dict(m.tags), dict(m.aliases)) == (
            o["description"], o["tags"], o["aliases"],
        )  # fmt: skip
    # The renamed model keeps its runs; the version with no run says so on the Models screen.
    assert all(v.run_id for v in store.model_versions("iris-species-classifier"))
    assert store.model_versions("empty-model") == []

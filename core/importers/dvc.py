"""Importer for DVC projects: the workspace, and every experiment DVC keeps in git.

A DVC project (a folder with ``.dvc/``) becomes these runs, all in one experiment named after
the project folder:

* ``workspace`` (source kind ``dvc``): params from ``params.yaml`` (``train.lr``) and the other
  params files the pipeline names, final values from the metrics files declared in
  ``dvc.yaml`` (stage ``metrics:`` outputs and the top-level ``metrics:`` list), and histories
  from the DVCLive folders behind them (``<dir>/plots/metrics/**/*.tsv``). While ``dvc exp run``
  trains, the TSVs grow and are read incrementally.
* one run per experiment ref ``refs/exps/<baseline 2>/<baseline 38>/<name>`` (kind
  ``dvc-exp``): the same files as they are in the experiment's commit, read with the ``git``
  command line (no DVC needed); its parent is the baseline commit's run.
* queued experiments (the ``refs/exps/celery/stash`` reflog, status SCHEDULED, params only, as
  ``dvc exp show`` gives them) and failed ones (``refs/exps/celery/failed``, FAILED).
* the baseline commits of those experiments and HEAD (kind ``dvc``), named by a branch or tag
  pointing at them (DVC's naming), else by their short sha.

Git is asked only when a ref file changed since the last scan (a few stats), every call has a
timeout, and a commit already imported is not read again: refs point at immutable commits.
Metric names keep DVCLive's ``/`` (``train/loss``); ``dvc exp show`` prints the same metric as
``train.loss``. What ``dvc.yaml`` names is read by :mod:`~mltop.core.importers.dvc_layout`, git by
:mod:`~mltop.core.importers.dvc_git`; this module walks the workspace and the experiments. The
workspace starts at the earliest trusted timestamp of its DVCLive histories
(:mod:`mltop.core.importers.run_start`); an experiment at its commit's time.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from mltop.core import tabular
from mltop.core.common.regular_files import read_limited
from mltop.core.entities import (
    FileState,
    ImportReport,
    Run,
    RunRecord,
    SourceRef,
    Status,
    stable_id,
)
from mltop.core.importers.base import Change, Detection, classify, file_state
from mltop.core.importers.dvc_git import (
    EXP_KIND,
    KIND,
    MAX_RWLOCK,
    ExpRef,
    Git,
    GitError,
    Revision,
    find_git_dir,
    git_runs,
    git_text,
    head_sha,
    ref_files,
)
from mltop.core.importers.dvc_layout import (
    PARAMS_FILE,
    Layout,
    entries,
    layout,
    metrics_table,
    params_of,
    plots_dir,
)
from mltop.core.importers.dvclive import (
    MAX_DOC_BYTES,
    FormatError,
    TsvFile,
    TsvSource,
    first_line,
    header_keys,
    parse_document,
    parse_tsvs,
    read_doc_file,
    read_tsv_files,
    tsv_paths,
    tsv_prefix,
    write_tsv_run,
)
from mltop.core.importers.run_start import kept_start, start_of_history
from mltop.core.store import RunQuery, Store

DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"
WORKSPACE = "workspace"
CLAIMED = frozenset({DVC_YAML, DVC_LOCK, PARAMS_FILE, ".dvcignore"})


# Each id helper takes the project root as :meth:`Store.id_path` gives it (a Path in tests over
# an in-memory store, which hashes it whole).
def project_id(root: Path | str) -> str:
    return stable_id(KIND, str(root))


def workspace_id(root: Path | str) -> str:
    return stable_id(KIND, str(root), WORKSPACE)


def commit_run_id(root: Path | str, sha: str) -> str:
    return stable_id(KIND, str(root), "commit", sha)


def exp_run_id(root: Path | str, key: str) -> str:
    return stable_id(EXP_KIND, str(root), key)


# -- the importer --------------------------------------------------------------------------------


class DvcImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        names = set(filenames)
        if not names & {DVC_YAML, DVC_LOCK, ".dvcignore"}:
            return None
        if not (dirpath / ".dvc").is_dir():
            return None
        return Detection([SourceRef(KIND, dirpath)], claimed=set(CLAIMED & names))

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        for ref in refs:
            root = ref.location
            try:
                self._workspace(store, root, known, report)
            except OSError as exc:
                report.problem(root, f"cannot read DVC workspace ({exc.strerror or exc})")
            except Exception as exc:  # the experiments are still worth reading
                report.problem(root, f"DVC workspace not imported ({type(exc).__name__}: {exc})")
            try:
                self._git(store, root, report)
            except GitError as exc:
                report.problem(root, str(exc))
            except OSError as exc:
                report.problem(root, f"cannot read DVC experiments ({exc.strerror or exc})")
            except Exception as exc:  # one odd project must not stop the others
                report.problem(root, f"DVC experiments not imported ({type(exc).__name__}: {exc})")

    # -- workspace -------------------------------------------------------------------------------

    def _workspace(
        self, store: Store, root: Path, known: dict[str, FileState], report: ImportReport
    ) -> None:
        source = str(root)
        id_root = store.id_path(root)
        run_id = workspace_id(id_root)
        yaml_paths = [DVC_YAML] if (root / DVC_YAML).is_file() else []
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                if not entry.name.startswith(".") and (Path(entry.path) / DVC_YAML).is_file():
                    yaml_paths.append(f"{entry.name}/{DVC_YAML}")

        def exists(rel: str) -> bool:
            return (root / rel).exists()

        yamls: dict[str, object] = {}
        for rel in yaml_paths:
            yamls[rel] = read_doc_file(root / rel, report)
        lay = layout(yamls, exists)
        for rel, message in lay.problems:
            report.problem(root / rel, message)
        tsvs: list[tuple[Path, str]] = []
        for live in lay.live_dirs:
            tsvs.extend(tsv_paths(root / plots_dir(live)))
        docs = [rel for rel in [*yaml_paths, *lay.params, *lay.metrics] if (root / rel).is_file()]
        files = [root / rel for rel in dict.fromkeys(docs)] + [p for p, _ in tsvs]
        changes = {str(p): classify(p, known.get(str(p))) for p in files}
        gone = [p for p, s in known.items() if s.run_id == run_id and p not in changes]
        if not gone and all(c is Change.UNCHANGED for c, _ in changes.values()):
            return

        existed = store.run(run_id)
        full = (
            existed is None
            or existed.start_time is None  # no trusted start yet: only a whole read finds it
            or any(p.endswith(".tsv") for p in gone)
            or any(changes[str(p)][0] is Change.REPLACED for p, _ in tsvs)
        )
        batch = read_tsv_files(
            [TsvFile(p, run_id, prefix, known.get(str(p)), source) for p, prefix in tsvs],
            {run_id} if full else set(),
            report,
        )
        history = batch.keys.get(run_id, set())
        params = params_of((rel, read_doc_file(root / rel, report)) for rel in lay.params)
        metric_docs = [
            (rel, read_doc_file(root / rel, report), st.st_mtime)
            for rel in lay.metrics
            if (st := changes.get(str(root / rel), (None, None))[1]) is not None
        ]
        mtimes = [st.st_mtime for _, st in changes.values() if st is not None]
        updated = max(mtimes) if mtimes else None
        json_points, json_keys = metrics_table(metric_docs, run_id, history)
        stamps = batch.points.column("ts") if full else None
        start = start_of_history(stamps, kept_start(store, existed), mtimes)
        git_dir = find_git_dir(root)
        record = RunRecord(
            id=run_id,
            source_kind=KIND,
            location=source,
            name=WORKSPACE,
            status=_workspace_status(root),
            experiment_id=project_id(id_root),
            native_id=WORKSPACE,
            start_time=start.start,
            end_time=updated,
            git_commit=head_sha(git_dir) if git_dir else None,
            updated=updated,
            source=source,
        )
        states = list(batch.states)
        for rel in dict.fromkeys(docs):
            _, st = changes[str(root / rel)]
            if st is not None:
                states.append(file_state(root / rel, st, st.st_size, run_id, source))
        experiment = (project_id(id_root), KIND, source, root.name, root.name)
        added = write_tsv_run(
            store, experiment, record, params, start.tags(run_id), full=full, batch=batch,
            json_points=json_points, json_keys=json_keys, gone=gone, states=states,
        )  # fmt: skip
        report.add(KIND, runs=0 if existed else 1, points=added)

    # -- experiments in git ----------------------------------------------------------------------

    def _git(self, store: Store, root: Path, report: ImportReport) -> None:
        git_dir = find_git_dir(root)
        if git_dir is None:
            return
        source = str(root)
        old = {
            p: s
            for p, s in store.file_states(source).items()
            if s.run_id is None and Path(p).is_relative_to(git_dir)
        }
        current = {}
        for path in ref_files(git_dir):
            with contextlib.suppress(OSError):
                current[str(path)] = path.stat()
        if old and set(old) == set(current) and all(_same(old[p], st) for p, st in current.items()):
            return

        git = Git(root)
        id_root = store.id_path(root)
        runs = git_runs(git, git_dir, report)
        prefix = git.run("rev-parse", "--show-prefix").decode("utf-8", "replace").strip()
        existing = {
            r.id: r
            for r in store.runs(RunQuery("r.source = ?", (source,)))
            if r.source_kind in (KIND, EXP_KIND)
        }
        wanted: dict[str, ExpRef] = {}
        for item in runs:
            run_id = (
                commit_run_id(id_root, item.sha)
                if item.kind == KIND
                else exp_run_id(id_root, item.key)
            )
            wanted[run_id] = item
        parents = {sha: commit_run_id(id_root, sha) for sha in {i.baseline for i in runs} if sha}
        to_read = {
            run_id: item
            for run_id, item in wanted.items()
            if not _unchanged(existing.get(run_id), item, parents)
        }
        gone = [r for r in existing if r not in wanted and r != workspace_id(id_root)]
        records, params, tags, points = self._read_revisions(
            git, root, prefix, to_read, parents, report, project_id(id_root)
        )
        states = [file_state(Path(p), st, st.st_size, None, source) for p, st in current.items()]
        workspace = existing.get(workspace_id(id_root))
        head = head_sha(git_dir)
        with store.transaction():
            store.put_experiments([(project_id(id_root), KIND, source, root.name, root.name)])
            if gone:
                store.delete_runs(gone)
            store.put_runs(source, records, params, tags)
            read_ids = [r.id for r in records]
            store.delete_points(read_ids)
            added = store.add_points(points)
            store.refresh_summaries(read_ids)
            if workspace is not None and head and workspace.git_commit != head:
                self._repoint_workspace(store, workspace, head)
            store.delete_files([p for p in old if p not in current])
            store.put_files(source, states)
        for kind in (KIND, EXP_KIND):
            new = sum(1 for r in records if r.id not in existing and r.source_kind == kind)
            report.add(kind, runs=new, points=added if kind == EXP_KIND else 0)

    def _repoint_workspace(self, store: Store, run: Run, head: str) -> None:
        record = _record_of(run, git_commit=head)
        store.put_runs(
            run.location,
            [record],
            [(run.id, k, v) for k, v in store.params(run.id).items()],
            [(run.id, k, v) for k, v in store.tags(run.id).items()],
        )

    def _read_revisions(
        self,
        git: Git,
        root: Path,
        prefix: str,
        items: dict[str, ExpRef],
        parents: dict[str, str],
        report: ImportReport,
        experiment: str,
    ) -> tuple[list[RunRecord], list, list, pa.Table]:
        revisions: dict[str, Revision] = {}
        for item in items.values():
            if item.sha in revisions:
                continue
            try:
                listing = git.run("ls-tree", "-r", "-z", "--name-only", item.sha, "--", ".")
            except GitError as exc:
                report.problem(root, f"{item.ref}: cannot list commit {item.sha[:7]} ({exc})")
                continue
            paths = set()
            for raw in listing.split(b"\x00"):
                if raw:
                    name = raw.decode("utf-8", errors="replace")
                    paths.add(name[len(prefix) :] if prefix and name.startswith(prefix) else name)
            dirs = {posixpath.dirname(p) for p in paths}
            for d in list(dirs):
                while d:
                    d = posixpath.dirname(d)
                    dirs.add(d)
            revisions[item.sha] = Revision(paths, dirs)

        def fetch(wants: list[tuple[str, str]]) -> None:
            contents = git.blobs([f"{sha}:{prefix}{path}" for sha, path in wants])
            for (sha, path), data in zip(wants, contents, strict=True):
                if data is None:
                    continue
                try:
                    revisions[sha].docs[path] = parse_document(data, path)
                except FormatError as exc:
                    report.problem(f"{root}@{sha[:7]}:{path}", str(exc))

        fetch(
            [
                (sha, p)
                for sha, rev in revisions.items()
                for p in rev.paths
                if posixpath.basename(p) == DVC_YAML or p == DVC_LOCK
            ]
        )
        layouts: dict[str, Layout] = {}
        second: list[tuple[str, str]] = []
        for sha, rev in revisions.items():
            yamls = {p: d for p, d in rev.docs.items() if posixpath.basename(p) == DVC_YAML}
            lay = layout(yamls, rev.exists)
            layouts[sha] = lay
            for rel, message in lay.problems:
                report.problem(f"{root}@{sha[:7]}:{rel}", message)
            second.extend((sha, p) for p in [*lay.params, *lay.metrics] if p in rev.paths)
        fetch(second)
        tsv_specs: list[tuple[str, str, str]] = []  # sha, path, prefix
        for sha, lay in layouts.items():
            for live in lay.live_dirs:
                base = plots_dir(live) + "/"
                for p in sorted(revisions[sha].paths):
                    if p.startswith(base) and p.endswith(".tsv"):
                        tsv_specs.append((sha, p, tsv_prefix(p[len(base) :])))

        records: list[RunRecord] = []
        params: list[tuple[str, str, object]] = []
        tags: list[tuple[str, str, object]] = []
        tables: list[pa.Table] = []
        sources: list[TsvSource] = []
        temps: list[str] = []
        try:
            wanted_tsvs = {
                (sha, p): prefix_
                for sha, p, prefix_ in tsv_specs
                if any(i.sha == sha and i.read_metrics for i in items.values())
            }
            blobs = git.blobs([f"{sha}:{prefix}{p}" for sha, p in wanted_tsvs])
            tsv_files: dict[str, list[tuple[str, str, str]]] = {}
            for (sha, p), data in zip(wanted_tsvs, blobs, strict=True):
                if data is None:
                    continue
                temp = tabular.bytes_to_tempfile(data, ".tsv")
                temps.append(temp)
                tsv_files.setdefault(sha, []).append((temp, p, wanted_tsvs[(sha, p)]))
            for run_id, item in items.items():
                rev = revisions.get(item.sha)
                if rev is None:
                    continue
                lay = layouts[item.sha]
                run_params = params_of((p, rev.docs.get(p)) for p in lay.params)
                params.extend((run_id, k, v) for k, v in run_params.items())
                tags.extend((run_id, k, v) for k, v in _tags(item).items())
                history: set[str] = set()
                if item.read_metrics:
                    for temp, path, prefix_ in tsv_files.get(item.sha, []):
                        sources.append(
                            TsvSource(temp, run_id, prefix_, f"{root}@{item.sha[:7]}:{path}")
                        )
                        history.update(_tsv_keys(temp, prefix_))
                    docs = [
                        (
                            p,
                            rev.docs.get(p) if p in rev.docs else self._cached(root, rev, p),
                            item.time,
                        )
                        for p in lay.metrics
                    ]
                    table, _ = metrics_table(docs, run_id, history)
                    tables.append(table)
                if (
                    item.kind == KIND
                    and item.sha not in parents
                    and not run_params
                    and not (lay.metrics or tsv_files.get(item.sha))
                ):
                    continue  # HEAD of a repository with nothing DVC tracks: not a run
                records.append(
                    RunRecord(
                        id=run_id,
                        source_kind=item.kind,
                        location=str(root),
                        name=item.name,
                        status=item.status,
                        experiment_id=experiment,
                        native_id=item.sha,
                        start_time=item.time,
                        end_time=item.time if item.status is not Status.SCHEDULED else None,
                        parent_id=parents.get(item.baseline) if item.baseline else None,
                        git_commit=item.sha,
                        updated=item.time,
                        source=str(root),
                    )
                )
            tables.append(parse_tsvs(sources, report))
        finally:
            for temp in temps:
                tabular.remove_quietly(temp)
        points = pa.concat_tables(tables) if tables else tabular.empty_points()
        return records, params, tags, points

    def _cached(self, root: Path, rev: Revision, path: str) -> object:
        """A metrics file DVC keeps in its cache (``cache: true``), found through dvc.lock."""
        lock = rev.docs.get(DVC_LOCK)
        stages = lock.get("stages") if isinstance(lock, dict) else None
        if not isinstance(stages, dict):
            return None
        for stage in stages.values():
            if not isinstance(stage, dict):
                continue
            for out in entries(stage.get("outs")):
                if not isinstance(out, dict) or out.get("path") != path:
                    continue
                digest = out.get("md5") or out.get("hash")
                if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{32}", digest):
                    continue
                for cache in ("files/md5", ""):
                    blob = root / ".dvc" / "cache" / cache / digest[:2] / digest[2:]
                    if blob.is_file():
                        with contextlib.suppress(OSError, FormatError):
                            return parse_document(
                                read_limited(blob, MAX_DOC_BYTES, "a params or metrics file"), path
                            )
        return None


# -- helpers -------------------------------------------------------------------------------------


def _same(old: FileState, st: os.stat_result) -> bool:
    return old.size == st.st_size and old.mtime == st.st_mtime and old.inode == st.st_ino


def _tags(item: ExpRef) -> dict[str, str]:
    out = {"dvc.rev": item.sha}
    if item.baseline:
        out["dvc.baseline"] = item.baseline
    if item.kind == EXP_KIND:
        out["dvc.ref"] = item.ref
    if item.status is Status.SCHEDULED:
        out["dvc.queue"] = "queued"
    elif item.status is Status.FAILED:
        out["dvc.queue"] = "failed"
    return out


def _tsv_keys(path: str, prefix: str) -> list[str]:
    with contextlib.suppress(OSError):
        return header_keys(first_line(Path(path)), prefix)
    return []


def _unchanged(run: Run | None, item: ExpRef, parents: dict[str, str]) -> bool:
    if run is None:
        return False
    parent = parents.get(item.baseline) if item.baseline else None
    return (
        run.native_id == item.sha
        and run.name == item.name
        and run.status == item.status
        and run.parent_id == parent
        and run.source_kind == item.kind
    )


def _record_of(run: Run, **changes: object) -> RunRecord:
    fields = {
        "id": run.id,
        "source_kind": run.source_kind,
        "location": run.location,
        "name": run.name,
        "status": Status.parse(run.status),
        "experiment_id": run.experiment_id,
        "native_id": run.native_id,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "parent_id": run.parent_id,
        "git_commit": run.git_commit,
        "host": run.host,
        "lifecycle": run.lifecycle,
        "artifact_uri": run.artifact_uri,
        "error": run.error,
        "updated": run.updated,
        "source": run.location,
    }
    fields.update(changes)
    return RunRecord(**fields)  # type: ignore[arg-type]


def _workspace_status(root: Path) -> Status:
    """RUNNING while a ``dvc repro``/``exp run`` holds a write lock on the pipeline."""
    try:
        lock = json.loads(git_text(root / ".dvc" / "tmp" / "rwlock", MAX_RWLOCK))
    except (OSError, ValueError, UnicodeDecodeError):
        return Status.FINISHED
    return Status.RUNNING if isinstance(lock, dict) and lock.get("write") else Status.FINISHED


IMPORTER = DvcImporter()

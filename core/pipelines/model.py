"""One stage-graph model that every pipeline format is parsed into.

CI definitions (GitHub Actions, GitLab CI, Azure Pipelines) and ML pipeline definitions (dvc.yaml,
Kubeflow, Argo, Tekton) differ in vocabulary but all describe units of work and the order between
them. Putting them in one shape is what lets the side-by-side view line a DevOps pipeline up with
an MLOps one by lifecycle phase. The values are frozen: parsers build them once, phase assignment
and status attachment make new copies with :func:`dataclasses.replace`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from mltop.core.common.sanitize import inert

PipelineKind = Literal["devops", "mlops"]


class Phase(StrEnum):
    """The canonical lifecycle phases (ARCHITECTURE.md), in the order work flows through them."""

    SOURCE = "source"
    BUILD = "build"
    TEST = "test"
    VERIFY = "verify"
    PACKAGE = "package"
    DEPLOY = "deploy"
    MONITOR = "monitor"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def rank(self) -> int:
        return list(Phase).index(self)

    @classmethod
    def parse(cls, text: object) -> Phase | None:
        """A phase from its id, either half of its label, or the label itself (any case)."""
        key = " ".join(str(text).strip().lower().replace("_", " ").split())
        return _ALIASES.get(key)


_LABELS = {
    Phase.SOURCE: "source / data",
    Phase.BUILD: "build / prepare",
    Phase.TEST: "test / train",
    Phase.VERIFY: "verify / evaluate",
    Phase.PACKAGE: "package / register",
    Phase.DEPLOY: "deploy",
    Phase.MONITOR: "monitor",
}

_ALIASES: dict[str, Phase] = {}
for _phase, _label in _LABELS.items():
    _ALIASES[_phase.value] = _phase
    _ALIASES[_label] = _phase
    _ALIASES[_label.replace(" ", "")] = _phase
    for _part in _label.split("/"):
        _ALIASES[_part.strip()] = _phase
_ALIASES.update(
    {
        "data": Phase.SOURCE,
        "ingest": Phase.SOURCE,
        "training": Phase.TEST,
        "evaluation": Phase.VERIFY,
        "eval": Phase.VERIFY,
        "validate": Phase.VERIFY,
        "registry": Phase.PACKAGE,
        "publish": Phase.PACKAGE,
        "release": Phase.DEPLOY,
        "monitoring": Phase.MONITOR,
    }
)


@dataclass(frozen=True)
class Matrix:
    """How many copies of a stage a matrix (or loop, or ``foreach``) runs, without running them.

    ``combinations`` is None when the matrix comes from an expression only known at run time.
    ``legs`` holds a label per combination only while that stays small (see MATRIX_EXPAND_CAP);
    beyond that the matrix is summarised by its axes and count, never expanded.
    """

    combinations: int | None
    axes: tuple[tuple[str, int], ...] = ()
    legs: tuple[str, ...] = ()
    expanded: bool = False
    dynamic: str | None = None
    note: str = ""

    def summary(self) -> str:
        if self.combinations is None:
            what = self.dynamic or "a run-time expression"
            return f"matrix from {what}"
        axes = " × ".join(f"{name}({n})" for name, n in self.axes)
        text = f"{self.combinations} combination{'s' if self.combinations != 1 else ''}"
        if axes:
            text += f": {axes}"
        if self.note:
            text += f" ({self.note})"
        return text


MATRIX_EXPAND_CAP = 256
"""Above this many combinations a matrix is summarised, never expanded (GitHub's own job cap)."""

MAX_STAGES = 5_000
MAX_EDGES = 100_000
MAX_PROBLEMS = 50
"""Bounds that keep a generated or hostile file from turning into a graph nobody can draw (a
GitLab file of thousands of jobs in two stages would otherwise mean millions of stage-order
edges); real pipelines stay far below them."""


@dataclass(frozen=True)
class Stage:
    """One unit of work: a CI job, a DVC stage, a Kubeflow/Argo/Tekton task.

    ``needs`` repeats the incoming edges by id so a stage can be read on its own; ``group`` is the
    container it sits in (a GitLab/Azure stage name, a parent DAG or loop, Tekton ``finally``).
    """

    id: str
    name: str
    kind: str = "job"
    commands: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    matrix: Matrix | None = None
    group: str | None = None
    environment: str | None = None
    phase: Phase | None = None
    phase_reason: str = ""
    origin: str = ""
    """The file the stage comes from (relative to the repository) when a side joins several."""


@dataclass(frozen=True)
class Edge:
    """``source`` finishes before ``target`` starts; ``kind`` says why (needs, stage order...)."""

    source: str
    target: str
    kind: str = "needs"


@dataclass(frozen=True)
class Reference:
    """Something the definition points at but mltop does not read: an include, a template, a
    reusable workflow. Shown as-is so the user knows the graph is not the whole story."""

    kind: str
    target: str
    stage: str | None = None


@dataclass(frozen=True)
class Pipeline:
    kind: PipelineKind
    format: str
    path: Path
    name: str
    stages: tuple[Stage, ...] = ()
    edges: tuple[Edge, ...] = ()
    references: tuple[Reference, ...] = ()
    problems: tuple[str, ...] = ()
    members: tuple[Pipeline, ...] = ()
    """The files a repository's side is joined from (see core/pipelines/repository.py); ``path``
    is then the repository folder and stage ids carry their file (``file:id``)."""

    def stage(self, stage_id: str) -> Stage | None:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        return None

    def edge_pairs(self) -> set[tuple[str, str]]:
        return {(edge.source, edge.target) for edge in self.edges}


class StatusState(StrEnum):
    """What is known about a stage's last run, from dvc.lock, JUnit reports or the CI server."""

    UP_TO_DATE = "up to date"
    CHANGED = "changed"
    NOT_RUN = "not run"
    PASSED = "passed"
    FAILED = "failed"
    RUNNING = "running"
    QUEUED = "queued"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def words(self) -> str:
        """The state as a person reads it once; every view leads a stage's status with these."""
        return _WORDS[self]


_WORDS = {
    StatusState.UP_TO_DATE: "up to date",
    StatusState.CHANGED: "changed since last run",
    StatusState.NOT_RUN: "not run yet",
    StatusState.PASSED: "passed",
    StatusState.FAILED: "failed",
    StatusState.RUNNING: "running",
    StatusState.QUEUED: "queued",
    StatusState.SKIPPED: "skipped",
    StatusState.CANCELLED: "cancelled",
    StatusState.UNKNOWN: "status unknown",
}

_SYMBOLS = {
    StatusState.UP_TO_DATE: "✓",
    StatusState.CHANGED: "~",
    StatusState.NOT_RUN: "○",
    StatusState.PASSED: "✓",
    StatusState.FAILED: "✗",
    StatusState.RUNNING: "●",
    StatusState.QUEUED: "◌",
    StatusState.SKIPPED: "-",
    StatusState.CANCELLED: "■",
    StatusState.UNKNOWN: "?",
}


BRIEF_STATUS = 40
"""Characters of a status summary a table cell shows before it falls back to the state's words."""


@dataclass(frozen=True)
class StageStatus:
    state: StatusState
    summary: str = ""
    duration: float | None = None
    details: tuple[str, ...] = ()
    source: str = ""

    def short(self) -> str:
        text = self.summary or self.state.words
        if self.duration is not None:
            text += f" {format_duration(self.duration)}"
        return text

    def brief(self, limit: int = BRIEF_STATUS) -> str:
        """The status for a table cell, the same in the CLI and the TUI: the whole summary when
        it fits in ``limit`` characters, else the state's words with a visible "…" (the
        summary is in full in the stage pane and the JSON)."""
        text = self.summary or self.state.words
        if len(text) > limit:
            text = self.state.words + "…"
        if self.duration is not None:
            text += f" {format_duration(self.duration)}"
        return text


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class GraphBuilder:
    """Collects stages and edges while a parser walks a file, then checks the graph once.

    Parsers add edges by id without caring whether the target exists yet; :meth:`build` drops
    edges to unknown stages (reporting them), removes duplicates and reports dependency cycles.
    """

    stages: list[Stage] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dropped_stages: int = 0
    dropped_edges: int = 0
    dropped_problems: int = 0

    def add_stage(self, stage: Stage) -> None:
        if len(self.stages) >= MAX_STAGES:
            self.dropped_stages += 1
            return
        self.stages.append(stage)

    def add_edge(self, source: str, target: str, kind: str = "needs") -> None:
        if len(self.edges) >= MAX_EDGES:
            self.dropped_edges += 1
            return
        self.edges.append(Edge(source, target, kind))

    def add_edges(self, sources: Sequence[str], target: str, kind: str = "needs") -> None:
        """Edges from many sources to one target; past MAX_EDGES only counted, in O(1)."""
        room = MAX_EDGES - len(self.edges)
        if room < len(sources):
            self.dropped_edges += len(sources) - max(room, 0)
            sources = sources[: max(room, 0)]
        self.edges.extend(Edge(source, target, kind) for source in sources)

    @property
    def stages_full(self) -> bool:
        """True once no more stages are kept; recursive expansions stop here."""
        return len(self.stages) >= MAX_STAGES

    @property
    def full(self) -> bool:
        """True once no more edges are kept; loops that add many edges stop early."""
        return len(self.edges) >= MAX_EDGES

    def check_keys(
        self, mapping: dict[Any, Any], known: Collection[object], where: str = ""
    ) -> None:
        """A problem line for each key of ``mapping`` the format does not define (a typo the CI
        would reject or ignore); ``where`` names the job or stage, empty for the top level."""
        for key in mapping:
            if key not in known:
                prefix = f"{where}: unknown key" if where else "unknown top-level key"
                self.problem(f"{prefix} {one_line(key)!r}")

    def entries(
        self, mapping: dict[Any, Any], what: str, known: Collection[object]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each (name, body) of a file's jobs or stages, its keys checked; an entry that is not
        a mapping is a problem line (``job 'x' is not a mapping``) and is skipped."""
        for name, body in mapping.items():
            name = str(name)
            if not isinstance(body, dict):
                self.problem(f"{what} {name!r} is not a mapping")
                continue
            self.check_keys(body, known, f"{what} {name!r}")
            yield name, body

    def problem(self, message: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.dropped_problems += 1
            return
        self.problems.append(one_line(message))

    def build(self, kind: PipelineKind, fmt: str, path: Path, name: str) -> Pipeline:
        ids: dict[str, Stage] = {}
        for stage in self.stages:
            if stage.id in ids:
                self.problem(f"duplicate stage id {stage.id!r}; keeping the first")
                continue
            ids[stage.id] = stage
        seen: set[tuple[str, str]] = set()
        edges: list[Edge] = []
        for edge in self.edges:
            if edge.source not in ids or edge.target not in ids:
                missing = edge.source if edge.source not in ids else edge.target
                other = edge.target if missing == edge.source else edge.source
                self.problem(f"{other!r} depends on unknown stage {missing!r}")
                continue
            if edge.source == edge.target:
                self.problem(f"stage {edge.source!r} depends on itself")
                continue
            if (edge.source, edge.target) in seen:
                continue
            seen.add((edge.source, edge.target))
            edges.append(edge)
        incoming: dict[str, list[str]] = defaultdict(list)
        for edge in edges:
            incoming[edge.target].append(edge.source)
        stages = tuple(_with_needs(stage, incoming.get(stage.id, ())) for stage in ids.values())
        cycle = find_cycle([s.id for s in stages], [(e.source, e.target) for e in edges])
        if cycle:
            self.problem("dependency cycle: " + " → ".join(cycle))
        if self.dropped_stages or self.dropped_edges:
            self.problems.append(
                f"too large: kept the first {MAX_STAGES:,} stages and {MAX_EDGES:,} "
                f"dependencies ({self.dropped_stages:,} stages and at least "
                f"{self.dropped_edges:,} dependencies left out)"
            )
        if self.dropped_problems:
            self.problems.append(f"… and {self.dropped_problems:,} more problems")
        refs = tuple(dict.fromkeys(self.references))
        return Pipeline(
            kind=kind,
            format=fmt,
            path=path,
            name=name,
            stages=stages,
            edges=tuple(edges),
            references=refs,
            problems=tuple(dict.fromkeys(self.problems)),
        )


def _with_needs(stage: Stage, sources: Iterable[str]) -> Stage:
    needs = tuple(dict.fromkeys(sources))
    return replace(stage, needs=needs) if needs != stage.needs else stage


def find_cycle(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """One dependency cycle as a closed path (first node repeated at the end), or None.

    Iterative so a long chain cannot hit Python's recursion limit.
    """
    succ: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        succ[src].append(dst)
    color: dict[str, int] = {}
    for start in nodes:
        if color.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        color[start] = 1
        while stack:
            node, index = stack[-1]
            children = succ.get(node, [])
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                state = color.get(child, 0)
                if state == 1:
                    return [*path[path.index(child) :], child]
                if state == 0:
                    color[child] = 1
                    stack.append((child, 0))
                    path.append(child)
            else:
                color[node] = 2
                stack.pop()
                path.pop()
    return None


def layers(pipeline: Pipeline) -> list[list[str]]:
    """Stage ids grouped by longest distance from a root, for drawing the graph top-down.

    Stages caught in a cycle never become ready; they are put in a last layer instead of being
    waited for, so drawing a cyclic graph ends.
    """
    order = [s.id for s in pipeline.stages]
    indeg = {sid: 0 for sid in order}
    succ: dict[str, list[str]] = defaultdict(list)
    for edge in pipeline.edges:
        if edge.source in indeg and edge.target in indeg:
            succ[edge.source].append(edge.target)
            indeg[edge.target] += 1
    depth = {sid: 0 for sid in order}
    ready = deque(sid for sid in order if indeg[sid] == 0)
    done: set[str] = set()
    while ready:
        node = ready.popleft()
        done.add(node)
        for child in succ[node]:
            depth[child] = max(depth[child], depth[node] + 1)
            indeg[child] -= 1
            if indeg[child] == 0:
                ready.append(child)
    result: dict[int, list[str]] = defaultdict(list)
    for sid in order:
        if sid in done:
            result[depth[sid]].append(sid)
    out = [result[d] for d in sorted(result)]
    stuck = [sid for sid in order if sid not in done]
    if stuck:
        out.append(stuck)
    return out


def one_line(text: object, limit: int = 300) -> str:
    """Text from a file made safe for a one-line message: whitespace runs (newlines included)
    collapsed, control and bidi characters shown as visible stand-ins (see core/common/sanitize.py),
    at most ``limit`` characters."""
    flat = inert(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def path_under(path: Path | str, root: Path | None) -> str:
    """``path`` as reports and overrides name it: relative to ``root`` with forward slashes, or
    whole (forward slashes too) when it lies outside ``root`` or there is no root."""
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def as_list(value: Any) -> list[Any]:
    """YAML fields that take one item or a list of them, as a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def text_items(value: Any) -> tuple[str, ...]:
    """Scalars from a one-or-many field as strings; nested lists flattened, maps skipped."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, dict):
            continue
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        else:
            out.append(str(item))
    return tuple(out)


def job_image(container: Any) -> str | None:
    """A CI job's container as GitHub Actions and Azure write it: an image name, or a mapping
    holding one under ``image``."""
    if isinstance(container, str):
        return container
    if isinstance(container, dict) and isinstance(container.get("image"), str):
        return str(container["image"])
    return None


def environment_name(environment: Any) -> str | None:
    """The environment a CI job deploys to, as GitHub, GitLab and Azure write it: a name, or a
    mapping holding one under ``name``."""
    name = environment.get("name") if isinstance(environment, dict) else environment
    return str(name) if name is not None else None


def add_container(container: dict[str, Any], images: list[str], commands: list[str]) -> None:
    """A Kubernetes container's image and command line (``command`` then ``args``), the way
    Argo templates, Kubeflow executors and Tekton steps all write them."""
    if isinstance(container.get("image"), str):
        images.append(container["image"])
    argv = [str(a) for a in as_list(container.get("command"))]
    argv += [str(a) for a in as_list(container.get("args"))]
    if argv:
        commands.append(" ".join(argv))

"""Declarative Jenkins pipelines (``Jenkinsfile``) read into the same stage graph as YAML CI.

A declarative pipeline is Groovy with a fixed shape::

    pipeline {
      agent { docker { image 'python:3.11' } }
      stages {
        stage('Lint') { steps { sh 'ruff check .' } }
        stage('Tests') {
          parallel {
            stage('unit') { steps { sh 'pytest tests/unit' } }
            stage('e2e')  { when { branch 'main' } steps { sh './e2e.sh' } }
          }
        }
      }
      post { always { junit 'reports/*.xml' } }
    }

so a small reader of Groovy's blocks, strings and comments is enough; nothing is evaluated.
Stages run in order; a ``parallel`` block's stages all start after the stage before it and the
next stage waits for all of them; nested ``stages`` run in order inside their parent. The
pipeline's ``post`` becomes one stage after the last ones (like Tekton's ``finally``). Shell steps
(``sh``, ``bat``, ``powershell``) are the stage's commands; other steps are kept as written
(``junit 'x.xml'``, ``docker.build(...)``) so phase rules can read them. A scripted pipeline
(``node { stage('x') { ... } }``) is arbitrary Groovy: it is reported as not read rather than
guessed at.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mltop.core.pipelines.model import GraphBuilder, Matrix, Pipeline, Reference, Stage, one_line
from mltop.core.pipelines.yamlload import MAX_FILE_BYTES, PipelineFileError

FORMAT = "jenkins"
MAX_NESTING = 200
"""Blocks a Jenkinsfile may nest; real ones stay under ten, and the reader recurses per block."""

SHELL_STEPS = {"sh", "bat", "powershell", "pwsh"}
POST_CONDITIONS = (
    "always",
    "changed",
    "fixed",
    "regression",
    "aborted",
    "failure",
    "success",
    "unstable",
    "unsuccessful",
    "cleanup",
)

_TOKEN = re.compile(
    r"(?P<comment>//[^\n]*|/\*.*?\*/)"
    r"|(?P<tstr>'''.*?'''|\"\"\".*?\"\"\")"
    r"|(?P<str>'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\")"
    r"|(?P<lbrace>\{)|(?P<rbrace>\})|(?P<lparen>\()|(?P<rparen>\))"
    r"|(?P<word>[A-Za-z_$@][\w$.]*)"
    r"|(?P<nl>[\n;])"
    r"|(?P<ws>[ \t\r\f]+)"
    r"|(?P<other>.)",
    re.S,
)


@dataclass
class _Node:
    """One Groovy statement: its first word, the string literals in its header, the header as
    written, and its block when it has one."""

    name: str
    args: list[str] = field(default_factory=list)
    text: str = ""
    body: list[_Node] | None = None


def _unquote(raw: str) -> str:
    inner = raw[3:-3] if raw[:3] in ("'''", '"""') else raw[1:-1]
    return re.sub(r"\\(.)", r"\1", inner)


class _Reader:
    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.text = text
        self.tokens = [
            (m.lastgroup, m.group(), m.start(), m.end())
            for m in _TOKEN.finditer(text)
            if m.lastgroup and m.lastgroup not in ("comment", "ws")
        ]
        self.pos = 0

    def block(self, depth: int = 0) -> list[_Node]:
        """Statements up to the ``}`` closing this block (consumed) or the end of the text."""
        if depth > MAX_NESTING:
            raise PipelineFileError(f"{self.path}: blocks nested more than {MAX_NESTING} deep")
        nodes: list[_Node] = []
        while self.pos < len(self.tokens):
            kind = self.tokens[self.pos][0]
            if kind == "rbrace":
                self.pos += 1
                return nodes
            if kind == "nl":
                self.pos += 1
                continue
            nodes.append(self.statement(depth))
        return nodes

    def statement(self, depth: int) -> _Node:
        node = _Node(name="")
        start = end = self.tokens[self.pos][2]
        while self.pos < len(self.tokens):
            kind, value, _start, stop = self.tokens[self.pos]
            if kind in ("nl", "rbrace"):
                break
            self.pos += 1
            if kind == "lbrace":
                node.body = self.block(depth + 1)
                break
            if kind == "lparen":
                end = self.parenthesised(node)
                continue
            if kind in ("str", "tstr"):
                node.args.append(_unquote(value))
            elif kind == "word" and end == start:
                node.name = value
            end = stop
        # the header as written (comments included), whitespace runs made one space
        node.text = " ".join(self.text[start:end].split())
        return node

    def parenthesised(self, node: _Node) -> int:
        """Skips arguments in ``( )``, returning where they end; string literals among them
        become args, and a closure inside is skipped as text (steps never hide there)."""
        level = 1
        end = self.tokens[self.pos - 1][3]
        while self.pos < len(self.tokens) and level:
            kind, value, _start, end = self.tokens[self.pos]
            self.pos += 1
            if kind in ("lparen", "lbrace"):
                level += 1
                if level > MAX_NESTING:
                    raise PipelineFileError(
                        f"{self.path}: blocks nested more than {MAX_NESTING} deep"
                    )
            elif kind in ("rparen", "rbrace"):
                level -= 1
            elif kind in ("str", "tstr") and level == 1:
                node.args.append(_unquote(value))
        return end


def read_text(path: Path) -> str:
    """A Jenkinsfile's text; only a regular file of a sane size is read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise PipelineFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise PipelineFileError(f"{path}: not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise PipelineFileError(
            f"{path}: {info.st_size:,} bytes is too large for a pipeline definition "
            f"(limit {MAX_FILE_BYTES:,})"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PipelineFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PipelineFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def is_jenkinsfile(path: Path) -> bool:
    name = path.name.lower()
    return name == "jenkinsfile" or name.startswith("jenkinsfile.") or name.endswith(".jenkinsfile")


def parse_file(path: Path) -> Pipeline:
    """Read a Jenkinsfile; raises PipelineFileError (one line) when it cannot be read at all."""
    text = read_text(path)
    nodes = _Reader(text, path).block()
    return parse_nodes(path, nodes)


def _find(nodes: list[_Node], name: str) -> _Node | None:
    return next((n for n in nodes if n.name == name and n.body is not None), None)


def parse_nodes(path: Path, nodes: list[_Node]) -> Pipeline:
    graph = GraphBuilder()
    for node in nodes:
        if node.name.startswith("@Library") and node.args:
            graph.references.append(Reference("shared library", one_line(node.args[0], 200)))
    pipeline = _find(nodes, "pipeline")
    if pipeline is None:
        if _find(nodes, "node") is not None or any(n.name == "stage" for n in nodes):
            graph.problem(
                "a scripted pipeline (node { ... }) is not read; only declarative "
                "pipelines (pipeline { stages { ... } }) are"
            )
        else:
            graph.problem("no declarative pipeline { ... } block found")
        return graph.build("devops", FORMAT, path, path.name)
    body = pipeline.body or []
    images = _agent_images(_find(body, "agent"))
    stages = _find(body, "stages")
    tails: list[str] = []
    if stages is None:
        graph.problem("the pipeline block has no stages { ... }")
    else:
        tails = _walk(graph, stages.body or [], [], None, images)
    post = _find(body, "post")
    if post is not None and post.body:
        commands = tuple(c for cond in post.body for c in _steps(cond.body or []))
        conditions = [c.name for c in post.body if c.name in POST_CONDITIONS]
        graph.add_stage(
            Stage(
                id="post",
                name="post (" + ", ".join(conditions) + ")" if conditions else "post",
                kind="post",
                commands=commands,
                group="post",
            )
        )
        graph.add_edges(tails, "post", "post")
    return graph.build("devops", FORMAT, path, path.name)


def _walk(
    graph: GraphBuilder,
    nodes: list[_Node],
    before: list[str],
    group: str | None,
    images: tuple[str, ...],
) -> list[str]:
    """Add the ``stage`` blocks of a ``stages`` block in order; returns the ids that finish
    last (what the next stage waits for)."""
    prev = before
    for node in nodes:
        if node.name != "stage" or node.body is None:
            continue
        prev = _stage(graph, node, prev, group, images)
    return prev


def _stage(
    graph: GraphBuilder,
    node: _Node,
    before: list[str],
    group: str | None,
    images: tuple[str, ...],
) -> list[str]:
    name = node.args[0] if node.args else (node.text.removeprefix("stage").strip() or "stage")
    body = node.body or []
    own_images = _agent_images(_find(body, "agent")) or images
    parallel = _find(body, "parallel")
    if parallel is not None:
        tails: list[str] = []
        for child in parallel.body or []:
            if child.name == "stage" and child.body is not None:
                tails.extend(_stage(graph, child, before, name, own_images))
        return tails
    nested = _find(body, "stages")
    if nested is not None:
        return _walk(graph, nested.body or [], before, name, own_images)
    matrix_node = _find(body, "matrix")
    commands: list[str] = []
    matrix: Matrix | None = None
    if matrix_node is not None:
        inner = matrix_node.body or []
        matrix = _matrix(_find(inner, "axes"))
        for inner_stage in (_find(inner, "stages") or _Node("")).body or []:
            steps = _find(inner_stage.body or [], "steps")
            commands.extend(_steps(steps.body or []) if steps else [])
        own_images = _agent_images(_find(inner, "agent")) or own_images
    steps = _find(body, "steps")
    if steps is not None:
        commands.extend(_steps(steps.body or []))
    stage_id = one_line(name, 200)
    graph.add_stage(
        Stage(
            id=stage_id,
            name=stage_id,
            kind="stage",
            commands=tuple(commands),
            images=own_images,
            matrix=matrix,
            group=group,
        )
    )
    graph.add_edges(before, stage_id)
    return [stage_id]


def _steps(nodes: list[_Node]) -> list[str]:
    """Shell scripts of ``sh``/``bat``/``powershell`` steps, other steps as written, and the
    steps inside any block (``script``, ``dir``, ``withCredentials``, ``docker.image().inside``)."""
    out: list[str] = []
    for node in nodes:
        if node.name in SHELL_STEPS:
            if node.args:
                out.append(node.args[0])
            elif node.text:
                out.append(node.text.removeprefix(node.name).strip())
            continue
        if node.body is not None:
            out.extend(_steps(node.body))
        elif node.text:
            out.append(node.text)
    return [c for c in out if c.strip()]


def _agent_images(agent: _Node | None) -> tuple[str, ...]:
    if agent is None or not agent.body:
        return ()
    images: list[str] = []
    for node in agent.body:
        if node.name in ("docker", "dockerfile") and node.body:
            for inner in node.body:
                if inner.name == "image" and inner.args:
                    images.append(inner.args[0])
        elif node.name == "docker" and node.args:
            images.append(node.args[0])
        elif node.name == "kubernetes" and node.body:
            for inner in node.body:
                if inner.name == "yaml" and inner.args:
                    images.extend(re.findall(r"image:\s*['\"]?([^\s'\"]+)", inner.args[0]))
    return tuple(one_line(i, 200) for i in images)


def _matrix(axes: _Node | None) -> Matrix | None:
    if axes is None or not axes.body:
        return None
    found: list[tuple[str, int]] = []
    for axis in axes.body:
        if axis.name != "axis" or not axis.body:
            continue
        name = next((n.args[0] for n in axis.body if n.name == "name" and n.args), "axis")
        values = next((n.args for n in axis.body if n.name == "values"), [])
        found.append((one_line(name, 60), len(values)))
    if not found:
        return None
    total = 1
    for _name, count in found:
        total *= count
    return Matrix(total, tuple(found))


__all__ = ["FORMAT", "is_jenkinsfile", "parse_file", "read_text"]

"""Loading pipeline YAML safely: safe tags only, bounded size, bounded alias expansion.

PyYAML's SafeLoader already refuses Python object tags, but an alias-heavy file ("billion laughs")
still loads into a small graph of shared objects that explodes once anything walks it. The loader
here counts, after composing each document, how many nodes the document would have with every
alias expanded, and refuses the file beyond a limit. It also keeps GitLab's ``!reference`` tag
(and other custom tags) as data instead of failing, because real CI files use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mltop.core.pipelines.model import one_line

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Pipeline definitions are hand-written; the largest real ones are tens of kilobytes."""

MAX_EXPANDED_NODES = 500_000
"""Nodes a document may have with aliases expanded; real files stay far below (pydantic: ~7k)."""

MAX_DOCUMENTS = 200

MAX_DEPTH = 100
"""Nesting levels a document may have; checked while composing, so a ``[[[[...`` file stops
early instead of recursing until Python gives up (which is slow as well as fatal)."""


class PipelineFileError(Exception):
    """A file that cannot be read as pipeline YAML; ``str()`` is one line naming the file."""


@dataclass(frozen=True)
class YamlReference:
    """A GitLab ``!reference [job, key, ...]`` kept for later resolution."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class TaggedValue:
    """A value under a custom tag (``!Ref``, ``!include``...) that the parsers treat as opaque."""

    tag: str
    value: Any

    def __str__(self) -> str:
        return f"{self.tag} {self.value}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses alias bombs and deep nesting, and keeps custom tags as data."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _AliasBomb(f"nested more than {MAX_DEPTH} levels deep")
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _check_expanded_size(node)
        return node


def _construct_reference(loader: yaml.SafeLoader, node: Node) -> Any:
    if isinstance(node, SequenceNode):
        items = loader.construct_sequence(node)
        return YamlReference(tuple(str(item) for item in items))
    return TaggedValue("!reference", loader.construct_scalar(node))  # type: ignore[arg-type]


def _construct_other(loader: yaml.SafeLoader, suffix: str, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return TaggedValue("!" + suffix, value)


_Loader.add_constructor("!reference", _construct_reference)
_Loader.add_multi_constructor("!", _construct_other)


class _AliasBomb(yaml.YAMLError):
    pass


def _check_expanded_size(root: Node) -> None:
    """Count nodes as if every alias were copied; raise past MAX_EXPANDED_NODES or on recursion.

    Iterative post-order with memoised sizes: shared nodes are counted once per reference in
    the total but visited once, so the check itself costs the size of the composed graph.
    """
    sizes: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_stack.discard(key)
            total = 1
            for child in _children(node):
                total += sizes[id(child)]
                if total > MAX_EXPANDED_NODES:
                    raise _AliasBomb(
                        f"more than {MAX_EXPANDED_NODES:,} nodes once aliases are expanded "
                        "(an alias bomb?)"
                    )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_stack:
            raise _AliasBomb("an alias refers to a node that contains it (recursive YAML)")
        on_stack.add(key)
        stack.append((node, True))
        for child in _children(node):
            ckey = id(child)
            if ckey in on_stack:
                raise _AliasBomb("an alias refers to a node that contains it (recursive YAML)")
            if ckey not in sizes:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        out: list[Node] = []
        for key, value in node.value:
            out.append(key)
            out.append(value)
        return out
    return []


def load_documents(path: Path) -> list[Any]:
    """Every YAML document in ``path`` (empty ones dropped), or PipelineFileError with one line."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PipelineFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_FILE_BYTES:
        raise PipelineFileError(
            f"{path}: {size:,} bytes is too large for a pipeline definition "
            f"(limit {MAX_FILE_BYTES:,})"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PipelineFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return load_text(raw, path)


def load_text(raw: bytes | str, path: Path) -> list[Any]:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PipelineFileError(
                f"{path}: not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
            ) from None
    else:
        text = raw
    docs: list[Any] = []
    try:
        for doc in yaml.load_all(text, Loader=_Loader):  # a SafeLoader subclass
            if doc is not None:
                docs.append(doc)
            if len(docs) > MAX_DOCUMENTS:
                raise PipelineFileError(f"{path}: more than {MAX_DOCUMENTS} YAML documents")
    except PipelineFileError:
        raise
    except _AliasBomb as exc:
        raise PipelineFileError(f"{path}: refused: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        where = ""
        if exc.problem_mark is not None:
            where = f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        what = exc.problem or exc.context or "invalid YAML"
        raise PipelineFileError(f"{path}: invalid YAML{where}: {one_line(what)}") from None
    except yaml.YAMLError as exc:
        raise PipelineFileError(f"{path}: invalid YAML: {one_line(exc)}") from None
    except RecursionError:
        raise PipelineFileError(f"{path}: YAML nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise PipelineFileError(f"{path}: invalid YAML value: {one_line(exc)}") from None
    return docs

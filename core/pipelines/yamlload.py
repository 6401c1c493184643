"""Loading pipeline YAML safely: safe tags only, bounded size, bounded alias expansion.

The bounds on nesting and alias expansion are :mod:`mltop.core.common.safe_yaml`'s, shared with the
importers. This module adds the size limit for a definition file and keeps GitLab's
``!reference`` tag (and other custom tags) as data instead of failing, because real CI files
use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode, SequenceNode

from mltop.core.common.regular_files import SourceFileError, read_limited
from mltop.core.common.safe_yaml import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    BoundedSafeLoader,
    YamlRefused,
)
from mltop.core.pipelines.model import one_line

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "PipelineFileError",
    "TaggedValue",
    "YamlReference",
    "load_documents",
    "load_text",
]

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Pipeline definitions are hand-written; the largest real ones are tens of kilobytes."""

MAX_DOCUMENTS = 200


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


class _Loader(BoundedSafeLoader):
    """The shared bounded loader, keeping custom tags as data."""


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


def load_documents(path: Path) -> list[Any]:
    """Every YAML document in ``path`` (empty ones dropped), or PipelineFileError with one line."""
    try:
        raw = read_limited(path, MAX_FILE_BYTES, "a pipeline definition")
    except SourceFileError as exc:
        raise PipelineFileError(f"{path}: {exc}") from None
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
    except YamlRefused as exc:
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

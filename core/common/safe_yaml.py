"""The one YAML loader for files mltop reads: safe tags only, bounded nesting and alias expansion.

PyYAML's SafeLoader refuses Python object tags, but an alias-heavy file ("billion laughs") still
loads into a small graph of shared objects that explodes once anything walks it: nine levels of
nine aliases are 387 million values once a params file is flattened into keys. Every YAML
document is therefore composed first (into nodes, where an alias is one shared node), measured
by :func:`check_node` as if every alias were copied, and only then constructed; past
:data:`MAX_EXPANDED_NODES` or :data:`MAX_DEPTH` it is refused with a one-line reason.

Pipeline definitions (:mod:`mltop.core.pipelines.yamlload`) and the importers' files
(hparams.yaml, params.yaml, MLflow's meta.yaml) share these bounds. The importers' loader
(:func:`load_yaml`) uses libyaml's parser when it is installed (it is several times faster on
thousands of small meta.yaml files, and its own nesting limit of 1,000 levels keeps its
composer from recursing without end) and shows tags it cannot build safely as text.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_EXPANDED_NODES = 500_000
"""Nodes a document may have with aliases expanded; real files stay far below (pydantic's CI:
~7k nodes, a large Hydra config: ~20k)."""

MAX_DEPTH = 100
"""Nesting levels a document may have; real configuration files nest a handful of levels."""


class YamlRefused(yaml.YAMLError):
    """A document refused for its shape (alias bomb, recursion, nesting); ``str()`` is one line."""


def check_node(root: Node) -> None:
    """Count nodes as if every alias were copied, and the nesting depth; YamlRefused past limits.

    Iterative post-order with memoised sizes and heights: a shared node is counted once per
    reference in the total but visited once, so the check costs the size of the composed graph.
    """
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_stack.discard(key)
            total, height = 1, 1
            for child in _children(node):
                total += sizes[id(child)]
                height = max(height, heights[id(child)] + 1)
                if total > MAX_EXPANDED_NODES:
                    raise YamlRefused(
                        f"more than {MAX_EXPANDED_NODES:,} values once aliases are expanded "
                        "(an alias bomb?)"
                    )
            if height > MAX_DEPTH:
                raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep")
            sizes[key] = total
            heights[key] = height
            continue
        if key in sizes:
            continue
        if key in on_stack:
            raise YamlRefused("an alias refers to a node that contains it (recursive YAML)")
        on_stack.add(key)
        stack.append((node, True))
        if len(on_stack) > MAX_DEPTH:
            raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep")
        for child in _children(node):
            ckey = id(child)
            if ckey in on_stack:
                raise YamlRefused("an alias refers to a node that contains it (recursive YAML)")
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


class BoundedSafeLoader(yaml.SafeLoader):
    """Pure-Python SafeLoader that refuses deep nesting while composing and checks each document.

    Subclasses add constructors for the custom tags of their formats (GitLab's ``!reference``).
    The depth guard stops a ``[[[[...`` file early instead of recursing until Python gives up.
    """

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep")
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            check_node(node)
        return node


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ImporterLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loading that shows tags it will not build (``!!python/object``, ``!Custom``) as text.

    Lightning dumps hparams with ``yaml.dump``, so an argparse Namespace or a custom class shows
    up as a python tag; building it would run code, refusing it would lose every param.
    """


def _tagged_as_text(loader: Any, suffix: str, node: Node) -> str:
    if isinstance(node, ScalarNode):
        return str(node.value)
    return f"<{node.tag}>"


_ImporterLoader.add_multi_constructor("tag:yaml.org,2002:python/", _tagged_as_text)
_ImporterLoader.add_multi_constructor("!", _tagged_as_text)


def load_yaml(text: str) -> Any:
    """The one document in ``text``, within the bounds above.

    Raises ``yaml.YAMLError`` for invalid YAML (with ``problem_mark`` where the parser gives
    one) and :class:`YamlRefused` for a document refused for its shape.
    """
    loader = _ImporterLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_node(node)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()

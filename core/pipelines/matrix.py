"""Matrix expansion shared by the formats that fan a stage out over combinations of values.

A matrix is counted arithmetically first; only when the count stays under MATRIX_EXPAND_CAP are
the combinations built (to apply GitHub's include/exclude rules exactly and to label the legs).
So a file declaring ten axes of ten values costs nothing to read.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mltop.core.pipelines.model import MATRIX_EXPAND_CAP, Matrix, one_line


def is_expression(value: Any) -> bool:
    """A value only known at run time (``${{ ... }}``, ``$(...)``, ``$[[ ... ]]``, ``${...}``)."""
    return isinstance(value, str) and any(m in value for m in ("${{", "$(", "$[[", "${"))


def _label(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={_label(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ",".join(_label(v) for v in value) + "]"
    return str(value)


def _leg_label(combo: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_label(v)}" for k, v in combo.items())


def github_matrix(spec: Any) -> Matrix:
    """GitHub Actions ``strategy.matrix``: axes × values, then ``exclude``, then ``include``.

    Include follows GitHub's documented rule: an include object is added to every combination
    whose original axis values it does not overwrite; if it fits none, it becomes a new one
    (and combinations made that way never absorb later include objects).
    """
    if is_expression(spec):
        return Matrix(combinations=None, dynamic=one_line(spec, 80))
    if not isinstance(spec, Mapping):
        return Matrix(combinations=None, dynamic="an unreadable matrix")
    axes: list[tuple[str, list[Any]]] = []
    dynamic: list[str] = []
    for key, values in spec.items():
        if key in ("include", "exclude"):
            continue
        if isinstance(values, list):
            axes.append((str(key), values))
        else:
            dynamic.append(str(key))
    include = spec.get("include")
    exclude = spec.get("exclude")
    if is_expression(include) or is_expression(exclude) or dynamic:
        what = ", ".join(dynamic) if dynamic else "include/exclude expressions"
        return Matrix(
            combinations=None,
            axes=tuple((k, len(v)) for k, v in axes),
            dynamic=f"run-time values for {what}",
        )
    include_list = (
        [i for i in include if isinstance(i, Mapping)] if isinstance(include, list) else []
    )
    exclude_list = (
        [e for e in exclude if isinstance(e, Mapping)] if isinstance(exclude, list) else []
    )
    product = math.prod(len(v) for _, v in axes) if axes else 0
    axis_counts = tuple((k, len(v)) for k, v in axes)
    if product + len(include_list) > MATRIX_EXPAND_CAP:
        return Matrix(
            combinations=product + len(include_list),
            axes=axis_counts,
            note=f"not expanded: over {MATRIX_EXPAND_CAP}, count before include/exclude",
        )
    names = [k for k, _ in axes]
    combos: list[dict[str, Any]] = (
        [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(v for _, v in axes))
        ]
        if axes
        else []
    )
    combos = [c for c in combos if not any(_matches(c, e) for e in exclude_list)]
    originals = [dict(c) for c in combos]
    added: list[dict[str, Any]] = []
    for extra in include_list:
        fitted = False
        for combo, original in zip(combos, originals, strict=True):
            if all(original[k] == v for k, v in extra.items() if k in original):
                combo.update(extra)
                fitted = True
        if not fitted:
            added.append(dict(extra))
    combos += added
    return Matrix(
        combinations=len(combos),
        axes=axis_counts,
        legs=tuple(_leg_label(c) for c in combos),
        expanded=True,
    )


def _matches(combo: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    return all(k in combo and combo[k] == v for k, v in pattern.items())


def product_matrix(axes: Sequence[tuple[str, Any]], note: str = "") -> Matrix:
    """A plain cartesian product (GitLab ``parallel:matrix`` entries, DVC ``matrix``, Tekton)."""
    counts: list[tuple[str, int]] = []
    dynamic: list[str] = []
    values: list[list[Any]] = []
    for name, value in axes:
        if isinstance(value, list):
            counts.append((name, len(value)))
            values.append(value)
        else:
            if is_expression(value):
                dynamic.append(name)
            counts.append((name, 1))
            values.append([value])
    total = math.prod(n for _, n in counts) if counts else 0
    notes = [note] if note else []
    if dynamic:
        notes.append("run-time values for " + ", ".join(dynamic) + " counted as one")
    if total > MATRIX_EXPAND_CAP:
        notes.append(f"not expanded: over {MATRIX_EXPAND_CAP}")
        return Matrix(combinations=total, axes=tuple(counts), note="; ".join(notes))
    names = [n for n, _ in counts]
    legs = tuple(
        _leg_label(dict(zip(names, combo, strict=True))) for combo in itertools.product(*values)
    )
    return Matrix(
        combinations=total, axes=tuple(counts), legs=legs, expanded=True, note="; ".join(notes)
    )


def sum_matrices(parts: Sequence[Matrix], note: str = "") -> Matrix:
    """Several matrix entries that add up (GitLab's list of ``parallel:matrix`` maps)."""
    if any(p.combinations is None for p in parts):
        return Matrix(combinations=None, dynamic="run-time values")
    total = sum(p.combinations or 0 for p in parts)
    legs: tuple[str, ...] = ()
    expanded = all(p.expanded for p in parts) and total <= MATRIX_EXPAND_CAP
    if expanded:
        legs = tuple(itertools.chain.from_iterable(p.legs for p in parts))
    axes: dict[str, int] = {}
    for part in parts:
        for name, count in part.axes:
            axes[name] = max(axes.get(name, 0), count)
    notes = [n for n in [note, *(p.note for p in parts)] if n]
    return Matrix(
        combinations=total,
        axes=tuple(axes.items()),
        legs=legs,
        expanded=expanded,
        note="; ".join(dict.fromkeys(notes)),
    )

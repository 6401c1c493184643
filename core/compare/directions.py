"""Which way is better for a metric: lower (loss), higher (accuracy), or unknown.

A diff colours a change green or red only when it knows the metric's direction. Names carry it
in practice (``val/loss``, ``train_loss``, ``epoch_time``, ``val_acc``, ``val/roc_auc``), so the
built-in rule reads the key's tokens; a project or a user can override any key or glob in a small
YAML mapping, because no rule fits every team's naming (``score`` is higher-better for one,
lower-better for another).

Override files, first match wins:

1. ``<root>/.mltop/directions.yaml`` (the project's own choice),
2. ``$XDG_CONFIG_HOME/mltop/directions.yaml`` (default ``~/.config/mltop/directions.yaml``).

Each holds ``{key_or_glob: min|max|neutral}`` (``lower``/``higher`` and ``none`` are accepted as
synonyms). An exact key beats a glob; globs are tried in file order (``fnmatch`` syntax,
case-sensitive). A broken file is reported, never fatal: the rules fall back to the next source.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

DIRECTIONS_FILE = "directions.yaml"


class Direction(StrEnum):
    """Which change is an improvement."""

    MIN = "min"  # lower is better
    MAX = "max"  # higher is better
    NEUTRAL = "neutral"  # unknown: a change is neither better nor worse

    @property
    def arrow(self) -> str:
        return {"min": "↓", "max": "↑", "neutral": ""}[self.value]


# Tokens that name a quantity to minimise or maximise. Matched against whole tokens of the key,
# so "map" matches "val/map" but not "heatmap_size", and "time" matches "epoch_time" but not
# "timestamp".
LOWER_BETTER = frozenset(
    {
        "loss", "losses", "error", "errors", "err", "mse", "rmse", "mae", "mape", "smape",
        "msle", "rmsle", "perplexity", "ppl", "nll", "time", "latency", "duration", "seconds",
        "wer", "cer", "ter", "fpr", "fnr", "eer", "brier", "logloss", "regret",
    }
)  # fmt: skip
HIGHER_BETTER = frozenset(
    {
        "acc", "accuracy", "f1", "fbeta", "auc", "auroc", "prauc", "precision",
        "recall", "r2", "map", "bleu", "rouge", "rouge1", "rouge2", "rougel", "meteor",
        "iou", "miou", "dice", "ap", "ndcg", "mrr", "hit", "hits", "sensitivity",
        "specificity", "tpr", "tnr", "kappa", "mcc", "reward", "return", "throughput",
        "top1", "top5",
    }
)  # fmt: skip
# A token that flips the meaning of the rest: scikit-learn's "neg_mean_squared_error" is
# negated so that higher is better.
NEGATING = frozenset({"neg", "negative"})

_SPLIT = re.compile(r"[^0-9a-zA-Z]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

_WORDS = {
    "min": Direction.MIN,
    "lower": Direction.MIN,
    "minimize": Direction.MIN,
    "minimise": Direction.MIN,
    "max": Direction.MAX,
    "higher": Direction.MAX,
    "maximize": Direction.MAX,
    "maximise": Direction.MAX,
    "neutral": Direction.NEUTRAL,
    "none": Direction.NEUTRAL,
}


def _tokens(key: str) -> list[str]:
    return [t.lower() for t in _SPLIT.split(key) if t]


def rule_direction(key: str) -> Direction:
    """The built-in reading of a metric name: the last token with a known direction decides.

    The last token is usually the head noun (``val_acc``, ``loss_time`` is a time). camelCase
    words are split too (``valLoss``), after the plain split found nothing.
    """
    tokens = _tokens(key)
    found = _last_match(tokens)
    if found is None:
        camel = [t.lower() for part in _SPLIT.split(key) for t in _CAMEL.findall(part)]
        found = _last_match(camel)
        tokens = camel
    if found is None:
        return Direction.NEUTRAL
    if any(t in NEGATING for t in tokens):
        return Direction.MAX if found is Direction.MIN else Direction.MIN
    return found


def _last_match(tokens: list[str]) -> Direction | None:
    for token in reversed(tokens):
        if token in LOWER_BETTER:
            return Direction.MIN
        if token in HIGHER_BETTER:
            return Direction.MAX
    return None


@dataclass(frozen=True)
class Override:
    """One user setting: a key or glob, its direction, and the file it came from."""

    pattern: str
    direction: Direction
    origin: str

    @property
    def is_glob(self) -> bool:
        return any(c in self.pattern for c in "*?[")


@dataclass
class DirectionRules:
    """User overrides in priority order, then the built-in rule.

    ``problems`` holds one line per unreadable file or entry, for the caller to show.
    """

    overrides: list[Override] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _cache: dict[str, tuple[Direction, str]] = field(default_factory=dict, repr=False)

    def lookup(self, key: str) -> tuple[Direction, str]:
        """``(direction, source)`` where source is ``"user"``, ``"rule"`` or ``"none"``."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self._lookup(key)
        self._cache[key] = result
        return result

    def _lookup(self, key: str) -> tuple[Direction, str]:
        # Files are in priority order; inside the whole list, exact keys of a file beat its globs,
        # but a higher-priority file's glob still beats a lower-priority file's exact key.
        origins = list(dict.fromkeys(o.origin for o in self.overrides))
        for origin in origins:
            group = [o for o in self.overrides if o.origin == origin]
            for o in group:
                if not o.is_glob and o.pattern == key:
                    return o.direction, "user"
            for o in group:
                if o.is_glob and fnmatch.fnmatchcase(key, o.pattern):
                    return o.direction, "user"
        direction = rule_direction(key)
        return direction, ("rule" if direction is not Direction.NEUTRAL else "none")

    def direction(self, key: str) -> Direction:
        return self.lookup(key)[0]


def parse_overrides(text: str, origin: str) -> tuple[list[Override], list[str]]:
    """Overrides from one file's text, with a line per problem (the rest still loads)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [], [f"{origin}: not valid YAML ({' '.join(str(exc).split())})"]
    if data is None:
        return [], []
    if not isinstance(data, dict):
        return [], [f"{origin}: expected a mapping of metric key or glob to min or max"]
    out: list[Override] = []
    problems: list[str] = []
    for pattern, value in data.items():
        word = str(value).strip().lower() if value is not None else "none"
        direction = _WORDS.get(word)
        if direction is None:
            problems.append(f"{origin}: {pattern!s}: {value!r} is not min, max or neutral")
            continue
        out.append(Override(str(pattern), direction, origin))
    return out, problems


def override_files(root: Path | None) -> list[Path]:
    """The override files that apply to ``root``, highest priority first."""
    files: list[Path] = []
    if root is not None:
        base = root if root.is_dir() else root.parent
        files.append(base / ".mltop" / DIRECTIONS_FILE)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files.append(Path(config).expanduser() / "mltop" / DIRECTIONS_FILE)
    return files


def load_directions(root: Path | None = None, files: list[Path] | None = None) -> DirectionRules:
    """The rules for ``root``: its project file, then the user's file, then the built-in rule."""
    rules = DirectionRules()
    for path in override_files(root) if files is None else files:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            rules.problems.append(f"{path}: cannot read ({exc})")
            continue
        overrides, problems = parse_overrides(text, str(path))
        rules.overrides.extend(overrides)
        rules.problems.extend(problems)
    return rules


__all__ = [
    "DIRECTIONS_FILE",
    "HIGHER_BETTER",
    "LOWER_BETTER",
    "Direction",
    "DirectionRules",
    "Override",
    "load_directions",
    "override_files",
    "parse_overrides",
    "rule_direction",
]

"""What to monitor: the log, the reference, the window and the columns' roles.

Roles come from flags, else from ``.mltop/monitor.yaml``, else are inferred from the log's
column names where one name fits (case-insensitive): ``timestamp``/``ts``/``time``,
``prediction``, ``prediction_proba``/``score``/``probability``, ``label``/``target``,
``model_version``. Features default to every other column except id columns (``id``,
``request_id``, names ending in ``_id``) and the sensitive attributes. Non-numeric features
are categorical, and so are those named in ``categorical``.

``.mltop/monitor.yaml`` (paths relative to the folder holding ``.mltop/``)::

    log: logs/predictions/*.parquet      # a file, a folder or a glob
    reference: data/reference.parquet    # or reference_window: 2025-03-01..2025-03-14
    window: day                          # hour | day | week (default: chosen from the span)
    columns:
      timestamp: ts
      prediction: prediction
      score: prediction_proba
      class_scores: {cat: p_cat, dog: p_dog, bird: p_bird}   # multi-class: each class's score
      label: label
      model_version: model_version
      sensitive: [group]
      features: [income, channel]        # default: every other column
      categorical: [zip code]
    task: classification                 # or regression (default: from the label's type)
    drift: [psi, ks]                     # extra tests beside Evidently's default choice
    fail_on: "drift_share>0.5,f1<-0.05,dpd>0.1"
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mltop.core.common.regular_files import read_limited
from mltop.core.common.safe_yaml import load_yaml
from mltop.core.monitor.results import Roles
from mltop.core.monitor.source import MonitorError, is_numeric

CONFIG_PATH = Path(".mltop") / "monitor.yaml"
WINDOWS = ("hour", "day", "week")
EXTRA_TESTS = ("psi", "ks")

_TIMESTAMP_NAMES = ("timestamp", "ts", "time")
_PREDICTION_NAMES = ("prediction",)
_SCORE_NAMES = ("prediction_proba", "score", "probability")
_LABEL_NAMES = ("label", "target")
_VERSION_NAMES = ("model_version",)


@dataclass(frozen=True)
class MonitorConfig:
    """One monitor as flags and/or ``.mltop/monitor.yaml`` describe it (None: infer)."""

    log: str
    reference: str | None = None
    reference_window: str | None = None  # "A..B", dates or times, end excluded
    window: str | None = None
    timestamp: str | None = None
    prediction: str | None = None
    score: str | None = None
    label: str | None = None
    version: str | None = None
    sensitive: tuple[str, ...] = ()
    class_scores: tuple[tuple[str, str], ...] = ()  # (class, its score column), multi-class
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    task: str | None = None  # "classification" | "regression"
    extra_tests: tuple[str, ...] = ()
    fail_on: str | None = None
    origin: str | None = None  # the config file it came from, for messages

    def merged(self, **overrides: Any) -> MonitorConfig:
        """This config with every override that is set (not None, not empty) applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v not in (None, ())})


def find_config(folder: Path) -> Path | None:
    """``folder/.mltop/monitor.yaml`` when it is there: the folder then holds a monitor."""
    path = folder / CONFIG_PATH
    return path if path.is_file() else None


def load_config(path: Path) -> MonitorConfig:
    """The monitor ``path`` describes; paths in it are relative to the folder above ``.mltop``."""
    try:
        doc = load_yaml(read_limited(path, 1 << 20, "a monitor config").decode("utf-8", "replace"))
    except OSError as exc:
        raise MonitorError(f"{path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # yaml errors: their first line says where
        raise MonitorError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(doc, dict):
        raise MonitorError(f"{path}: expected a mapping of keys (log, reference, columns, ...)")
    base = path.parent.parent if path.parent.name == ".mltop" else path.parent
    known = {"log", "reference", "reference_window", "window", "columns", "task", "drift"}
    known |= {"fail_on"}
    unknown = sorted(set(map(str, doc)) - known)
    if unknown:
        raise MonitorError(
            f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    cols = doc.get("columns") or {}
    if not isinstance(cols, dict):
        raise MonitorError(f"{path}: columns must be a mapping (timestamp: ts, label: y, ...)")
    col_keys = {"timestamp", "prediction", "score", "label", "model_version", "sensitive"}
    col_keys |= {"features", "categorical", "class_scores"}
    bad = sorted(set(map(str, cols)) - col_keys)
    if bad:
        raise MonitorError(
            f"{path}: unknown column role {bad[0]!r} (known: {', '.join(sorted(col_keys))})"
        )
    if "log" not in doc:
        raise MonitorError(f"{path}: no log (a file, folder or glob of the prediction log)")

    def where(value: Any) -> str | None:
        if value is None:
            return None
        p = Path(str(value)).expanduser()
        return str(p if p.is_absolute() else base / p)

    features = cols.get("features")
    return MonitorConfig(
        log=str(where(doc["log"])),
        reference=where(doc.get("reference")),
        reference_window=_opt_str(doc.get("reference_window")),
        window=_opt_str(doc.get("window")),
        timestamp=_opt_str(cols.get("timestamp")),
        prediction=_opt_str(cols.get("prediction")),
        score=_opt_str(cols.get("score")),
        label=_opt_str(cols.get("label")),
        version=_opt_str(cols.get("model_version")),
        sensitive=_names(cols.get("sensitive"), path, "sensitive"),
        class_scores=_class_scores(cols.get("class_scores"), path),
        features=None if features is None else _names(features, path, "features"),
        categorical=_names(cols.get("categorical"), path, "categorical"),
        task=_opt_str(doc.get("task")),
        extra_tests=_names(doc.get("drift"), path, "drift"),
        fail_on=_opt_str(doc.get("fail_on")),
        origin=str(path),
    )


def check(config: MonitorConfig) -> None:
    """Refuse settings that cannot mean anything, naming where they came from."""
    where = config.origin or "mltop monitor"
    if config.window is not None and config.window not in WINDOWS:
        raise MonitorError(f"{where}: window must be hour, day or week, not {config.window!r}")
    if config.task is not None and config.task not in ("classification", "regression"):
        raise MonitorError(f"{where}: task must be classification or regression")
    for test in config.extra_tests:
        if test not in EXTRA_TESTS:
            raise MonitorError(f"{where}: drift test {test!r} is not one of psi, ks")
    if config.reference and config.reference_window:
        raise MonitorError(f"{where}: give a reference file or a reference window, not both")
    if not config.reference and not config.reference_window:
        raise MonitorError(f"{where}: no reference (a file, or a window of the log: A..B)")


def infer_roles(config: MonitorConfig, columns: dict[str, str], log: str) -> Roles:
    """The roles of the log's columns: as configured, else by name (see the module docstring)."""
    names = list(columns)
    for given in (config.timestamp, config.prediction, config.score, config.label, config.version):
        _require(given, names, log)
    class_columns = tuple(column for _, column in config.class_scores)
    for given_name in (
        *config.sensitive,
        *(config.features or ()),
        *config.categorical,
        *class_columns,
    ):
        _require(given_name, names, log)
    timestamp = config.timestamp or _pick(names, _TIMESTAMP_NAMES, log, "timestamp", required=True)
    assert timestamp is not None
    prediction = config.prediction or _pick(names, _PREDICTION_NAMES, log, "prediction")
    score = config.score or _pick(names, _SCORE_NAMES, log, "score")
    label = config.label or _pick(names, _LABEL_NAMES, log, "label")
    version = config.version or _pick(names, _VERSION_NAMES, log, "model_version")
    taken = {timestamp, prediction, score, label, version, *config.sensitive, *class_columns}
    taken -= {None}
    if config.features is not None:
        features = tuple(config.features)
    else:
        features = tuple(n for n in names if n not in taken and not _is_id(n))
    if not features:
        raise MonitorError(f"{log}: no feature columns left to test for drift")
    categorical = tuple(
        f for f in features if f in config.categorical or not is_numeric(columns[f])
    )
    return Roles(
        timestamp=timestamp,
        features=features,
        categorical=categorical,
        prediction=prediction,
        score=score,
        label=label,
        version=version,
        sensitive=tuple(config.sensitive),
        class_scores=tuple(config.class_scores),
    )


def _require(name: str | None, names: list[str], log: str) -> None:
    if name is not None and name not in names:
        raise MonitorError(f"{log}: no column {name!r} (columns: {', '.join(names[:12])})")


def _pick(
    names: list[str], wanted: tuple[str, ...], log: str, role: str, *, required: bool = False
) -> str | None:
    found = [n for n in names if n.lower() in wanted]
    if len(found) > 1:
        raise MonitorError(
            f"{log}: several {role} columns ({', '.join(found)}); "
            f"name one with --{role.replace('model_', '')}"
        )
    if not found:
        if required:
            raise MonitorError(
                f"{log}: no timestamp column (timestamp, ts or time); name one with --timestamp"
            )
        return None
    return found[0]


def _class_scores(value: Any, path: Path) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return tuple((str(k), v) for k, v in value.items())
    raise MonitorError(f"{path}: class_scores must map each class to its score column")


def _is_id(name: str) -> bool:
    low = name.lower()
    return low in ("id", "request_id") or low.endswith("_id")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _names(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    raise MonitorError(f"{path}: {key} must be a name or a list of names")


__all__ = ["CONFIG_PATH", "MonitorConfig", "check", "find_config", "infer_roles", "load_config"]

"""CI gates over a monitor report: ``--fail-on 'drift_share>0.5,f1<-0.05,dpd>0.1'``.

Read like ``mltop diff``'s gates: a comma-separated list of KEY<LIMIT or KEY>LIMIT (also <=, >=).
Prediction-quality keys are the *change* against the reference's own quality (run on its
labelled rows), absolute or with a trailing % relative to it, so ``f1<-0.05`` fails when F1
dropped by more than 0.05; every other key is the value itself. A gate is checked on the whole
log; prefixed ``latest.`` on the last window with rows, ``any.`` on every window with rows. A
value the report could not compute fails the gate: a gate must not pass what it did not check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mltop.core.common.thresholds import Threshold, ThresholdError, parse_thresholds
from mltop.core.monitor.results import MonitorReport, Performance, Section

GATE_HELP = """\
Each threshold is KEY<LIMIT or KEY>LIMIT (also <= and >=), comma-separated, checked on the whole
log; prefix a KEY with latest. (the last window) or any. (every window).
  drift_share  share of features that drifted    drifted  how many drifted
  drift.COL    1 when COL drifted, else 0        dataset_drift  1 when the share >= 0.5
  missing, missing.COL            largest missing share over the features, or COL's
  new_category, new_category.COL  share of rows with categories the reference never had
  out_of_range, out_of_range.COL  share of rows outside the reference's min..max
  dpd, dpd.ATTR    demographic parity difference (largest over the sensitive attributes)
  eod, eod.ATTR    equalized odds difference       labeled  share of rows with a label
  accuracy precision recall f1 roc_auc mae rmse r2: the change against the reference's
  own value, absolute or with % relative to it.
  drift_share>0.5   f1<-0.05 (F1 dropped by more than 0.05)   latest.dpd>0.1   rmse>+10%"""

PERFORMANCE_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse", "r2")

# A --fail-on text that is not a list of thresholds, or names no key a report has.
GateError = ThresholdError


@dataclass(frozen=True)
class Gate(Threshold):
    scope: str = "whole"  # "whole" | "latest" | "any"

    def breached(self, amount: float) -> bool:
        return self.crossed(amount)


def parse_gates(text: str) -> list[Gate]:
    """Thresholds from ``--fail-on`` text; :class:`GateError` names the part it cannot read."""
    gates = []
    for t in parse_thresholds(text, "drift_share>0.5 or f1<-0.05"):
        key, scope = t.key, "whole"
        for prefix in ("latest.", "any."):
            if key.startswith(prefix):
                key, scope = key[len(prefix) :], prefix[:-1]
        base = key.split(".", 1)[0]
        if base not in _VALUES and base not in PERFORMANCE_KEYS:
            raise GateError(f"threshold {t.text!r}: unknown key {base!r}")
        if t.relative and base not in PERFORMANCE_KEYS:
            raise GateError(
                f"threshold {t.text!r}: % compares with the reference, which only "
                "prediction-quality keys have"
            )
        gates.append(Gate(key, t.op, t.limit, t.relative, t.text, scope))
    return gates


def check_gates(report: MonitorReport, gates: Sequence[Gate]) -> list[str]:
    """One line per breached (or uncheckable) gate, naming the value and where it was seen."""
    failures: list[str] = []
    with_rows = [w for w in report.windows if w.n_rows]
    for gate in gates:
        if gate.scope == "whole":
            sections = [report.overall]
        elif gate.scope == "latest":
            sections = with_rows[-1:]
        else:
            sections = with_rows
        for section in sections:
            amount, shown = _amount(report, section, gate)
            if amount is None:
                failures.append(f"{gate.text}: {shown} ({section.label})")
                break
            if gate.breached(amount):
                failures.append(f"{gate.text}: {shown} ({section.label})")
                if gate.scope == "any":
                    break
    return failures


def _amount(report: MonitorReport, section: Section, gate: Gate) -> tuple[float | None, str]:
    base, _, column = gate.key.partition(".")
    if base in PERFORMANCE_KEYS:
        return _change(report.reference_performance, section.performance, base, gate.relative)
    value = _VALUES[base](section, column or None, report.roles.features)
    if isinstance(value, str):
        return None, value
    return value, f"{gate.key} is {value:.6g}"


def _change(
    reference: Performance | None, current: Performance | None, key: str, relative: bool
) -> tuple[float | None, str]:
    ref = getattr(reference, key, None) if reference else None
    cur = getattr(current, key, None) if current else None
    if ref is None:
        return None, f"the reference has no {key} (no labels or predictions there)"
    if cur is None:
        return None, f"no {key} here (no labelled rows)"
    delta = cur - ref
    if relative:
        if ref == 0:
            return None, f"{key} of the reference is 0: no relative change"
        pct = delta / abs(ref) * 100
        return pct, f"{key} {cur:.4g} vs reference {ref:.4g} ({pct:+.2f}%)"
    return delta, f"{key} {cur:.4g} vs reference {ref:.4g} ({delta:+.4g})"


def _largest(values: list[float | None], what: str) -> float | str:
    known = [v for v in values if v is not None]
    return max(known) if known else f"no {what} to check"


def _drift_share(section: Section, column: str | None, _features: tuple[str, ...]) -> float | str:
    share = section.dataset_drift.share
    return share if share is not None else "no feature could be tested for drift"


def _drifted(section: Section, column: str | None, _features: tuple[str, ...]) -> float | str:
    return float(section.dataset_drift.drifted_count)


def _dataset_drift(section: Section, column: str | None, _features: tuple[str, ...]) -> float | str:
    flag = section.dataset_drift.dataset_drift
    return "no feature could be tested for drift" if flag is None else float(flag)


def _drift(section: Section, column: str | None, _features: tuple[str, ...]) -> float | str:
    if column is None:
        return "drift needs a column: drift.COL"
    result = section.drift.get(column)
    if result is None or result.drifted is None:
        return f"no drift test for {column!r}"
    return float(result.drifted)


def _quality(attr: str) -> Callable[[Section, str | None, tuple[str, ...]], float | str]:
    def value(section: Section, column: str | None, features: tuple[str, ...]) -> float | str:
        if column is not None:
            if column not in section.quality:
                return f"no column {column!r}"
            found = getattr(section.quality[column], attr)
            return found if found is not None else f"no {attr.replace('_', ' ')} for {column!r}"
        found = [getattr(section.quality[f], attr) for f in features if f in section.quality]
        return _largest(found, attr.replace("_", " "))

    return value


def _fair(attr: str) -> Callable[[Section, str | None, tuple[str, ...]], float | str]:
    def value(section: Section, column: str | None, _features: tuple[str, ...]) -> float | str:
        if column is not None:
            found = section.fairness.get(column)
            value = getattr(found, attr) if found else None
            return value if value is not None else f"no fairness for {column!r}"
        return _largest([getattr(f, attr) for f in section.fairness.values()], "fairness")

    return value


def _labeled(section: Section, column: str | None, _features: tuple[str, ...]) -> float | str:
    perf = section.performance
    return perf.labeled_share if perf and perf.labeled_share is not None else "no label column"


_VALUES: dict[str, Callable[[Section, str | None, tuple[str, ...]], float | str]] = {
    "drift_share": _drift_share,
    "drifted": _drifted,
    "dataset_drift": _dataset_drift,
    "drift": _drift,
    "missing": _quality("missing_share"),
    "new_category": _quality("new_category_share"),
    "out_of_range": _quality("out_of_range_share"),
    "dpd": _fair("demographic_parity_difference"),
    "eod": _fair("equalized_odds_difference"),
    "labeled": _labeled,
}

"""The ``--fail-on`` grammar both CI gates read: ``KEY<LIMIT`` or ``KEY>LIMIT`` (also ``<=``,
``>=``), comma-separated, a trailing ``%`` for a relative limit. A key holds no ``<``, ``>`` or
``=``, so a typo such as ``acc=>1`` is an error, not a gate on a key named ``acc=``.

``mltop diff`` (the change of a metric against a baseline) and ``mltop monitor`` (a value of a
report) give the keys their meanings; the text they accept and how a limit is crossed are one
definition, so a threshold written for one reads the same in the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_THRESHOLD = re.compile(
    r"""^\s*(?P<key>[^<>=\s][^<>=]*?)\s*(?P<op><=|>=|<|>)\s*
        (?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<pct>%)?\s*$""",
    re.VERBOSE,
)


class ThresholdError(ValueError):
    """A ``--fail-on`` text that is not a list of thresholds; ``str()`` names the bad part."""


@dataclass(frozen=True)
class Threshold:
    """One limit: crossed when an amount is ``op`` ``limit``."""

    key: str
    op: str
    limit: float
    relative: bool
    text: str

    def crossed(self, amount: float) -> bool:
        return {
            "<": amount < self.limit,
            "<=": amount <= self.limit,
            ">": amount > self.limit,
            ">=": amount >= self.limit,
        }[self.op]


def parse_thresholds(text: str, examples: str) -> list[Threshold]:
    """The thresholds of ``text``; :class:`ThresholdError` names the part it cannot read
    (``examples`` shows the caller's own keys in that message) or says none were given."""
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _THRESHOLD.match(part)
        if match is None:
            raise ThresholdError(
                f"cannot read threshold {part.strip()!r}: expected KEY<LIMIT or KEY>LIMIT, "
                f"e.g. {examples}"
            )
        out.append(
            Threshold(
                key=match["key"],
                op=match["op"],
                limit=float(match["num"]),
                relative=match["pct"] is not None,
                text=part.strip(),
            )
        )
    if not out:
        raise ThresholdError("no thresholds given")
    return out

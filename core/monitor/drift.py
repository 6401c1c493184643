"""Drift tests on value counts, with Evidently 0.7's definitions, choice rule and thresholds.

DuckDB hands every test the distinct non-null values of a column and how often each occurs
(:class:`Counts`), so a window of millions of rows costs as much as its distinct values. Each
test below is the formula of ``evidently/legacy/calculations/stattests/<name>.py`` rewritten
on counts (a statistic over repeated values is the weighted statistic over distinct ones),
and :func:`default_test` is ``registry._get_default_stattest``: numerical columns with more
than 5 distinct values get K-S (reference of at most 1,000 values) or normed Wasserstein;
other columns get chi-square, or the proportion z-test when binary (reference ≤ 1,000), or
Jensen-Shannon. PSI and K-S run when asked for. Dataset drift is a drifted share ≥ 0.5.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

DRIFT_SHARE = 0.5
"""Evidently's DataDriftPreset default: the dataset drifts when this share of columns does."""

SMALL_REFERENCE = 1000
"""A reference with at most this many non-null values gets p-value tests (Evidently's rule)."""

_KS_EXACT_MAX = 10_000
"""scipy's ``ks_2samp`` computes the exact p-value up to this sample size, asymptotic above."""


@dataclass(frozen=True)
class Counts:
    """Distinct non-null values (sorted) and how many times each occurs."""

    values: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @staticmethod
    def empty(numeric: bool) -> Counts:
        return Counts(
            np.array([], dtype=float if numeric else object), np.array([], dtype=np.int64)
        )


@dataclass(frozen=True)
class Test:
    """A drift test as Evidently registers it: name, display name, threshold and direction."""

    id: str
    name: str
    threshold: float
    p_value: bool  # drift when the statistic is small (p-values) rather than large
    strict: bool  # drift on ``<`` rather than ``<=`` (p-values) or ``>`` rather than ``>=``

    def drifted(self, statistic: float, threshold: float | None = None) -> bool:
        t = self.threshold if threshold is None else threshold
        if self.p_value:
            return statistic < t if self.strict else statistic <= t
        return statistic > t if self.strict else statistic >= t


TESTS: dict[str, Test] = {
    "ks": Test("ks", "K-S p_value", 0.05, p_value=True, strict=False),
    "chisquare": Test("chisquare", "chi-square p_value", 0.05, p_value=True, strict=True),
    "z": Test("z", "Z-test p_value", 0.05, p_value=True, strict=True),
    "wasserstein": Test("wasserstein", "Wasserstein distance (normed)", 0.1, False, False),
    "jensenshannon": Test("jensenshannon", "Jensen-Shannon distance", 0.1, False, False),
    "psi": Test("psi", "PSI", 0.1, p_value=False, strict=False),
}


def default_test(kind: str, n_reference: int, n_unique: int) -> str:
    """The test Evidently's DataDriftPreset picks for a column (see the module docstring)."""
    few = kind == "categorical" or n_unique <= 5
    if n_reference <= SMALL_REFERENCE:
        if few:
            return "chisquare" if n_unique > 2 else "z"
        return "ks"
    return "jensenshannon" if few else "wasserstein"


def n_unique(reference: Counts, current: Counts) -> int:
    return len(np.union1d(reference.values, current.values))


def run_test(test: str, kind: str, reference: Counts, current: Counts) -> float:
    """The statistic of ``test`` for ``current`` against ``reference`` (both non-empty)."""
    if test == "wasserstein":
        return wasserstein_normed(reference, current)
    if test == "ks":
        return ks_pvalue(reference, current)
    if test == "jensenshannon":
        ref, cur = binned_shares(reference, current, kind, fill_zeroes=False)
        return float(distance.jensenshannon(ref, cur))
    if test == "psi":
        ref, cur = binned_shares(reference, current, kind, fill_zeroes=True)
        return float(np.sum((ref - cur) * np.log(ref / cur)))
    if test == "chisquare":
        return chisquare_pvalue(reference, current)
    if test == "z":
        return z_pvalue(reference, current)
    raise ValueError(f"unknown drift test {test!r}")


def wasserstein_normed(reference: Counts, current: Counts) -> float:
    """Wasserstein-1 distance over the reference's population standard deviation (≥ 0.001)."""
    ref_v = reference.values.astype(float)
    ref_w = reference.counts.astype(float)
    mean = np.sum(ref_v * ref_w) / ref_w.sum()
    std = math.sqrt(np.sum(ref_w * (ref_v - mean) ** 2) / ref_w.sum())
    norm = max(std, 0.001)
    # scipy's wasserstein_distance (∫|F_ref - F_cur| over the sorted union of values), written
    # out: on ~10^4 distinct values scipy's weighted path is 20x slower than these few lines.
    cur_v = current.values.astype(float)
    grid = np.union1d(ref_v, cur_v)
    gaps = np.diff(grid)
    cdf_ref = _cdf_at(reference, grid[:-1])
    cdf_cur = _cdf_at(Counts(cur_v, current.counts), grid[:-1])
    return float(np.sum(np.abs(cdf_ref - cdf_cur) * gaps)) / norm


def ks_statistic(reference: Counts, current: Counts) -> float:
    """The two-sample K-S statistic: the largest gap between the two empirical CDFs."""
    grid = np.union1d(reference.values, current.values)
    cdf_ref = _cdf_at(reference, grid)
    cdf_cur = _cdf_at(current, grid)
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def ks_pvalue(reference: Counts, current: Counts) -> float:
    """``scipy.stats.ks_2samp(ref, cur).pvalue``, on counts.

    Up to scipy's exact-method size the samples are rebuilt from the counts (at most 10,000
    values each) and given to scipy itself; above it scipy's asymptotic branch is applied to
    the statistic computed from the CDFs: ``kstwo.sf(D, round(n·m / (n + m)))``.
    """
    n_ref, n_cur = reference.n, current.n
    if max(n_ref, n_cur) <= _KS_EXACT_MAX:
        ref = np.repeat(reference.values.astype(float), reference.counts)
        cur = np.repeat(current.values.astype(float), current.counts)
        with warnings.catch_warnings():
            # "Exact calculation unsuccessful. Switching to method=asymp": scipy's own fallback,
            # which Evidently gets too; the p-value is scipy's either way.
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(ref, cur).pvalue)
    d = ks_statistic(reference, current)
    en = n_ref * n_cur / (n_ref + n_cur)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def chisquare_pvalue(reference: Counts, current: Counts) -> float:
    """Pearson's chi-square p-value with the reference's counts scaled to the current size."""
    keys = _union(reference, current)
    ref = _counts_for(reference, keys)
    cur = _counts_for(current, keys)
    expected = ref * (current.n / reference.n)
    # A category the reference never had expects 0: the statistic is infinite, p is 0 (as in
    # Evidently, which calls scipy the same way); numpy's division warning says nothing more.
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur, expected)[1])


def z_pvalue(reference: Counts, current: Counts) -> float:
    """Two-sided proportion z-test on the share of values other than the smallest key."""
    keys = sorted(_union(reference, current))
    if (
        len(reference.values) == 1
        and len(current.values) == 1
        and reference.values[0] == current.values[0]
    ):
        return 1.0
    first = keys[0]
    n1, n2 = reference.n, current.n
    p1 = float(reference.counts[reference.values != first].sum()) / n1
    p2 = float(current.counts[current.values != first].sum()) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def binned_shares(
    reference: Counts, current: Counts, kind: str, *, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: shares per Sturges bin or per value, zeros filled.

    Numerical columns whose reference has more than 20 distinct values are cut into the bins
    ``np.histogram_bin_edges(ref + cur, "sturges")`` would choose; others are counted per value.
    """
    if kind == "numerical" and len(reference.values) > 20:
        edges = sturges_edges(reference, current)
        ref = np.histogram(reference.values.astype(float), edges, weights=reference.counts)[0]
        cur = np.histogram(current.values.astype(float), edges, weights=current.counts)[0]
    else:
        keys = _union(reference, current)
        ref = _counts_for(reference, keys).astype(float)
        cur = _counts_for(current, keys).astype(float)
    ref = ref / reference.n
    cur = cur / current.n
    if fill_zeroes:
        ref = _fill_zeroes(ref)
        cur = _fill_zeroes(cur)
    return ref, cur


def sturges_edges(reference: Counts, current: Counts) -> np.ndarray:
    """The bin edges ``np.histogram_bin_edges`` picks with ``"sturges"`` for ref + cur."""
    lo = float(min(reference.values[0], current.values[0]))
    hi = float(max(reference.values[-1], current.values[-1]))
    size = reference.n + current.n
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / (np.log2(size) + 1.0)
    bins = int(np.ceil((hi - lo) / width)) if width else 1
    return np.linspace(lo, hi, bins + 1, endpoint=True)


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    nonzero = shares[shares != 0]
    if len(nonzero) == 0:
        return shares
    smallest = float(nonzero.min())
    shares = shares.copy()
    shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return shares


def _union(reference: Counts, current: Counts) -> list[Any]:
    return list(np.union1d(reference.values, current.values).tolist())


def _counts_for(counts: Counts, keys: list[Any]) -> np.ndarray:
    lookup = dict(zip(counts.values.tolist(), counts.counts.tolist(), strict=True))
    return np.array([lookup.get(key, 0) for key in keys], dtype=float)


def _cdf_at(counts: Counts, grid: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(counts.counts)
    idx = np.searchsorted(counts.values, grid, side="right")
    below = np.where(idx > 0, cumulative[np.maximum(idx - 1, 0)], 0)
    return below / counts.n

"""Drift measures and significance tests, in numpy alone.

Every function here takes plain arrays: bucket counts (of a reference and of a current window
on the same buckets) or exact samples. :mod:`loopml.monitoring.compare` applies them to a
reference :class:`~loopml.data.profile.Profile` and a
:class:`~loopml.monitoring.sketches.WindowSketch`; the definitions are in ``docs/monitoring.md``.

Effect sizes (how far apart two distributions are):

* :func:`psi`: population stability index over buckets or categories.
* :func:`binned_wasserstein` and :func:`histogram_std`: the Wasserstein-1 distance between two
  histograms on the same edges, and the spread it is divided by (:func:`normalized_wasserstein`);
  :func:`wasserstein` for exact samples.
* :func:`jensen_shannon`: the Jensen-Shannon distance (base 2, in [0, 1]).
* :func:`cohen_h`: the largest change of a category's share in standard-deviation units.

Significance (how sure the difference is not sampling noise):

* :func:`chi_square`: Pearson's chi-square test of homogeneity on counts.
* :func:`ks_binned`: the two-sample Kolmogorov-Smirnov statistic at the bucket edges;
  :func:`ks_2samp` on exact samples.

The special functions (:func:`chi2_sf`, :func:`kolmogorov_sf`, :func:`poisson_sf`,
:func:`normal_sf`) are written here from their textbook series so that monitoring needs no
scipy; the tests check them against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from loopml.errors import InvalidArgumentError

__all__ = [
    "CATEGORICAL_EFFECTS",
    "NUMERIC_EFFECTS",
    "NUMERIC_TESTS",
    "PSI_FLOOR",
    "DriftRule",
    "TestResult",
    "binned_wasserstein",
    "chi2_sf",
    "chi_square",
    "cohen_h",
    "histogram_std",
    "jensen_shannon",
    "kolmogorov_sf",
    "ks_2samp",
    "ks_binned",
    "normal_sf",
    "normalized_wasserstein",
    "poisson_sf",
    "psi",
    "wasserstein",
]

FloatArray = npt.NDArray[np.float64]

PSI_FLOOR = 1e-4
"""Shares below this are raised to it before PSI, so an empty bucket gives a finite term
(the same floor as ``loopml data diff``)."""

_EPS = 1e-15
_MAX_ITERATIONS = 100_000
_KS_PROBES = 16_384


class TestResult(NamedTuple):
    """A test statistic, its p-value and (for chi-square) its degrees of freedom."""

    statistic: float
    pvalue: float
    dof: int = 0


# -- input checks ------------------------------------------------------------------------------


def _counts(values: Any, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise InvalidArgumentError(
            f"The {name!r} argument must be a 1-D array of counts. Got shape {array.shape}.",
            field=name,
        )
    if array.size and (not np.all(np.isfinite(array)) or np.any(array < 0)):
        raise InvalidArgumentError(
            f"The {name!r} argument must hold finite, non-negative counts.", field=name
        )
    return array


def _pair(reference: Any, current: Any) -> tuple[FloatArray, FloatArray]:
    ref = _counts(reference, "reference")
    cur = _counts(current, "current")
    if ref.shape != cur.shape:
        raise InvalidArgumentError(
            "The 'current' counts must be on the same buckets as the 'reference' counts: "
            f"got {cur.size} buckets for {ref.size}.",
            field="current",
        )
    return ref, cur


def _samples(values: Any, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        raise InvalidArgumentError(
            f"The {name!r} argument must hold at least one non-missing number.", field=name
        )
    return array


# -- special functions -------------------------------------------------------------------------


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _log_prefix(a: float, x: float) -> float:
    """log(x^a e^-x / Gamma(a)), the factor both incomplete-gamma expansions share."""
    return a * math.log(x) - x - math.lgamma(a)


def _gamma_p_series(a: float, x: float) -> float:
    """The regularized lower incomplete gamma P(a, x) by its power series (x < a + 1)."""
    term = 1.0 / a
    total = term
    ap = a
    for _ in range(_MAX_ITERATIONS):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return min(1.0, total * math.exp(_log_prefix(a, x)))


def _gamma_q_fraction(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x) by its continued fraction (x >= a + 1),
    evaluated with the modified Lentz method."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, math.exp(_log_prefix(a, x)) * h)


def _gamma_q(a: float, x: float) -> float:
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _gamma_p_series(a, x))
    return _gamma_q_fraction(a, x)


def _gamma_p(a: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    if x < a + 1.0:
        return _gamma_p_series(a, x)
    return max(0.0, 1.0 - _gamma_q_fraction(a, x))


def chi2_sf(x: float, dof: float) -> float:
    """P(X > x) for X chi-square distributed with ``dof`` degrees of freedom: the regularized
    upper incomplete gamma function Q(dof / 2, x / 2)."""
    if dof <= 0:
        raise InvalidArgumentError(f"'dof' must be positive. Got {dof!r}.", field="dof")
    if math.isnan(x):
        return math.nan
    return _gamma_q(dof / 2.0, x / 2.0)


def poisson_sf(k: int, mean: float) -> float:
    """P(X >= k) for X Poisson distributed with the given mean: P(k, mean), the regularized
    lower incomplete gamma function (1 for k <= 0)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    return _gamma_p(float(k), float(mean))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's limiting distribution of sqrt(n) * D:
    2 * sum_k (-1)^(k-1) exp(-2 k^2 x^2) for x >= 1, and its Jacobi-theta form
    1 - sqrt(2 pi) / x * sum_k exp(-(2k - 1)^2 pi^2 / (8 x^2)) below (both converge fast)."""
    if math.isnan(x):
        return math.nan
    if x <= 0:
        return 1.0
    if x < 1.0:
        total = 0.0
        for k in range(1, 100):
            term = math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8.0 * x * x))
            total += term
            if term < _EPS * total:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / x * total))
    total = 0.0
    for k in range(1, 100):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < _EPS:
            break
    return min(1.0, max(0.0, 2.0 * total))


def _ks_pvalue(d: float, n1: float, n2: float) -> float:
    """The asymptotic two-sample KS p-value with Stephens' small-sample correction:
    Q_KS((sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D), ne = n1 n2 / (n1 + n2)."""
    root = math.sqrt(n1 * n2 / (n1 + n2))
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


# -- effect sizes: counts ----------------------------------------------------------------------


def psi(reference: Any, current: Any, *, floor: float = PSI_FLOOR) -> float:
    """Population stability index: sum over buckets of (q - p) * ln(q / p), with p and q the
    reference's and the current's shares, each raised to at least ``floor``."""
    ref, cur = _pair(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise InvalidArgumentError("PSI needs counts on both sides.", field="current")
    p = np.maximum(ref / ref.sum(), floor)
    q = np.maximum(cur / cur.sum(), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: Any, current: Any, *, base: float = 2.0) -> float:
    """Jensen-Shannon distance: sqrt((KL(p || m) + KL(q || m)) / 2) with m = (p + q) / 2 and
    logarithms to ``base`` (2 by default, so the distance lies in [0, 1])."""
    ref, cur = _pair(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise InvalidArgumentError("Jensen-Shannon needs counts on both sides.", field="current")
    p = ref / ref.sum()
    q = cur / cur.sum()
    m = (p + q) / 2.0

    def kl(a: FloatArray) -> float:
        used = a > 0
        return float(np.sum(a[used] * np.log(a[used] / m[used])))

    divergence = (kl(p) + kl(q)) / (2.0 * math.log(base))
    return math.sqrt(max(divergence, 0.0))


def cohen_h(reference: Any, current: Any) -> float:
    """The largest absolute Cohen's h over categories: |2 asin(sqrt(q)) - 2 asin(sqrt(p))| for
    each category's share p (reference) and q (current). It is a change in standard-deviation
    units of the category's indicator (about (q - p) / sqrt(p (1 - p)) for small changes)."""
    ref, cur = _pair(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise InvalidArgumentError("Cohen's h needs counts on both sides.", field="current")
    p = ref / ref.sum()
    q = cur / cur.sum()
    h = 2.0 * np.arcsin(np.sqrt(q)) - 2.0 * np.arcsin(np.sqrt(p))
    return float(np.max(np.abs(h)))


# -- effect sizes: numeric histograms ----------------------------------------------------------


def _histogram_model(
    edges: FloatArray, counts: FloatArray, discrete: bool
) -> tuple[FloatArray, FloatArray, bool]:
    """Points and the CDF there for the histogram model (see :func:`binned_wasserstein`).

    Returns ``(x, cdf, linear)``: the CDF is a step function taking ``cdf[i]`` on
    ``[x[i], x[i+1])`` (``linear`` False), or piecewise linear between the points (True).
    """
    shares = counts / counts.sum()
    cumulative = np.cumsum(shares)
    k = edges.size
    if discrete or k < 3:
        # mass of bucket 0 (below e0) at e0, of bucket i >= 1 at e[i-1]: F(e[i]) = P(<= i+1)
        return edges, cumulative[1 : k + 1], False
    # the tails collapsed onto e[1] and e[k-1]; buckets 2..k-1 spread evenly in between
    return edges[1:], cumulative[1:k], True


def _integrate_abs(x: FloatArray, d: FloatArray, linear: bool) -> float:
    """Integral of |d| over [x[0], x[-1]], d a step function or piecewise linear in x."""
    widths = np.diff(x)
    finite = np.isfinite(widths)
    widths = np.where(finite, widths, 0.0)
    if not linear:
        return float(np.sum(np.abs(d[:-1]) * widths))
    left, right = d[:-1], d[1:]
    same = left * right >= 0
    total = np.abs(left) + np.abs(right)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(total > 0, (left * left + right * right) / total, 0.0)
    area = np.where(same, total, crossing) * widths / 2.0
    return float(np.sum(area))


def _check_histogram(edges: Any, reference: Any, current: Any) -> tuple[FloatArray, ...]:
    e = np.asarray(edges, dtype=np.float64)
    ref, cur = _pair(reference, current)
    if e.ndim != 1 or e.size == 0 or ref.size != e.size + 1:
        raise InvalidArgumentError(
            "A histogram needs 1-D edges and len(counts) == len(edges) + 1. Got "
            f"{e.size} edges and {ref.size} counts.",
            field="edges",
        )
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise InvalidArgumentError("Both histograms need counts.", field="current")
    return e, ref, cur


def binned_wasserstein(
    edges: Any, reference: Any, current: Any, *, discrete: bool = False
) -> float:
    """Wasserstein-1 distance between two histograms on the same edges (a profile's buckets).

    The histograms stand for distributions as follows. With ``discrete`` (the reference's edges
    are its distinct values) each bucket's mass sits at its lower edge, and what lies below the
    first edge at the first edge: exact for a reference of few distinct values. Otherwise each
    bucket between ``edges[1]`` and ``edges[-1]`` is spread evenly between its edges, and the
    two outer buckets on each side are collapsed onto ``edges[1]`` and ``edges[-1]``: the
    distance between the two distributions winsorized at the reference's second and last edges
    (its 5% and 95% quantiles with 20 buckets), so one extreme value cannot dominate. The result
    is the integral of |F - G| of those two distributions, in the column's units.
    """
    e, ref, cur = _check_histogram(edges, reference, current)
    x, f, linear = _histogram_model(e, ref, discrete)
    _, g, _ = _histogram_model(e, cur, discrete)
    return _integrate_abs(x, f - g, linear)


def histogram_std(edges: Any, counts: Any, *, discrete: bool = False) -> float:
    """The standard deviation of the distribution a histogram stands for in
    :func:`binned_wasserstein` (the divisor of :func:`normalized_wasserstein`)."""
    e = np.asarray(edges, dtype=np.float64)
    c = _counts(counts, "counts")
    if c.sum() <= 0 or c.size != e.size + 1:
        raise InvalidArgumentError("The histogram has no counts.", field="counts")
    x, cdf, linear = _histogram_model(e, c, discrete)
    x = np.where(np.isfinite(x), x, 0.0)
    if not linear:
        masses = np.diff(np.concatenate(([0.0], cdf)))
        mean = float(np.sum(masses * x))
        return math.sqrt(max(float(np.sum(masses * (x - mean) ** 2)), 0.0))
    # point masses at x[0] and x[-1], uniform pieces in between
    low_mass = float(cdf[0])
    high_mass = 1.0 - float(cdf[-1])
    piece = np.diff(cdf)
    a, b = x[:-1], x[1:]
    mean = low_mass * x[0] + high_mass * x[-1] + float(np.sum(piece * (a + b) / 2.0))
    second = (
        low_mass * x[0] ** 2
        + high_mass * x[-1] ** 2
        + float(np.sum(piece * (a * a + a * b + b * b) / 3.0))
    )
    return math.sqrt(max(second - mean * mean, 0.0))


def normalized_wasserstein(
    edges: Any, reference: Any, current: Any, *, discrete: bool = False
) -> float | None:
    """:func:`binned_wasserstein` divided by :func:`histogram_std` of the reference: how far,
    in the reference's standard deviations, the values moved on average. None when the
    reference has no spread."""
    spread = histogram_std(edges, reference, discrete=discrete)
    if spread <= 0 or not math.isfinite(spread):
        return None
    return binned_wasserstein(edges, reference, current, discrete=discrete) / spread


def wasserstein(reference: Any, current: Any) -> float:
    """Wasserstein-1 distance between two exact samples: the integral of |F - G| of their
    empirical CDFs (NaNs are dropped)."""
    a = np.sort(_samples(reference, "reference"))
    b = np.sort(_samples(current, "current"))
    points = np.concatenate((a, b))
    points.sort(kind="stable")
    widths = np.diff(points)
    f = np.searchsorted(a, points[:-1], side="right") / a.size
    g = np.searchsorted(b, points[:-1], side="right") / b.size
    return float(np.sum(np.abs(f - g) * widths))


# -- significance ------------------------------------------------------------------------------


def chi_square(reference: Any, current: Any) -> TestResult:
    """Pearson's chi-square test of homogeneity of two rows of counts (no continuity
    correction). Buckets empty on both sides are left out; ``dof`` = buckets used - 1. With
    fewer than two buckets used the p-value is 1."""
    ref, cur = _pair(reference, current)
    used = (ref + cur) > 0
    ref, cur = ref[used], cur[used]
    n1, n2 = ref.sum(), cur.sum()
    if ref.size < 2 or n1 <= 0 or n2 <= 0:
        return TestResult(0.0, 1.0, max(ref.size - 1, 0))
    total = ref + cur
    n = n1 + n2
    expected_ref = total * (n1 / n)
    expected_cur = total * (n2 / n)
    statistic = float(
        np.sum((ref - expected_ref) ** 2 / expected_ref)
        + np.sum((cur - expected_cur) ** 2 / expected_cur)
    )
    dof = int(ref.size - 1)
    return TestResult(statistic, chi2_sf(statistic, dof), dof)


def ks_binned(reference: Any, current: Any) -> TestResult:
    """The two-sample Kolmogorov-Smirnov statistic on bucket counts: the largest gap between
    the two cumulative shares at the bucket edges, with the asymptotic p-value. It is at most
    the exact statistic, so the p-value errs on the side of no drift."""
    ref, cur = _pair(reference, current)
    n1, n2 = float(ref.sum()), float(cur.sum())
    if n1 <= 0 or n2 <= 0:
        return TestResult(0.0, 1.0)
    gap = np.abs(np.cumsum(ref) / n1 - np.cumsum(cur) / n2)
    d = float(gap.max()) if gap.size else 0.0
    return TestResult(d, _ks_pvalue(d, n1, n2))


def _ks_statistic_sorted(a: FloatArray, b: FloatArray) -> float:
    """The exact two-sample KS statistic of two sorted samples without merging them: the
    CDFs are compared at a few thousand probe values, and only the cells between probes that
    could hold a larger gap are searched point by point."""
    n1, n2 = a.size, b.size
    probes = np.unique(
        np.concatenate(
            (
                a[np.linspace(0, n1 - 1, min(n1, _KS_PROBES)).astype(np.int64)],
                b[np.linspace(0, n2 - 1, min(n2, _KS_PROBES)).astype(np.int64)],
            )
        )
    )
    ia = np.searchsorted(a, probes, side="right")
    ib = np.searchsorted(b, probes, side="right")
    best = float(np.max(np.abs(ia / n1 - ib / n2)))
    # cell j holds the values strictly between probes[j] and probes[j + 1]: a[ia[j]:ea[j]]
    # and b[ib[j]:eb[j]]; within it both CDFs only rise, which bounds the gap there
    ea = np.searchsorted(a, probes[1:], side="left")
    eb = np.searchsorted(b, probes[1:], side="left")
    bound = np.maximum(ea / n1 - ib[:-1] / n2, eb / n2 - ia[:-1] / n1)
    candidates = np.flatnonzero(bound > best)
    for j in candidates[np.argsort(-bound[candidates], kind="stable")]:
        if bound[j] <= best:
            break
        points = np.concatenate((a[ia[j] : ea[j]], b[ib[j] : eb[j]]))
        if points.size == 0:
            continue
        gap = np.abs(
            np.searchsorted(a, points, side="right") / n1
            - np.searchsorted(b, points, side="right") / n2
        )
        best = max(best, float(gap.max()))
    return best


def ks_2samp(reference: Any, current: Any, *, assume_sorted: bool = False) -> TestResult:
    """The two-sample Kolmogorov-Smirnov test on exact samples (NaNs dropped): the exact
    statistic sup |F - G| and its asymptotic p-value (Kolmogorov's distribution with Stephens'
    correction). ``assume_sorted`` skips sorting inputs that are already sorted."""
    a = _samples(reference, "reference")
    b = _samples(current, "current")
    if not assume_sorted:
        a, b = np.sort(a), np.sort(b)
    d = _ks_statistic_sorted(a, b)
    return TestResult(d, _ks_pvalue(d, float(a.size), float(b.size)))


# -- the decision rule -------------------------------------------------------------------------

NUMERIC_EFFECTS = ("wasserstein", "psi", "ks", "jensen_shannon")
CATEGORICAL_EFFECTS = ("cohen_h", "jensen_shannon", "psi")
NUMERIC_TESTS = ("ks", "chi_square")
CORRECTIONS = ("bonferroni", "none")


def _number(value: Any, name: str, *, low: float, high: float, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(
            f"The {name!r} setting must be a number. Got {value!r}.", field=name
        )
    if value < low or value > high or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise InvalidArgumentError(
            f"The {name!r} setting must be in {bracket}{low:g}, {high:g}]. Got {value!r}.",
            field=name,
        )


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidArgumentError(
            f"The {name!r} setting must be one of {', '.join(allowed)}. Got {value!r}.",
            field=name,
        )


@dataclass(frozen=True)
class DriftRule:
    """When a column counts as drifted: its effect size is at least the threshold AND its test's
    p-value is below ``alpha`` divided by the number of columns tested (Bonferroni).

    The effect keeps a large sample from turning a negligible shift into an alarm; the test
    keeps a small one from turning noise into an alarm. The defaults measure both effects in
    standard-deviation units: the normalized Wasserstein distance for numeric columns (how
    far values moved, in reference SDs) and Cohen's h for categorical ones (the largest change
    of a category's share, in SDs of its indicator), so one threshold of 0.05 fits both.
    """

    threshold: float = 0.05
    """Smallest effect that counts as drift (both kinds, unless overridden below)."""
    alpha: float = 0.05
    """Family-wise significance level."""
    correction: str = "bonferroni"
    """With "bonferroni" each column is tested at alpha / columns tested; "none": at alpha."""
    numeric_effect: str = "wasserstein"
    """One of :data:`NUMERIC_EFFECTS`."""
    categorical_effect: str = "cohen_h"
    """One of :data:`CATEGORICAL_EFFECTS`."""
    numeric_test: str = "ks"
    """The numeric test: "ks" (binned Kolmogorov-Smirnov) or "chi_square" (on the
    buckets); categorical columns always use the chi-square test."""
    numeric_threshold: float | None = None
    """Overrides ``threshold`` for numeric columns."""
    categorical_threshold: float | None = None
    """Overrides ``threshold`` for categorical columns."""
    min_rows: int = 100
    """Fewer non-missing values than this on either side: "insufficient_data"."""

    def __post_init__(self) -> None:
        _number(self.threshold, "threshold", low=0.0, high=math.inf)
        for name in ("numeric_threshold", "categorical_threshold"):
            if getattr(self, name) is not None:
                _number(getattr(self, name), name, low=0.0, high=math.inf)
        _number(self.alpha, "alpha", low=0.0, high=1.0, open_low=True)
        _choice(self.correction, "correction", CORRECTIONS)
        _choice(self.numeric_effect, "numeric_effect", NUMERIC_EFFECTS)
        _choice(self.categorical_effect, "categorical_effect", CATEGORICAL_EFFECTS)
        _choice(self.numeric_test, "numeric_test", NUMERIC_TESTS)
        if isinstance(self.min_rows, bool) or not isinstance(self.min_rows, int):
            raise InvalidArgumentError(
                f"The 'min_rows' setting must be an integer >= 1. Got {self.min_rows!r}.",
                field="min_rows",
            )
        if self.min_rows < 1:
            raise InvalidArgumentError(
                f"The 'min_rows' setting must be an integer >= 1. Got {self.min_rows!r}.",
                field="min_rows",
            )

    def threshold_for(self, kind: str) -> float:
        """The effect threshold of a "numeric" or "categorical" column."""
        override = self.numeric_threshold if kind == "numeric" else self.categorical_threshold
        return self.threshold if override is None else override

    def effect_for(self, kind: str) -> str:
        return self.numeric_effect if kind == "numeric" else self.categorical_effect

    def test_for(self, kind: str) -> str:
        return self.numeric_test if kind == "numeric" else "chi_square"

    def level(self, tested: int) -> float:
        """The significance level of each column when ``tested`` columns are tested."""
        if self.correction == "none" or tested <= 1:
            return self.alpha
        return self.alpha / tested

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "alpha": self.alpha,
            "correction": self.correction,
            "numeric_effect": self.numeric_effect,
            "categorical_effect": self.categorical_effect,
            "numeric_test": self.numeric_test,
            "numeric_threshold": self.numeric_threshold,
            "categorical_threshold": self.categorical_threshold,
            "min_rows": self.min_rows,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftRule:
        known = cls().to_dict()
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InvalidArgumentError(
                f"Unknown drift rule settings {unknown}; expected some of {sorted(known)}.",
                field="rule",
            )
        return cls(**dict(d))

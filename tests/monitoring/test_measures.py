"""Every drift measure and special function against an independent computation (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopml.data import _sketch
from loopml.errors import InvalidArgumentError
from loopml.monitoring import drift


def _histograms(reference: np.ndarray, current: np.ndarray, bins: int = 20):
    """The reference's profile edges and both samples' counts on them."""
    edges = _sketch.reference_edges(np.sort(reference), bins)
    ref = _sketch.bucket_counts(np.sort(reference), edges)
    cur = _sketch.bucket_counts(np.sort(current), edges)
    return edges, ref, cur


# -- special functions -------------------------------------------------------------------------


@pytest.mark.parametrize("dof", [1, 2, 5, 19, 99, 999])
@pytest.mark.parametrize("x", [0.0, 1e-3, 0.5, 1.0, 4.0, 19.0, 30.0, 100.0, 500.0, 3000.0])
def test_chi2_sf_matches_scipy(x: float, dof: int) -> None:
    want = stats.chi2.sf(x, dof)
    got = drift.chi2_sf(x, dof)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-300)


def test_chi2_sf_edges() -> None:
    assert drift.chi2_sf(-1.0, 3) == 1.0
    assert drift.chi2_sf(math.inf, 3) == 0.0
    assert math.isnan(drift.chi2_sf(math.nan, 3))
    with pytest.raises(InvalidArgumentError):
        drift.chi2_sf(1.0, 0)


@pytest.mark.parametrize("x", [0.0, 0.05, 0.2, 0.5, 0.8, 0.99, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0])
def test_kolmogorov_sf_matches_scipy(x: float) -> None:
    assert drift.kolmogorov_sf(x) == pytest.approx(stats.kstwobign.sf(x), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("k", "mean"), [(0, 1.0), (1, 0.5), (3, 2.0), (10, 2.0), (50, 20.0)])
def test_poisson_sf_matches_scipy(k: int, mean: float) -> None:
    # P(X >= k) = scipy's sf(k - 1)
    assert drift.poisson_sf(k, mean) == pytest.approx(stats.poisson.sf(k - 1, mean), rel=1e-9)


@pytest.mark.parametrize("z", [-3.0, 0.0, 1.0, 2.5, 8.0, 30.0])
def test_normal_sf_matches_scipy(z: float) -> None:
    assert drift.normal_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-12, abs=1e-300)


# -- counts ------------------------------------------------------------------------------------


def test_psi_by_hand() -> None:
    ref = np.array([50, 30, 20, 0])
    cur = np.array([40, 30, 20, 10])
    p = np.maximum(ref / ref.sum(), 1e-4)
    q = np.maximum(cur / cur.sum(), 1e-4)
    want = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert drift.psi(ref, cur) == pytest.approx(want, rel=1e-12)
    assert drift.psi(ref, ref) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_jensen_shannon_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 1000, 12)
    cur = rng.integers(0, 1000, 12)
    cur[3] = 0
    want = jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
    assert drift.jensen_shannon(ref, cur) == pytest.approx(want, rel=1e-9)
    want_e = jensenshannon(ref / ref.sum(), cur / cur.sum())
    assert drift.jensen_shannon(ref, cur, base=math.e) == pytest.approx(want_e, rel=1e-9)


def test_cohen_h_by_hand() -> None:
    ref = np.array([400, 300, 200, 100])
    cur = np.array([350, 350, 200, 100])
    hs = [
        abs(2 * math.asin(math.sqrt(q / 1000)) - 2 * math.asin(math.sqrt(p / 1000)))
        for p, q in zip(ref, cur, strict=True)
    ]
    assert drift.cohen_h(ref, cur) == pytest.approx(max(hs), rel=1e-12)
    # a 5-point change is at least 0.1 whatever the base share; 0.5 points far below 0.05
    for share in (0.1, 0.3, 0.5, 0.9):
        moved = np.array([share + 0.05, 0.95 - share]) if share < 0.95 else None
        if moved is not None:
            assert drift.cohen_h([share, 1 - share], moved) >= 0.1 - 1e-12
        assert drift.cohen_h([share, 1 - share], [share + 0.005, 0.995 - share]) < 0.02


@pytest.mark.parametrize("seed", range(5))
def test_chi_square_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(1, 500, 21)
    cur = rng.integers(1, 500, 21)
    ref[0] = cur[0] = 0  # an empty bucket on both sides is left out, as scipy needs
    statistic, pvalue, dof, _ = stats.chi2_contingency(np.vstack([ref, cur])[:, 1:], False)
    got = drift.chi_square(ref, cur)
    assert got.statistic == pytest.approx(statistic, rel=1e-9)
    assert got.pvalue == pytest.approx(pvalue, rel=1e-9, abs=1e-300)
    assert got.dof == dof


def test_chi_square_degenerate() -> None:
    assert drift.chi_square([10, 0], [5, 0]).pvalue == 1.0
    assert drift.chi_square([0, 0], [5, 5]).pvalue == 1.0


# -- Kolmogorov-Smirnov ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n1", "n2", "kind"),
    [(1000, 1000, "normal"), (5000, 3000, "normal"), (200, 50, "ints"), (20_000, 700, "ties")],
)
def test_ks_2samp_matches_scipy(n1: int, n2: int, kind: str) -> None:
    rng = np.random.default_rng(n1 + n2)
    if kind == "normal":
        a, b = rng.normal(0, 1, n1), rng.normal(0.05, 1, n2)
    elif kind == "ints":
        a, b = rng.integers(0, 10, n1), rng.integers(0, 11, n2)
    else:
        a, b = np.round(rng.normal(0, 1, n1), 1), np.round(rng.normal(0.1, 1, n2), 1)
    want = stats.ks_2samp(a, b, method="asymp")
    got = drift.ks_2samp(a, b)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.pvalue == pytest.approx(want.pvalue, rel=0.05, abs=1e-6)


def test_ks_2samp_large_sample_statistic_is_exact() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 300_000), rng.normal(0, 1.01, 200_000)
    assert drift.ks_2samp(a, b).statistic == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_ks_binned_is_ks_of_bucket_indices() -> None:
    """The binned statistic is the exact KS statistic of the values replaced by their bucket."""
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 20_000), rng.normal(0.1, 1.1, 15_000)
    edges, ref, cur = _histograms(reference, current)
    buckets_a = np.searchsorted(edges, reference, side="right")
    buckets_b = np.searchsorted(edges, current, side="right")
    want = stats.ks_2samp(buckets_a, buckets_b, method="asymp")
    got = drift.ks_binned(ref, cur)
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.pvalue == pytest.approx(want.pvalue, rel=0.05, abs=1e-12)
    # and never above the exact statistic of the raw values
    assert got.statistic <= stats.ks_2samp(reference, current).statistic + 1e-12


# -- Wasserstein -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_wasserstein_exact_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 5000), rng.exponential(1.0, 3000)
    assert drift.wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_binned_wasserstein_is_exact_for_discrete_columns() -> None:
    """A reference of few distinct values has one bucket per value: exact."""
    rng = np.random.default_rng(11)
    a = rng.integers(0, 8, 10_000).astype(float)
    b = rng.choice(8, 8_000, p=np.r_[np.full(7, 0.13), 0.09]).astype(float)
    edges, ref, cur = _histograms(a, b)
    assert len(edges) == 8
    got = drift.binned_wasserstein(edges, ref, cur, discrete=True)
    assert got == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)
    assert drift.histogram_std(edges, ref, discrete=True) == pytest.approx(np.std(a), rel=1e-9)


@pytest.mark.parametrize(
    ("shift", "scale"), [(0.1, 1.0), (0.0, 1.2), (0.5, 1.0), (0.0, 0.8), (0.3, 1.5)]
)
def test_binned_wasserstein_accuracy_against_scipy(shift: float, scale: float) -> None:
    """On the reference's 20 quantile buckets the binned distance equals scipy's distance of
    the samples clipped to the inner edges within a few percent, and normalized by the
    histogram's spread it tracks scipy's distance of the raw samples over their SD."""
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, 200_000)
    b = rng.normal(shift, scale, 200_000)
    edges, ref, cur = _histograms(a, b)
    low, high = edges[1], edges[-1]
    clipped = stats.wasserstein_distance(np.clip(a, low, high), np.clip(b, low, high))
    binned = drift.binned_wasserstein(edges, ref, cur)
    assert binned == pytest.approx(clipped, rel=0.03)
    normalized = drift.normalized_wasserstein(edges, ref, cur)
    raw = stats.wasserstein_distance(a, b) / np.std(a)
    if scale == 1.0:  # location shifts: within 5%
        assert normalized == pytest.approx(raw, rel=0.05)
    else:  # changes of spread are damped by the clipped tails (x1.2 reads 0.11, not 0.16)
        assert 0.6 * raw <= normalized <= raw


def test_binned_wasserstein_is_robust_to_one_extreme_value() -> None:
    rng = np.random.default_rng(2)
    a = rng.lognormal(0, 1, 10_000)
    b = rng.lognormal(0, 1, 10_000)
    b[0] = 1e9  # one absurd value moves the exact distance but not the binned one
    edges, ref, cur = _histograms(a, b)
    assert stats.wasserstein_distance(a, b) / np.std(a) > 10
    assert drift.normalized_wasserstein(edges, ref, cur) < 0.05


def test_histogram_std_continuous_close_to_clipped_sample_std() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(3, 2, 100_000)
    edges, ref, _ = _histograms(a, a)
    want = np.std(np.clip(a, edges[1], edges[-1]))
    assert drift.histogram_std(edges, ref) == pytest.approx(want, rel=0.02)


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        drift.psi([1, 2], [1, 2, 3])
    assert info.value.details["field"] == "current"
    with pytest.raises(InvalidArgumentError) as info:
        drift.psi([1, -2], [1, 2])
    assert info.value.details["field"] == "reference"
    with pytest.raises(InvalidArgumentError) as info:
        drift.ks_2samp([np.nan], [1.0])
    assert info.value.details["field"] == "reference"
    with pytest.raises(InvalidArgumentError) as info:
        drift.binned_wasserstein([0.0, 1.0], [1, 2], [1, 2])
    assert info.value.details["field"] == "edges"
    with pytest.raises(InvalidArgumentError):
        drift.jensen_shannon([0, 0], [1, 1])

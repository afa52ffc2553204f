"""Statistics for benchmark samples, in the standard library only.

Timings are skewed (a process can only be delayed, never sped up, by noise) and small
samples are the rule, so the summaries include robust figures (median, MAD) next to the
mean, outliers are found with the median-based modified z-score, and two sides are compared
with a rank test (Mann-Whitney U) that assumes no normal distribution. The change is the
Hodges-Lehmann shift with the confidence interval that belongs to the same test, so the
interval and the verdict never contradict each other.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Iglewicz & Hoaglin's modified z-score M = 0.6745 (x - median) / MAD. Their usual cut-off
# (3.5) flags ordinary scheduler jitter when the MAD of a sleep-bound step is microseconds;
# hyperfine flags |x - median| / MAD > 14.826 (about ten standard deviations), i.e. M > 10.
OUTLIER_THRESHOLD = 10.0
MIN_RELEVANT = 0.05  # an outlier is also at least 5% away from the median
HIGH_VARIANCE_CV = 0.10  # pyperf warns when the standard deviation exceeds 10% of the mean
SHORT_SECONDS = 0.005  # hyperfine: "Command took less than 5 ms to complete"
EXACT_MAX = 8  # exact U distribution when a side has at most this many samples and no ties


@dataclass
class Summary:
    """Descriptive statistics of one series of samples."""

    n: int
    mean: float
    stdev: float
    median: float
    min: float
    max: float
    p95: float
    mad: float
    outliers: list[int] = field(default_factory=list)  # indices into the samples

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, R type 7)."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no data")
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled)."""
    med = statistics.median(values)
    return statistics.median(abs(v - med) for v in values)


def modified_zscores(values: Sequence[float]) -> list[float]:
    """0.6745 (x - median) / MAD; with a zero MAD the mean absolute deviation stands in
    (scaled so both estimate the same sigma), and all-equal data has no outliers."""
    med = statistics.median(values)
    spread = mad(values)
    if spread > 0:
        return [0.6745 * (v - med) / spread for v in values]
    meanad = statistics.fmean(abs(v - med) for v in values)
    if meanad > 0:
        return [(v - med) / (1.253314 * meanad) for v in values]
    return [0.0 for _ in values]


def outliers(values: Sequence[float], threshold: float = OUTLIER_THRESHOLD) -> list[int]:
    """Samples that are statistically extreme *and* far enough from the median to matter:
    with few, very regular samples the MAD is tiny and a 1% wobble would score high."""
    if len(values) < 3:
        return []
    med = statistics.median(values)
    return [i for i, z in enumerate(modified_zscores(values))
            if abs(z) > threshold and abs(values[i] - med) > MIN_RELEVANT * abs(med)]


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no samples")
    data = [float(v) for v in values]
    return Summary(
        n=len(data), mean=statistics.fmean(data),
        stdev=statistics.stdev(data) if len(data) > 1 else 0.0,
        median=statistics.median(data), min=min(data), max=max(data),
        p95=percentile(data, 95), mad=mad(data), outliers=outliers(data),
    )


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"


def warnings_for(name: str, values: Sequence[float], *, unit: str = "s") -> list[str]:
    """hyperfine-style advice about one series of wall-clock samples."""
    out: list[str] = []
    if len(values) < 2:
        return out
    summary = summarize(values)
    if 0 in summary.outliers and values[0] > summary.median:
        out.append(f"{name}: the first iteration was much slower than the rest "
                   f"({_seconds(values[0])} vs a median of {_seconds(summary.median)}); "
                   "caches may have been cold: consider --warmup")
    elif summary.outliers:
        out.append(f"{name}: {len(summary.outliers)} statistical outlier(s) among "
                   f"{summary.n} iterations; other programs may have disturbed the "
                   "benchmark: consider a quieter system or more iterations")
    if summary.mean > 0 and summary.stdev / summary.mean > HIGH_VARIANCE_CV:
        out.append(f"{name}: high variance (standard deviation is "
                   f"{100 * summary.stdev / summary.mean:.0f}% of the mean); "
                   "results may not be reliable")
    if unit == "s" and summary.mean < SHORT_SECONDS:
        out.append(f"{name}: took less than {SHORT_SECONDS * 1000:.0f} ms; timings this "
                   "short are dominated by start-up noise")
    return out


# -- Mann-Whitney U ---------------------------------------------------------------------

@dataclass
class RankTest:
    """A two-sided Mann-Whitney U test of ``baseline`` against ``current``."""

    u: float  # U of the baseline sample (scipy's ``statistic``)
    p_value: float
    method: str  # exact | asymptotic
    current_larger: bool  # current values tend to be larger (a slowdown for timings)


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def u_distribution(n1: int, n2: int) -> list[int]:
    """How many of the C(n1+n2, n1) arrangements give U = 0, 1, ..., n1*n2.

    These are the coefficients of the Gaussian binomial [n1+n2 choose n1]_q, built by
    multiplying by (1 - q^(n2+i)) and dividing by (1 - q^i) for i = 1..n1, in integers.
    """
    size = n1 * n2 + 1
    coef = [0] * size
    coef[0] = 1
    for i in range(1, n1 + 1):
        m = n2 + i
        for j in range(size - 1, m - 1, -1):  # multiply by (1 - q^m)
            coef[j] -= coef[j - m]
        for j in range(i, size):  # divide by (1 - q^i): running sum with stride i
            coef[j] += coef[j - i]
    return coef


def mann_whitney_u(baseline: Sequence[float], current: Sequence[float], *,
                   method: str = "auto") -> RankTest:
    """Two-sided test; matches ``scipy.stats.mannwhitneyu`` (continuity-corrected normal
    approximation with tie correction; exact when a side has at most 8 samples and there
    are no ties)."""
    n1, n2 = len(baseline), len(current)
    if n1 < 1 or n2 < 1:
        raise ValueError("both samples need at least one value")
    ranks, ties = _ranks([*baseline, *current])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    u = max(u1, u2)
    if method == "auto":
        method = "exact" if (min(n1, n2) <= EXACT_MAX and all(t == 1 for t in ties)) \
            else "asymptotic"
    if method == "exact":
        counts = u_distribution(n1, n2)
        total = sum(counts)
        p = 2 * sum(counts[math.ceil(u - 1e-9):]) / total
    else:
        n = n1 + n2
        tie_term = sum(t ** 3 - t for t in ties)
        sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        if sigma == 0:
            p = 1.0
        else:
            z = (u - n1 * n2 / 2 - 0.5) / sigma
            p = 2 * 0.5 * math.erfc(z / math.sqrt(2))
    return RankTest(u=u1, p_value=min(1.0, max(0.0, p)), method=method,
                    current_larger=u2 > u1)


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the test can give for these sample sizes: below
    this no difference can ever be significant."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return mann_whitney_u(list(range(n1)), list(range(n1, n1 + n2))).p_value


# -- the change, with an interval consistent with the test --------------------------------

@dataclass
class Change:
    """Change of current against baseline in percent of the baseline median.

    ``pct`` is the Hodges-Lehmann estimate of the shift (the median of all pairwise
    differences current - baseline), the location shift the Mann-Whitney test is about;
    ``ci_low``/``ci_high`` bound it with the distribution-free (Moses) interval built from
    the same U distribution, so the interval excludes 0 exactly when the test rejects (no
    ties, exact case). ``mean_pct`` is the plain change of the mean, as hyperfine and
    pyperf report it.
    """

    pct: float
    ci_low: float
    ci_high: float
    level: float  # e.g. 0.95
    mean_pct: float


EXACT_CI_MAX_PAIRS = 2500  # beyond this the normal approximation is as good and cheaper


def _rank_of_bound(n1: int, n2: int, alpha: float) -> int:
    """The largest k with P(U <= k - 1) <= alpha / 2: the interval is [d_(k), d_(m+1-k)]."""
    if n1 * n2 <= EXACT_CI_MAX_PAIRS:
        counts = u_distribution(n1, n2)
        total = sum(counts)
        k, cumulative = 0, 0
        for u, c in enumerate(counts):
            cumulative += c
            if cumulative / total > alpha / 2:
                break
            k = u + 1
        return k
    z = statistics.NormalDist().inv_cdf(1 - alpha / 2)
    return max(0, math.floor(n1 * n2 / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)))


def _pct(value: float, base: float) -> float:
    if base == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return 100.0 * value / base


def relative_change(baseline: Sequence[float], current: Sequence[float], *,
                    level: float = 0.95) -> Change:
    """Hodges-Lehmann shift and its confidence interval, in percent of the baseline median.

    With too few samples for the level the interval is unbounded (-inf, inf)."""
    diffs = sorted(c - b for b in baseline for c in current)
    m = len(diffs)
    base = statistics.median(baseline)
    k = _rank_of_bound(len(baseline), len(current), 1 - level)
    lo, hi = (diffs[k - 1], diffs[m - k]) if k >= 1 else (-math.inf, math.inf)
    mb, mc = statistics.fmean(baseline), statistics.fmean(current)
    mean_pct = _pct(mc - mb, mb)
    return Change(_pct(statistics.median(diffs), base), _pct(lo, base), _pct(hi, base),
                  level, mean_pct)

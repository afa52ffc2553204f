"""The statistics behind `attest benchmark`, checked against scipy and by simulation."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from attest_cli.bench import stats

pytestmark = pytest.mark.unit  # in-process: the fast layer (make test-unit)

scipy_stats = pytest.importorskip("scipy.stats")


def _samples(rng: random.Random, n: int, shift: float = 0.0, ties: bool = False) -> list[float]:
    # Timing-like: a floor plus a right-skewed (log-normal) delay.
    values = [1.0 + shift + rng.lognormvariate(-3, 0.5) for _ in range(n)]
    return [round(v, 2) for v in values] if ties else values


def test_mann_whitney_matches_scipy_on_many_inputs() -> None:
    rng = random.Random(7)
    methods = set()
    for _ in range(400):
        n1, n2 = rng.randint(1, 14), rng.randint(1, 14)
        ties = rng.random() < 0.5
        a = _samples(rng, n1, ties=ties)
        b = _samples(rng, n2, shift=rng.choice([0.0, 0.02, 0.1]), ties=ties)
        ours = stats.mann_whitney_u(a, b)
        ref = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
        methods.add(ours.method)
        assert ours.u == pytest.approx(float(ref.statistic), abs=1e-9)
        assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-12)
    assert methods == {"exact", "asymptotic"}


def test_exact_distribution_counts_every_arrangement() -> None:
    for n1, n2 in [(1, 1), (3, 4), (5, 5), (8, 3)]:
        counts = stats.u_distribution(n1, n2)
        assert sum(counts) == math.comb(n1 + n2, n1)
        assert counts == counts[::-1]  # U is symmetric around n1*n2/2
    assert stats.u_distribution(2, 2) == [1, 1, 2, 1, 1]


def test_direction_of_a_slowdown() -> None:
    test = stats.mann_whitney_u([1.0, 1.1, 0.9, 1.05, 1.02], [1.3, 1.32, 1.28, 1.31, 1.29])
    assert test.current_larger and test.p_value < 0.05
    test = stats.mann_whitney_u([1.3, 1.32, 1.28, 1.31, 1.29], [1.0, 1.1, 0.9, 1.05, 1.02])
    assert not test.current_larger and test.p_value < 0.05


def test_identical_constant_samples_are_not_significant() -> None:
    assert stats.mann_whitney_u([5.0] * 6, [5.0] * 6).p_value == 1.0


def test_false_positive_rate_matches_alpha_for_identical_distributions() -> None:
    rng = random.Random(11)
    trials, alpha = 2000, 0.05
    hits = sum(stats.mann_whitney_u(_samples(rng, 10), _samples(rng, 10)).p_value < alpha
               for _ in range(trials))
    rate = hits / trials
    # The test is slightly conservative (continuity correction); 2000 trials put the
    # binomial standard error near 0.5 percentage points.
    assert 0.025 <= rate <= 0.065, rate


def test_a_30_percent_slowdown_is_detected_with_ten_samples() -> None:
    rng = random.Random(3)
    detected = 0
    for _ in range(200):
        base = [0.1 * (1 + rng.gauss(0, 0.05)) for _ in range(10)]
        cur = [0.13 * (1 + rng.gauss(0, 0.05)) for _ in range(10)]
        t = stats.mann_whitney_u(base, cur)
        detected += t.p_value < 0.05 and t.current_larger
    assert detected == 200


def test_min_p_value_says_when_a_test_can_never_be_significant() -> None:
    assert stats.min_p_value(3, 3) == pytest.approx(0.1)
    assert stats.min_p_value(4, 4) == pytest.approx(2 / math.comb(8, 4))
    assert stats.min_p_value(10, 10) < 0.001


def test_summary_matches_numpy_style_definitions() -> None:
    np = pytest.importorskip("numpy")
    data = [0.31, 0.29, 0.35, 0.30, 0.33, 0.28, 0.90, 0.32]
    s = stats.summarize(data)
    assert s.mean == pytest.approx(float(np.mean(data)))
    assert s.stdev == pytest.approx(float(np.std(data, ddof=1)))
    assert s.median == pytest.approx(float(np.median(data)))
    assert s.p95 == pytest.approx(float(np.percentile(data, 95)))
    assert s.mad == pytest.approx(float(np.median(np.abs(np.array(data) - np.median(data)))))
    assert (s.min, s.max, s.n) == (0.28, 0.90, 8)
    assert s.outliers == [6]  # 0.90 is ~30 MADs from the median


def test_outlier_rule_ignores_ordinary_jitter() -> None:
    assert stats.outliers([0.100, 0.101, 0.102, 0.1005, 0.1015, 0.103]) == []
    assert stats.outliers([1.0] * 5) == []
    # Tiny MAD: 2% off scores far above 10, but is not worth a warning.
    assert stats.outliers([0.1045, 0.1025, 0.1024, 0.1025]) == []
    assert stats.warnings_for("step build", [0.1045, 0.1025, 0.1024, 0.1025]) == []


def test_warnings_like_hyperfine() -> None:
    slow_first = stats.warnings_for("total", [2.0, 1.0, 1.01, 0.99, 1.0, 1.02])
    assert any("first iteration was much slower" in w for w in slow_first)
    outlier = stats.warnings_for("total", [1.0, 1.01, 0.99, 1.0, 1.02, 3.0])
    assert any("outlier" in w for w in outlier)
    noisy = stats.warnings_for("total", [1.0, 1.5, 0.7, 1.2, 0.8])
    assert any("high variance" in w for w in noisy)
    assert stats.warnings_for("total", [1.0, 1.01, 0.99, 1.0]) == []


def test_shift_interval_covers_the_true_change_about_95_percent_of_the_time() -> None:
    rng = random.Random(5)
    covered = 0
    trials = 300
    for _ in range(trials):
        base = [1.0 + rng.lognormvariate(-3, 0.5) for _ in range(10)]
        cur = [1.2 + rng.lognormvariate(-3, 0.5) for _ in range(10)]  # shifted by 0.2
        change = stats.relative_change(base, cur)
        true_pct = 100 * 0.2 / statistics.median(base)
        covered += change.ci_low <= true_pct <= change.ci_high
        assert change.ci_low <= change.pct <= change.ci_high
    assert 0.91 <= covered / trials <= 0.99, covered / trials


def test_interval_excludes_zero_exactly_when_the_exact_test_rejects() -> None:
    rng = random.Random(9)
    for _ in range(300):
        n1, n2 = rng.randint(4, 8), rng.randint(4, 8)
        base = _samples(rng, n1)
        cur = _samples(rng, n2, shift=rng.choice([0.0, 0.01, 0.03]))
        test = stats.mann_whitney_u(base, cur)
        change = stats.relative_change(base, cur, level=0.95)
        assert test.method == "exact"
        excludes_zero = change.ci_low > 0 or change.ci_high < 0
        assert excludes_zero == (test.p_value <= 0.05), (base, cur)


def test_hodges_lehmann_shift_and_mean_change() -> None:
    base, cur = [1.0, 1.1, 0.9, 1.0], [1.3, 1.4, 1.2, 1.3]
    change = stats.relative_change(base, cur)
    diffs = sorted(c - b for b in base for c in cur)
    assert change.pct == pytest.approx(100 * statistics.median(diffs) / 1.0)
    assert change.mean_pct == pytest.approx(100 * (statistics.fmean(cur) / 1.0 - 1))
    assert stats.relative_change(base, cur) == change  # deterministic
    # The exact bound (40 x 40 pairs) is close to the normal approximation used for
    # larger samples: floor(800 - 1.96 * sqrt(1600 * 81 / 12)) = 596.
    assert abs(stats._rank_of_bound(40, 40, 0.05) - 596) <= 2
    assert stats._rank_of_bound(3, 3, 0.05) == 0  # too few: no finite interval
    assert math.isinf(stats.relative_change([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]).ci_high)


def test_change_from_a_zero_baseline_is_json_safe() -> None:
    import json

    from attest_cli.bench.compare import Row

    change = stats.relative_change([0.0, 0.0, 0.0], [0.1, 0.1, 0.2])
    assert math.isinf(change.pct) and math.isinf(change.mean_pct)
    row = Row("build", stats.summarize([0.0, 0.0, 0.0]), stats.summarize([0.1, 0.1, 0.2]),
              change=change)
    data = json.loads(json.dumps(row.to_dict(), allow_nan=False))
    assert data["change_pct"] is None and data["ci_low_pct"] is None
    assert stats.relative_change([0.0, 0.0], [0.0, 0.0]).pct == 0.0

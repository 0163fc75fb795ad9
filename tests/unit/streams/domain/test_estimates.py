"""Loss estimates against values computed here, independently, from the published parameters.

PAGER: losspager data/fatality.xml and data/economy.xml (Indonesia), models/emploss.py and
utils/probs.py. InaSAFE: safe/definitions/earthquake.py (itb_bayesian_fatality_rates). EMS-98
(Gruenthal 1998) for the damage-based displacement.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.domain.estimates import (
    ECONOMIC_RANGES_USD,
    FATALITY_RANGES,
    RangeEstimate,
    displacement_estimates,
    earthquake_estimates,
    exposure_by_mmi,
    itb_fatality,
    most_likely,
    pager_alert,
    pager_economic_loss_usd,
    pager_economic_ranges,
    pager_fatality_median,
    pager_fatality_ranges,
)

# Published parameters, typed in again here (not imported from the module under test).
THETA_FAT, BETA_FAT, G_FAT = 13.248768, 0.150846, 1.714702
THETA_ECO, BETA_ECO, ALPHA_ECO, G_ECO = 10.211, 0.102747, 17.2525, 1.61729
ITB = {
    6: 3.41733122522e-05,
    7: 0.000387804494226,
    8: 0.001851451786,
    9: 0.00787294191661,
    10: 0.0314512157378,
}


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def lognormal_rate(mmi: int, theta: float, beta: float) -> float:
    return phi(math.log(mmi / theta) / beta)


def losspager_probs(expected: float, g: float, edges: list[float]) -> list[float]:
    """calcEmpiricalProbFromRange by hand; first range from 0, last open-ended."""
    e = expected + 0.00001
    if e < 1 and g > 1.7:
        g = 1.7613
    if e < 0.001:
        e = 0.5
    cdf = [0.0] + [phi((math.log(x + 0.00001) - math.log(e)) / g) for x in edges] + [1.0]
    return [cdf[i + 1] - cdf[i] for i in range(len(cdf) - 1)]


EXPOSURE = {3: 5e5, 4: 3e5, 5: 1e5, 6: 5e4, 7: 2e4, 8: 5000.0, 9: 1000.0, 10: 200.0, 11: 50.0}


def probabilities(ranges: list[RangeEstimate]) -> list[float]:
    return [r.probability for r in ranges if r.probability is not None]


def test_exposure_by_mmi_sums_persons_per_bin() -> None:
    bins = np.array([5, 7, 5, 9, 7, 7], dtype=np.int64)
    persons = np.array([10.0, 1.0, 5.0, 2.0, np.nan, 4.0])
    assert exposure_by_mmi(bins, persons) == {5: 15.0, 7: 5.0, 9: 2.0}
    assert exposure_by_mmi(np.array([], dtype=np.int64), np.array([])) == {}


def test_pager_fatality_median_folds_ten_and_above_into_nine() -> None:
    expected = sum(EXPOSURE[k] * lognormal_rate(k, THETA_FAT, BETA_FAT) for k in range(5, 10))
    expected += (EXPOSURE[10] + EXPOSURE[11]) * lognormal_rate(9, THETA_FAT, BETA_FAT)
    assert pager_fatality_median(EXPOSURE) == pytest.approx(expected, rel=1e-12)
    assert pager_fatality_median({3: 1e6, 4: 1e6}) == 0.0


def test_pager_probabilities_with_the_country_g_at_1_03() -> None:
    # The Indonesian gnormvalue alone, without losspager's int(): about 49 / 41 / 9 / 0.4 %.
    ranges = pager_fatality_ranges(1.03, truncate=False, g=G_FAT)
    expected = losspager_probs(1.03, G_FAT, [1, 10, 100, 1000])
    assert probabilities(ranges) == pytest.approx(expected, abs=1e-12)
    assert probabilities(ranges)[:4] == pytest.approx([0.4931, 0.4144, 0.0887, 0.0038], abs=5e-4)


def test_pager_probabilities_by_default_use_the_country_g() -> None:
    assert probabilities(pager_fatality_ranges(1.03)) == probabilities(
        pager_fatality_ranges(1.03, truncate=False, g=G_FAT)
    )
    assert probabilities(pager_economic_ranges(23_456_789.0)) == pytest.approx(
        losspager_probs(23.456789, G_ECO, [1, 10, 100, 1000]), abs=1e-12
    )


def test_pager_probabilities_as_losspager_computes_them() -> None:
    # int(1.03) = 1, G = sqrt(1.714702**2 + 1**2) (country key + the total key's default L2G 1.0).
    g = math.sqrt(G_FAT**2 + 1.0)
    assert g == pytest.approx(1.98499, abs=1e-5)
    ranges = pager_fatality_ranges(1.03, truncate=True, g=None)
    assert probabilities(ranges) == pytest.approx(losspager_probs(1.0, g, [1, 10, 100, 1000]), abs=1e-12)
    assert all(r.central == 1.03 for r in ranges)
    # 57.9 -> 57, same G.
    assert probabilities(pager_fatality_ranges(57.9, truncate=True, g=None)) == pytest.approx(
        losspager_probs(57.0, g, [1, 10, 100, 1000]), abs=1e-12
    )


def test_pager_zero_loss_histogram() -> None:
    # Expected below 1 -> G 1.7613; expected 0 -> 0.5: losspager's 65 / 30 / 4 % histogram.
    for median in (0.0, 0.4, 0.99):
        probs = probabilities(pager_fatality_ranges(median, truncate=True, g=None))
        assert probs == pytest.approx(losspager_probs(0.0, 1.7613, [1, 10, 100, 1000]), abs=1e-12)
        assert probs[:3] == pytest.approx([0.6530, 0.3025, 0.0432], abs=5e-4)


@pytest.mark.parametrize("median", [0.0, 0.3, 1.03, 7.5, 140.0, 2500.0, 1e6])
def test_pager_ranges_are_five_summing_to_one(median: float) -> None:
    for ranges, bounds in (
        (pager_fatality_ranges(median), FATALITY_RANGES),
        (pager_economic_ranges(median * 1e5), ECONOMIC_RANGES_USD),
    ):
        assert len(ranges) == 5
        assert [(r.range_low, r.range_high) for r in ranges] == list(bounds)
        assert ranges[-1].range_high is None
        assert sum(probabilities(ranges)) == pytest.approx(1.0, abs=1e-12)
        assert all(r.probability is not None and 0 <= r.probability <= 1 for r in ranges)


def test_fatality_bounds_and_labels() -> None:
    assert FATALITY_RANGES == ((0, 1), (1, 10), (10, 100), (100, 1000), (1000, None))
    assert ECONOMIC_RANGES_USD == ((0, 1e6), (1e6, 1e7), (1e7, 1e8), (1e8, 1e9), (1e9, None))
    labels = [r.label for r in pager_fatality_ranges(1.03, truncate=False, g=G_FAT)]
    assert labels[1] == "perkiraan PAGER 1\u20139 jiwa (peluang 41%)"
    assert labels[4].startswith("perkiraan PAGER 1.000+ jiwa")


def test_pager_economic_loss_usd() -> None:
    gdp = 4000.0
    expected = sum(
        EXPOSURE[k] * gdp * ALPHA_ECO * lognormal_rate(k, THETA_ECO, BETA_ECO) for k in range(5, 10)
    )
    expected += (EXPOSURE[10] + EXPOSURE[11]) * gdp * ALPHA_ECO * lognormal_rate(9, THETA_ECO, BETA_ECO)
    assert pager_economic_loss_usd(EXPOSURE, gdp) == pytest.approx(expected, rel=1e-12)
    assert pager_economic_loss_usd({}) == 0.0


def test_pager_economic_probabilities_in_millions() -> None:
    usd = 23_456_789.0
    g = math.sqrt(G_ECO**2 + 1.0)
    assert g == pytest.approx(1.90148, abs=1e-5)
    ranges = pager_economic_ranges(usd, g=None)
    assert probabilities(ranges) == pytest.approx(
        losspager_probs(usd / 1e6, g, [1, 10, 100, 1000]), abs=1e-12
    )
    assert most_likely(ranges).range_low == 1e7
    # Below US$1M the small-loss G (1.7613) applies, since 1.90148 > 1.7.
    small = pager_economic_ranges(400_000.0, g=None)
    assert probabilities(small) == pytest.approx(losspager_probs(0.4, 1.7613, [1, 10, 100, 1000]), abs=1e-12)


@pytest.mark.parametrize(
    ("deaths", "usd", "expected"),
    [
        (0.0, 0.0, ("green", "green", "green")),
        (0.99, 999_999.0, ("green", "green", "green")),
        (1.0, 0.0, ("yellow", "yellow", "green")),
        (0.0, 1e6, ("yellow", "green", "yellow")),
        (99.9, 5e8, ("orange", "yellow", "orange")),
        (100.0, 5e7, ("orange", "orange", "yellow")),
        (5.0, 1e9, ("red", "yellow", "red")),
        (1000.0, 0.0, ("red", "red", "green")),
    ],
)
def test_pager_alert_is_the_higher_of_the_two(
    deaths: float, usd: float, expected: tuple[str, str, str]
) -> None:
    assert pager_alert(deaths, usd) == expected


def test_most_likely_picks_the_highest_probability() -> None:
    ranges = pager_fatality_ranges(1.03, truncate=False, g=G_FAT)
    assert most_likely(ranges) is ranges[0]
    assert most_likely(pager_fatality_ranges(57.0)).range_low == 10
    with pytest.raises(ValueError):
        most_likely([])


def test_itb_fatality_point_estimate() -> None:
    expected = sum(EXPOSURE[k] * ITB[k] for k in range(6, 11)) + EXPOSURE[11] * ITB[10]
    (estimate,) = itb_fatality(EXPOSURE)
    assert estimate.model == "itb_fatality"
    assert estimate.outcome == "deaths"
    assert estimate.probability is None
    assert estimate.central == pytest.approx(expected, rel=1e-12)
    assert estimate.range_low == estimate.range_high == estimate.central
    assert "tanpa rentang" in estimate.label


def test_displacement_upper_bound_and_damage_range() -> None:
    exposure = {5: 1e5, 6: 5e4, 7: 2e4, 8: 5000.0, 9: 1000.0, 10: 200.0}
    deaths = 10.0
    upper, damage = displacement_estimates(exposure, deaths, households=40_000.0)
    assert upper.model == "inasafe_displacement"
    assert (upper.range_low, upper.range_high, upper.central) == (0.0, 76_190.0, 76_190.0)
    assert "batas atas" in upper.label
    # EMS-98, grade 4-5: class B lower ends (IX many 10 % + few 0 %, X many 10 %),
    # class A upper ends (VII few 20 %, VIII many 60 % + few 20 %, IX as VIII, X most 100 %).
    assert damage.model == "damage_displacement"
    assert damage.range_low == pytest.approx(0.10 * 1000 + 0.10 * 200 - deaths)
    assert damage.range_high == pytest.approx(0.2 * 2e4 + 0.8 * 5000 + 0.8 * 1000 + 1.0 * 200 - deaths)
    assert damage.range_high is not None
    assert upper.range_high is not None
    assert damage.range_low <= damage.central <= damage.range_high <= upper.range_high
    assert "rumah" in damage.label


@pytest.mark.parametrize("level", range(1, 13))
def test_upper_bound_covers_damage_at_every_level(level: int) -> None:
    upper, damage = displacement_estimates({level: 1000.0}, 0.0, 250.0)
    assert upper.range_high is not None and damage.range_high is not None
    assert upper.range_high >= damage.range_high >= damage.range_low >= 0


def test_zero_exposure_gives_zero_estimates() -> None:
    empty = np.array([], dtype=np.int64)
    estimates = earthquake_estimates(empty, np.array([]), np.array([]))
    assert [e.model for e in estimates] == ["pager_fatality"] * 5 + ["pager_economic"] * 5 + [
        "itb_fatality",
        "inasafe_displacement",
        "damage_displacement",
    ]
    assert all(e.central == 0 for e in estimates)
    assert [e.range_high for e in estimates[-3:]] == [0.0, 0.0, 0.0]
    upper, damage = displacement_estimates({}, 0.0, 0.0)
    assert upper.range_high == damage.range_high == 0.0


def test_earthquake_estimates_order_and_values() -> None:
    bins = np.array([5, 6, 7, 8, 9, 10, 11], dtype=np.int64)
    persons = np.array([1e5, 5e4, 2e4, 5000.0, 1000.0, 200.0, 50.0])
    households = np.full(7, 100.0)
    estimates = earthquake_estimates(bins, persons, households, gdp_per_capita_usd=4000.0)
    exposure = exposure_by_mmi(bins, persons)
    fat = pager_fatality_median(exposure)
    usd = pager_economic_loss_usd(exposure, 4000.0)
    (itb,) = itb_fatality(exposure)
    assert estimates[:5] == pager_fatality_ranges(fat)
    assert estimates[5:10] == pager_economic_ranges(usd)
    assert estimates[10] == itb
    assert estimates[11:] == displacement_estimates(exposure, fat, 700.0)

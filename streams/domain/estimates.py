"""Earthquake loss estimates with their uncertainty, as the anchor models publish them (pure, numpy).

Sources:
- USGS PAGER, the ``losspager`` package (github.com/usgs/pager):
  ``losspager/data/fatality.xml`` (Indonesia, ccode="ID": theta 13.248768, beta 0.150846,
  gnormvalue 1.714702; evalnormvalue/ZET 1.640737 is not used by the code);
  ``losspager/data/economy.xml`` (ID: theta 10.211, beta 0.102747, alpha 17.2525, gnormvalue 1.61729);
  ``losspager/models/emploss.py`` (``getLosses``: MMI 5-9 with MMI 10 folded into 9, ``int()`` of the
  loss; ``getCombinedG``: sqrt of the sum of squared ``gnormvalue`` over every key of the loss
  dictionary, capped at 2.5; ``getProbabilities``: ranges 0-1, 1-10, 10-100, 100-1000, 1000+ in deaths
  or in millions of USD; ``getAlertLevel``: <1 green, <100 yellow, <1000 orange, else red);
  ``losspager/models/econexposure.py`` (economic exposure = persons x per-capita GDP x alpha);
  ``losspager/utils/probs.py`` (``calcEmpiricalProbFromRange``: +0.00001 offsets, G replaced by
  1.7613 when the expected loss is below 1 and G > 1.7, expected loss below 0.001 replaced by 0.5);
  ``losspager/io/pagerdata.py`` (overall alert = the higher of the fatality and economic alerts).
  Jaiswal, K., Wald, D. (2010), Earthquake Spectra 26(4):1017-1037, for the fatality model;
  Jaiswal, K., Wald, D. (2011), USGS Open-File Report 2011-1116, for the economic model.
- InaSAFE (github.com/inasafe/inasafe): ``safe/definitions/earthquake.py``, the default earthquake
  function ``itb_bayesian_fatality_rates`` (Sengara, Suarjana, Yulman, Ghasemi, Ryu, "An Empirical
  Fatality Model for Indonesia Based on a Bayesian Approach"): median fatality rates per MMI class,
  no published range in InaSAFE 4; ``safe/definitions/hazard_classifications.py``
  (``earthquake_mmi_scale``: displacement_rate 1.0 for classes VI-X, 0.0 below; classes k cover
  (k-0.5, k+0.5], the top class is X); InaSAFE 3's ITB impact function
  (``safe/impact_functions/earthquake/itb_earthquake_fatality_model/impact_function.py``): displaced
  = displacement_rate x (exposed - fatalities) per MMI class.
- Gruenthal, G. (ed.) (1998), European Macroseismic Scale 1998 (EMS-98), Cahiers du Centre Europeen
  de Geodynamique et de Seismologie 15, Luxembourg: the damage-to-buildings statements of degrees
  VI-XII for vulnerability classes A and B, the damage grades (grade 4 "very heavy damage", grade 5
  "destruction") and the quantity definitions few / many / most.
- Musson, R. M. W., Gruenthal, G., Stucchi, M. (2010), "The comparison of macroseismic intensity
  scales", J. Seismology 14:413-428: MMI and EMS-98 treated as equivalent degree for degree (the
  JRC RAPID-N estimator maps an MMI bin k to EMS-98 degree k the same way).
- World Bank, World Development Indicators, NY.GDP.PCAP.CD (GDP per capita, current US$),
  Indonesia 2024: US$4,925 (BPS reports US$4,960.3 for 2024).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.domain.hazard import fatality_rate

__all__ = [
    "ECONOMIC_RANGES_USD",
    "FATALITY_RANGES",
    "INDONESIA_GDP_PER_CAPITA_USD",
    "RangeEstimate",
    "displacement_estimates",
    "earthquake_estimates",
    "exposure_by_mmi",
    "itb_fatality",
    "most_likely",
    "pager_alert",
    "pager_economic_loss_usd",
    "pager_economic_ranges",
    "pager_fatality_median",
    "pager_fatality_ranges",
]

Floats = npt.NDArray[np.float64]

#: PAGER's five loss ranges: 0, 1-9, 10-99, 100-999, 1,000+ deaths (losspager's three red
#: ranges 1000-10000, 10000-100000 and 100000+ are merged into one open-ended range).
FATALITY_RANGES: tuple[tuple[float, float | None], ...] = (
    (0.0, 1.0),
    (1.0, 10.0),
    (10.0, 100.0),
    (100.0, 1000.0),
    (1000.0, None),
)
#: The same ranges for economic losses in US$: <$1M, $1-10M, $10-100M, $100M-1B, $1B+.
ECONOMIC_RANGES_USD: tuple[tuple[float, float | None], ...] = (
    (0.0, 1e6),
    (1e6, 1e7),
    (1e7, 1e8),
    (1e8, 1e9),
    (1e9, None),
)

#: World Bank NY.GDP.PCAP.CD, Indonesia, 2024 (current US$). losspager takes the event year's value.
INDONESIA_GDP_PER_CAPITA_USD = 4925.0

# losspager/data/economy.xml, ccode="ID".
_ECON_THETA_ID = 10.211
_ECON_BETA_ID = 0.102747
_ECON_ALPHA_ID = 17.2525
# gnormvalue (the L2G norm) of the Indonesian fatality and economic models; losspager's G.
_FAT_GNORM_ID = 1.714702
_ECON_GNORM_ID = 1.61729
# emploss.DEFAULT_L2G: getCombinedG runs over every key of the getLosses() dictionary, and its
# "TotalFatalities" / "TotalDollars" key resolves to the default model, whose L2G is 1.0. For a
# one-country event G is therefore sqrt(gnorm**2 + 1): 1.98499 (deaths), 1.90148 (economic).
_DEFAULT_L2G = 1.0
_MAX_G = 2.5
# losspager/utils/probs.py, calcEmpiricalProbFromRange.
_OFFSET = 0.00001
_SMALL_LOSS_G = 1.7613
_SMALL_LOSS_G_ABOVE = 1.7
_ZERO_LOSS = 0.001
_ZERO_LOSS_EXPECTED = 0.5

# InaSAFE safe/definitions/earthquake.py, itb_bayesian_fatality_rates (medians; 0 below MMI VI).
# Classes above X do not exist in InaSAFE's MMI classification; XI and XII are treated as X here.
_ITB_BAYESIAN_RATES: dict[int, float] = {
    6: 3.41733122522e-05,
    7: 0.000387804494226,
    8: 0.001851451786,
    9: 0.00787294191661,
    10: 0.0314512157378,
}
# InaSAFE's earthquake_mmi_scale gives displacement_rate 1.0 from VI up with no derivation or
# citation (its only link is the USGS MMI description page); the rate is a nominal assumption, not
# a fragility result, so the estimate is labelled an upper bound. No InaSAFE text calling it
# "nominal" was found.
_INASAFE_DISPLACED_FROM_MMI = 6

# EMS-98 quantity definitions (the overlapping ranges of the scale's figure, read as fractions):
# few 0-20 %, many 10-60 %, most 50-100 %. The low bound takes each term's lower end, the high
# bound its upper end. "Practically all" (degree XII) is taken as 100 %. The figure is graphical;
# these ends are our reading of it and were not checked against the printed scale for this module.
# Typical Indonesian non-engineered houses are taken as EMS-98 class B (brick unreinforced masonry,
# the scale's most likely class for it) to class A (rubble stone, adobe); timber and confined
# masonry houses (classes C-D) would be damaged less.
_FEW = (0.0, 0.2)
_MANY = (0.1, 0.6)
_MOST = (0.5, 1.0)
_ALL = (1.0, 1.0)
# EMS-98 statements on damage grade 4 (very heavy damage) and 5 (destruction), the grades that
# leave a house uninhabitable, for class B (simple-stone / brick unreinforced masonry, the low
# bound) and class A (rubble stone, adobe, the high bound):
#   VII  A: many grade 3, a few grade 4.            B: many grade 2, a few grade 3.
#   VIII A: many grade 4, a few grade 5.            B: many grade 3, a few grade 4.
#   IX   A: many grade 5.                           B: many grade 4, a few grade 5.
#   X    A: most grade 5.                           B: many grade 5.
#   XI   (A not described: at least as at X).       B: most grade 5.
#   XII  practically all structures destroyed.
_EMS_STATEMENTS_A: dict[int, tuple[tuple[float, float], ...]] = {
    7: (_FEW,),
    8: (_MANY, _FEW),
    9: (_MANY,),
    10: (_MOST,),
    11: (_MOST,),
    12: (_ALL,),
}
_EMS_STATEMENTS_B: dict[int, tuple[tuple[float, float], ...]] = {
    8: (_FEW,),
    9: (_MANY, _FEW),
    10: (_MANY,),
    11: (_MOST,),
    12: (_ALL,),
}


def _uninhabitable_shares(statements: Mapping[int, tuple[tuple[float, float], ...]], end: int) -> Floats:
    """Share of houses at grade 4-5 per MMI 0..12, non-decreasing (EMS-98 names only the typical grades)."""
    shares = np.zeros(13)
    for level in range(13):
        shares[level] = min(1.0, sum(q[end] for q in statements.get(level, ())))
    return np.maximum.accumulate(shares)


_UNINHABITABLE_LOW = _uninhabitable_shares(_EMS_STATEMENTS_B, 0)
_UNINHABITABLE_HIGH = _uninhabitable_shares(_EMS_STATEMENTS_A, 1)

#: The en dash of the page's ranges ("1\u20139 jiwa").
_DASH = "\u2013"

_LEVELS = ("green", "yellow", "orange", "red")
# losspager emploss.getAlertLevel: deaths, or millions of US$.
_ALERT_LIMITS = (1.0, 100.0, 1000.0)


@dataclass(frozen=True)
class RangeEstimate:
    """One range (or labelled bound) of one model's estimate of one outcome."""

    model: str
    outcome: str
    range_low: float
    range_high: float | None
    probability: float | None
    central: float
    label: str


def _number(value: float) -> str:
    """Indonesian thousands separator: 12345 -> '12.345'."""
    return f"{value:,.0f}".replace(",", ".")


def _percent(probability: float) -> str:
    if probability < 0.005:
        return "<1%"
    if probability > 0.995:
        return ">99%"
    return f"{probability * 100:.0f}%"


def exposure_by_mmi(bins: npt.NDArray[np.int64], persons: npt.NDArray[np.float64]) -> dict[int, float]:
    """Persons exposed per PAGER MMI bin (as from ``hazard.mmi_bin``); NaN persons count as 0."""
    b = np.clip(np.asarray(bins, dtype=np.int64), 0, None)
    if b.size == 0:
        return {}
    p = np.nan_to_num(np.asarray(persons, dtype=np.float64))
    sums = np.bincount(b, weights=p)
    return {int(k): float(sums[k]) for k in np.unique(b)}


def _persons(exposure: Mapping[int, float]) -> Floats:
    """Exposure as persons per MMI 0..12 (bins above XII count as XII)."""
    out = np.zeros(13)
    for level, persons in exposure.items():
        out[min(max(int(level), 0), 12)] += persons
    return out


def _pager_persons(exposure: Mapping[int, float]) -> Floats:
    """Persons at MMI 5..9 as losspager sums them: MMI 10 and above folded into 9."""
    p = _persons(exposure)
    folded = p[5:10].copy()
    folded[-1] += p[10:].sum()
    return folded


def pager_fatality_median(exposure: Mapping[int, float]) -> float:
    """PAGER empirical fatality model for Indonesia: sum over MMI 5-9 of persons x rate."""
    rates = fatality_rate(np.arange(5, 10, dtype=np.int64))
    return float(np.dot(_pager_persons(exposure), rates))


def _combined_g(gnorm: float) -> float:
    """losspager getCombinedG for a one-country loss dictionary (country key + total key)."""
    return min(_MAX_G, math.hypot(gnorm, _DEFAULT_L2G))


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _range_probabilities(
    expected: float, g: float, bounds: Sequence[tuple[float, float | None]]
) -> list[float]:
    """losspager calcEmpiricalProbFromRange over contiguous ranges, in the ranges' own unit.

    The first range is taken from 0 (losspager starts it at 0.00001) and the last is open-ended
    (losspager stops it at 1e12), so that the probabilities sum to 1.
    """
    e = expected + _OFFSET
    if e < 1 and g > _SMALL_LOSS_G_ABOVE:
        g = _SMALL_LOSS_G
    if e < _ZERO_LOSS:
        e = _ZERO_LOSS_EXPECTED
    log_e = math.log(e)

    def cdf(x: float | None) -> float:
        return 1.0 if x is None else _phi((math.log(x + _OFFSET) - log_e) / g)

    probs = []
    for i, (low, high) in enumerate(bounds):
        lower = 0.0 if i == 0 else cdf(low)
        probs.append(cdf(high) - lower)
    return probs


def _fatality_label(low: float, high: float | None) -> str:
    if high is None:
        return f"{_number(low)}+ jiwa"
    if low == 0:
        return "0 jiwa"
    return f"{_number(low)}{_DASH}{_number(high - 1)} jiwa"


def pager_fatality_ranges(
    median: float, *, truncate: bool = False, g: float | None = _FAT_GNORM_ID
) -> list[RangeEstimate]:
    """PAGER's five fatality ranges with their probabilities (summing to 1): a lognormal about
    the median with the Indonesian model's error term (``gnormvalue`` 1.714702).

    losspager's own code differs in two ways, available here for comparison: ``truncate`` applies
    its ``int()`` to the median (every median below 1 then gives its zero-loss histogram), and
    ``g=None`` takes its combined G, which also counts the default model's 1.0 (sqrt(1.714702**2 +
    1) = 1.98499). Both follow losspager's ``calcEmpiricalProbFromRange`` below an expected loss
    of 1 (G 1.7613).
    """
    median = max(0.0, float(median))
    expected = float(math.floor(median)) if truncate else median
    spread = _combined_g(_FAT_GNORM_ID) if g is None else g
    probs = _range_probabilities(expected, spread, FATALITY_RANGES)
    return [
        RangeEstimate(
            model="pager_fatality",
            outcome="deaths",
            range_low=low,
            range_high=high,
            probability=p,
            central=median,
            label=f"perkiraan PAGER {_fatality_label(low, high)} (peluang {_percent(p)})",
        )
        for (low, high), p in zip(FATALITY_RANGES, probs, strict=True)
    ]


def pager_economic_loss_usd(
    exposure: Mapping[int, float],
    gdp_per_capita_usd: float = INDONESIA_GDP_PER_CAPITA_USD,
    *,
    alpha: float = _ECON_ALPHA_ID,
) -> float:
    """PAGER empirical economic model for Indonesia: sum over MMI 5-9 of persons x GDP x alpha x rate."""
    rates = np.array([_phi(math.log(mmi / _ECON_THETA_ID) / _ECON_BETA_ID) for mmi in range(5, 10)])
    return float(np.dot(_pager_persons(exposure) * gdp_per_capita_usd * alpha, rates))


def _usd_label(value: float) -> str:
    if value >= 1e9:
        return f"US${_number(value / 1e9)} miliar"
    if value >= 1e6:
        return f"US${_number(value / 1e6)} juta"
    return f"US${_number(value)}"


def _economic_label(low: float, high: float | None) -> str:
    if high is None:
        return f"≥ {_usd_label(low)}"
    if low == 0:
        return f"< {_usd_label(high)}"
    lo, hi = _usd_label(low), _usd_label(high)
    if lo.rsplit(" ", 1)[-1] == hi.rsplit(" ", 1)[-1]:
        lo = lo.rsplit(" ", 1)[0]
    return f"{lo}{_DASH}{hi.removeprefix('US$')}"


def pager_economic_ranges(median_usd: float, *, g: float | None = _ECON_GNORM_ID) -> list[RangeEstimate]:
    """PAGER's five economic ranges with their probabilities (computed in millions of US$): a
    lognormal about the median with the Indonesian model's error term (``gnormvalue`` 1.61729).

    ``g=None`` takes losspager's combined G instead (sqrt(1.61729**2 + 1) = 1.90148); both follow
    losspager below an expected loss of US$1 million (G 1.7613).
    """
    median_usd = max(0.0, float(median_usd))
    spread = _combined_g(_ECON_GNORM_ID) if g is None else g
    in_millions = [(low / 1e6, None if high is None else high / 1e6) for low, high in ECONOMIC_RANGES_USD]
    probs = _range_probabilities(float(int(median_usd)) / 1e6, spread, in_millions)
    return [
        RangeEstimate(
            model="pager_economic",
            outcome="economic_loss_usd",
            range_low=low,
            range_high=high,
            probability=p,
            central=median_usd,
            label=f"perkiraan PAGER kerugian {_economic_label(low, high)} (peluang {_percent(p)})",
        )
        for (low, high), p in zip(ECONOMIC_RANGES_USD, probs, strict=True)
    ]


def _alert(value: float) -> str:
    for limit, level in zip(_ALERT_LIMITS, _LEVELS, strict=False):
        if value < limit:
            return level
    return _LEVELS[-1]


def pager_alert(fatality_median: float, economic_median_usd: float) -> tuple[str, str, str]:
    """(overall, fatality, economic) PAGER alert levels; overall is the higher of the two."""
    fatality = _alert(fatality_median)
    economic = _alert(economic_median_usd / 1e6)
    overall = _LEVELS[max(_LEVELS.index(fatality), _LEVELS.index(economic))]
    return overall, fatality, economic


def most_likely(ranges: Sequence[RangeEstimate]) -> RangeEstimate:
    """The range with the highest probability (the first on a tie; ranges without one rank last)."""
    if not ranges:
        raise ValueError("no ranges")
    return max(ranges, key=lambda r: -1.0 if r.probability is None else r.probability)


def itb_fatality(exposure: Mapping[int, float]) -> list[RangeEstimate]:
    """InaSAFE's default ITB Bayesian fatality model: one point estimate (InaSAFE 4 publishes only medians).

    InaSAFE 3 binned posterior samples (worden_berngamma_log_fat_rate_inasafe_10.csv) into
    probabilities; InaSAFE 4 kept the medians only, so no range is given here.
    """
    persons = _persons(exposure)
    rates = np.array([_ITB_BAYESIAN_RATES.get(min(level, 10), 0.0) for level in range(13)])
    deaths = float(np.dot(persons, rates))
    return [
        RangeEstimate(
            model="itb_fatality",
            outcome="deaths",
            range_low=deaths,
            range_high=deaths,
            probability=None,
            central=deaths,
            label=f"perkiraan ITB (InaSAFE) {_number(deaths)} jiwa — angka tunggal, tanpa rentang terbit",
        )
    ]


def displacement_estimates(
    exposure: Mapping[int, float], deaths: float, households: float
) -> list[RangeEstimate]:
    """Displaced persons: InaSAFE's nominal upper bound and an EMS-98 house-damage range.

    The damage range counts persons in houses expected at EMS-98 damage grade 4-5 (uninhabitable),
    class B shares with each quantity's lower end (low) to class A with the upper end (high), MMI
    read as the EMS-98 degree, minus ``deaths``; its central value is the midpoint (EMS-98 gives
    none). ``households`` (in the same area) converts persons to houses for the label, one
    household per house.
    """
    persons = _persons(exposure)
    deaths = max(0.0, float(deaths))
    upper = max(0.0, float(persons[_INASAFE_DISPLACED_FROM_MMI:].sum()) - deaths)
    low = max(0.0, float(np.dot(persons, _UNINHABITABLE_LOW)) - deaths)
    high = max(0.0, float(np.dot(persons, _UNINHABITABLE_HIGH)) - deaths)
    total = float(persons.sum())
    houses = ""
    if households > 0 and total > 0:
        size = total / households
        houses = f" (≈ {_number(low / size)}{_DASH}{_number(high / size)} rumah)"
    return [
        RangeEstimate(
            model="inasafe_displacement",
            outcome="displaced",
            range_low=0.0,
            range_high=upper,
            probability=None,
            central=upper,
            label=(
                f"batas atas nominal InaSAFE {_number(upper)} jiwa"
                " (semua penduduk MMI ≥ VI, bukan kurva kerentanan)"
            ),
        ),
        RangeEstimate(
            model="damage_displacement",
            outcome="displaced",
            range_low=low,
            range_high=high,
            probability=None,
            central=(low + high) / 2,
            label=(
                f"pengungsi dari rumah rusak berat (EMS-98 kelas A{_DASH}B)"
                f" {_number(low)}{_DASH}{_number(high)} jiwa{houses}"
            ),
        ),
    ]


def earthquake_estimates(
    bins: npt.NDArray[np.int64],
    persons: npt.NDArray[np.float64],
    households_per_village: npt.NDArray[np.float64],
    gdp_per_capita_usd: float = INDONESIA_GDP_PER_CAPITA_USD,
) -> list[RangeEstimate]:
    """Every estimate for one earthquake: PAGER deaths, PAGER economic, ITB, then displacement.

    Displacement subtracts PAGER's deaths (dampak's death estimate), as InaSAFE subtracts its own
    fatality model's.
    """
    exposure = exposure_by_mmi(bins, persons)
    itb = itb_fatality(exposure)
    households = float(np.nansum(np.asarray(households_per_village, dtype=np.float64)))
    deaths = pager_fatality_median(exposure)
    return [
        *pager_fatality_ranges(deaths),
        *pager_economic_ranges(pager_economic_loss_usd(exposure, gdp_per_capita_usd)),
        *itb,
        *displacement_estimates(exposure, deaths, households),
    ]

"""Exposure of registry villages to an alert, and its estimated consequences (pure, vectorised).

Earthquakes: MMI at every village centroid (AWW 2012), PAGER bins, deaths and InaSAFE displacement;
villages below MMI IV are left out. Area hazards: the listed areas (a code at any level covers its
villages), displacement by hazard class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.alerts import Alert, AreaImpact
from schemas.common import regency_of
from streams.domain.hazard import (
    DisplacementRates,
    area_displacement_rate,
    epicentral_distance_km,
    fatality_rate,
    mmi_aww2012,
    mmi_bin,
    pager_level,
)

__all__ = ["ROMAN", "Exposure", "VillageExposure", "VillageStats", "exposure"]

logger = logging.getLogger(__name__)

ROMAN = ("0", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
_MIN_BIN = 4  # villages below MMI IV are not written


@dataclass(frozen=True)
class VillageStats:
    """Registry statistics per village (from the ``village_stats`` view), as parallel arrays."""

    codes: npt.NDArray[np.str_]
    households: npt.NDArray[np.int64]
    persons: npt.NDArray[np.int64]
    kpm_households: npt.NDArray[np.int64]
    vulnerable: npt.NDArray[np.int64]
    pregnant: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]  # NaN where no household has coordinates
    lon: npt.NDArray[np.float64]

    @classmethod
    def from_columns(cls, columns: dict[str, list[Any]]) -> VillageStats:
        def ints(name: str) -> npt.NDArray[np.int64]:
            return np.asarray(columns[name], dtype=np.int64)

        def floats(name: str) -> npt.NDArray[np.float64]:
            return np.asarray([np.nan if v is None else v for v in columns[name]], dtype=np.float64)

        return cls(
            codes=np.asarray(columns["village_code"], dtype=np.str_),
            households=ints("households"),
            persons=ints("persons"),
            kpm_households=ints("kpm_households"),
            vulnerable=ints("vulnerable_persons"),
            pregnant=ints("pregnant"),
            lat=floats("lat"),
            lon=floats("lon"),
        )


@dataclass(frozen=True, slots=True)
class VillageExposure:
    """One village's exposure to an alert and its estimated consequences."""

    village_code: str
    mmi: float | None
    hazard_class: str
    households: int
    persons: int
    kpm_households: int
    vulnerable: int
    pregnant: int
    est_displaced: float
    est_deaths: float

    @property
    def regency_code(self) -> str:
        return regency_of(self.village_code)


@dataclass
class Exposure:
    villages: list[VillageExposure] = field(default_factory=list)
    households: int = 0
    persons: int = 0
    kpm_households: int = 0
    deaths: float = 0.0
    displaced: float = 0.0

    @property
    def pager_level(self) -> str:
        return pager_level(self.deaths)


def exposure(alert: Alert, stats: VillageStats, rates: DisplacementRates) -> Exposure:
    """Exposure of every village ``alert`` reaches, with totals. Never raises on empty stats."""
    if alert.hazard == "earthquake":
        return _earthquake(alert, stats, rates)
    return _areas(alert, stats, rates)


def _earthquake(alert: Alert, stats: VillageStats, rates: DisplacementRates) -> Exposure:
    assert alert.lat is not None and alert.lon is not None
    assert alert.magnitude is not None and alert.depth_km is not None
    located = ~np.isnan(stats.lat)
    idx = np.flatnonzero(located)
    distance = epicentral_distance_km(alert.lat, alert.lon, stats.lat[idx], stats.lon[idx])
    mmi = mmi_aww2012(alert.magnitude, alert.depth_km, distance)
    bins = mmi_bin(mmi)
    keep = bins >= _MIN_BIN
    idx, mmi, bins = idx[keep], mmi[keep], bins[keep]
    persons = stats.persons[idx].astype(np.float64)
    deaths = persons * fatality_rate(bins)
    displaced = np.where(bins >= rates.earthquake_min_mmi, (persons - deaths) * rates.earthquake, 0.0)
    out = Exposure()
    for j, i in enumerate(idx.tolist()):
        code = str(stats.codes[i])
        out.villages.append(
            _village(code, stats, i, float(mmi[j]), f"MMI {ROMAN[min(int(bins[j]), 12)]}",
                     float(displaced[j]), float(deaths[j]))
        )  # fmt: skip
    _total(out, stats, idx, float(deaths.sum()), float(displaced.sum()))
    return out


def _areas(alert: Alert, stats: VillageStats, rates: DisplacementRates) -> Exposure:
    out = Exposure()
    position = {str(c): i for i, c in enumerate(stats.codes)}
    chosen: dict[str, tuple[int | None, str, float]] = {}
    for area in alert.areas:
        code = area.village_code
        rate = area_displacement_rate(alert.hazard, area.severity, area.depth_cm, rates)
        label = f"{alert.hazard}:{area.severity}" + (
            f":{area.depth_cm:g}cm" if area.depth_cm is not None else ""
        )
        if code is None:
            for j in np.flatnonzero(_inside(area, stats)).tolist():
                chosen[str(stats.codes[j])] = (j, label, rate)
        elif len(code) == 13:
            chosen[code] = (position.get(code), label, rate)
        else:
            prefix = code + "."
            for village in np.asarray(stats.codes)[np.char.startswith(stats.codes, prefix)].tolist():
                chosen[village] = (position[village], label, rate)
    idx = []
    for village_code, (at, label, rate) in sorted(chosen.items()):
        persons = int(stats.persons[at]) if at is not None else 0
        out.villages.append(_village(village_code, stats, at, None, label, persons * rate, 0.0))
        if at is not None:
            idx.append(at)
    _total(out, stats, np.asarray(idx, dtype=np.int64), 0.0, sum(v.est_displaced for v in out.villages))
    return out


def _inside(area: AreaImpact, stats: VillageStats) -> npt.NDArray[np.bool_]:
    """Villages whose registry centroid lies in the area's circle or polygon (even-odd rule; the
    areas are small enough that latitude and longitude serve as plane coordinates)."""
    located = ~np.isnan(stats.lat)
    if area.circle is not None:
        lat, lon, radius_km = area.circle
        distance = np.full(len(stats.lat), np.inf)
        distance[located] = epicentral_distance_km(lat, lon, stats.lat[located], stats.lon[located])
        return np.asarray(distance <= radius_km)
    y, x = stats.lat, stats.lon
    inside = np.zeros(len(y), dtype=bool)
    points = list(area.polygon)
    for (y1, x1), (y2, x2) in zip(points, points[1:] + points[:1], strict=True):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside & located


def _village(
    code: str, stats: VillageStats, i: int | None,
    mmi: float | None, hazard_class: str, displaced: float, deaths: float,
) -> VillageExposure:  # fmt: skip
    def pick(arr: npt.NDArray[np.int64]) -> int:
        return int(arr[i]) if i is not None else 0

    return VillageExposure(
        village_code=code,
        mmi=mmi,
        hazard_class=hazard_class,
        households=pick(stats.households),
        persons=pick(stats.persons),
        kpm_households=pick(stats.kpm_households),
        vulnerable=pick(stats.vulnerable),
        pregnant=pick(stats.pregnant),
        est_displaced=displaced,
        est_deaths=deaths,
    )


def _total(
    out: Exposure, stats: VillageStats, idx: npt.NDArray[np.int64], deaths: float, displaced: float
) -> None:
    out.households = int(stats.households[idx].sum())
    out.persons = int(stats.persons[idx].sum())
    out.kpm_households = int(stats.kpm_households[idx].sum())
    out.deaths = deaths
    out.displaced = displaced

"""Exposure of registry villages to an alert, and its estimated consequences (pure, vectorised).

Earthquakes: MMI at every village centroid (AWW 2012), PAGER bins, deaths and InaSAFE displacement;
villages below MMI IV are left out. Area hazards: the listed areas (a code at any level covers its
villages), displacement by hazard class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
_MMI_CLASS = tuple(f"MMI {r}" for r in ROMAN)
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


class VillageExposure(NamedTuple):
    """One village's exposure to an alert and its estimated consequences (a named tuple: an
    alert can reach every village of a province, made by the tens of thousands at once)."""

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
    classes = [_MMI_CLASS[b] for b in np.minimum(bins, 12).tolist()]
    out = Exposure(villages=_villages(stats, idx, mmi.tolist(), classes, displaced.tolist(), deaths.tolist()))
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
    picked = sorted(chosen.items())
    known = [(j, label, rate) for _, (j, label, rate) in picked if j is not None]
    positions, labels, rates_of = zip(*known, strict=True) if known else ((), (), ())
    idx = np.asarray(positions, dtype=np.int64)
    displaced = (stats.persons[idx] * np.asarray(rates_of, dtype=np.float64)).tolist()
    found = _villages(stats, idx, [None] * len(idx), list(labels), displaced, [0.0] * len(idx))
    # A listed village the registry does not know is kept, with nothing counted in it.
    by_code = {v.village_code: v for v in found}
    out.villages = [
        by_code.get(code) or VillageExposure(code, None, label, 0, 0, 0, 0, 0, 0.0, 0.0)
        for code, (_, label, _) in picked
    ]
    _total(out, stats, idx, 0.0, sum(v.est_displaced for v in out.villages))
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


def _villages(
    stats: VillageStats, idx: npt.NDArray[np.int64], mmi: list[float | None],
    classes: list[str], displaced: list[float], deaths: list[float],
) -> list[VillageExposure]:  # fmt: skip
    """The villages at ``idx`` with their estimates (parallel lists): the registry's figures
    picked for all of them at once, not element by element."""
    return list(
        map(
            VillageExposure,
            stats.codes[idx].tolist(), mmi, classes,
            stats.households[idx].tolist(), stats.persons[idx].tolist(), stats.kpm_households[idx].tolist(),
            stats.vulnerable[idx].tolist(), stats.pregnant[idx].tolist(),
            displaced, deaths,
        )
    )  # fmt: skip


def _total(
    out: Exposure, stats: VillageStats, idx: npt.NDArray[np.int64], deaths: float, displaced: float
) -> None:
    out.households = int(stats.households[idx].sum())
    out.persons = int(stats.persons[idx].sum())
    out.kpm_households = int(stats.kpm_households[idx].sum())
    out.deaths = deaths
    out.displaced = displaced

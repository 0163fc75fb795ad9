"""Exposure of registry villages to an alert, and its estimated consequences (pure, vectorised).

Earthquakes: MMI at every village centroid (AWW 2012), corrected by BMKG's felt reports when
any name a known place (streams.domain.shakemap: ShakeMap 4's conditional field, Worden et al.
2018), PAGER bins, deaths and InaSAFE displacement from the corrected MMI; the uncorrected MMI
is kept beside it (``mmi_predicted``); villages below MMI IV are left out. Area hazards: the
listed areas (a code at any level covers its villages), displacement by hazard class.
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
    mmi_bin,
    pager_level,
)
from streams.domain.shakemap import intensity_field

__all__ = ["ROMAN", "Exposure", "VillageColumns", "VillageExposure", "VillageStats", "exposure"]

logger = logging.getLogger(__name__)

ROMAN = ("0", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
_MMI_CLASS = tuple(f"MMI {r}" for r in ROMAN)
_MIN_BIN = 4  # villages below MMI IV are not written

Floats = npt.NDArray[np.float64]


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
    mmi: float | None  # corrected by the felt reports when there are any
    mmi_predicted: float | None  # the intensity prediction alone (None for area hazards)
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


class VillageColumns(NamedTuple):
    """The exposed villages as parallel lists, one per field of ``VillageExposure``. Columns of
    plain values, not a tuple per village: 83,762 tuples made the interpreter's full garbage
    collection run (150 ms, every thread stopped) while the estimate ran beside the event loop."""

    village_code: list[str]
    mmi: list[float | None]
    mmi_predicted: list[float | None]
    hazard_class: list[str]
    households: list[int]
    persons: list[int]
    kpm_households: list[int]
    vulnerable: list[int]
    pregnant: list[int]
    est_displaced: list[float]
    est_deaths: list[float]


def _no_villages() -> VillageColumns:
    return VillageColumns([], [], [], [], [], [], [], [], [], [], [])


@dataclass
class Exposure:
    columns: VillageColumns = field(default_factory=_no_villages)
    households: int = 0
    persons: int = 0
    kpm_households: int = 0
    deaths: float = 0.0
    displaced: float = 0.0
    felt_used: int = 0  # felt reports that corrected the intensity (earthquakes)

    @property
    def pager_level(self) -> str:
        return pager_level(self.deaths)

    @property
    def count(self) -> int:
        """The number of villages exposed."""
        return len(self.columns.village_code)

    @property
    def villages(self) -> list[VillageExposure]:
        """One named tuple per village exposed, in village code order (built when asked for)."""
        return list(map(VillageExposure, *self.columns))


def exposure(alert: Alert, stats: VillageStats, rates: DisplacementRates) -> Exposure:
    """Exposure of every village ``alert`` reaches, with totals. Never raises on empty stats."""
    if alert.hazard == "earthquake":
        return _earthquake(alert, stats, rates)
    return _areas(alert, stats, rates)


def _earthquake(alert: Alert, stats: VillageStats, rates: DisplacementRates) -> Exposure:
    assert alert.lat is not None and alert.lon is not None
    assert alert.magnitude is not None and alert.depth_km is not None
    lat, lon, magnitude, depth = alert.lat, alert.lon, alert.magnitude, alert.depth_km
    idx = np.flatnonzero(~np.isnan(stats.lat))
    mmi, predicted, felt_used = intensity_field(
        lat, lon, magnitude, depth, alert.felt, stats.lat[idx], stats.lon[idx]
    )
    bins = mmi_bin(mmi)
    keep = bins >= _MIN_BIN
    idx, mmi, predicted, bins = idx[keep], mmi[keep], predicted[keep], bins[keep]
    persons = stats.persons[idx].astype(np.float64)
    deaths = persons * fatality_rate(bins)
    displaced = np.where(bins >= rates.earthquake_min_mmi, (persons - deaths) * rates.earthquake, 0.0)
    classes = [_MMI_CLASS[b] for b in np.minimum(bins, 12).tolist()]
    out = Exposure(
        _villages(stats, idx, mmi.tolist(), predicted.tolist(), classes, displaced.tolist(), deaths.tolist()),
        felt_used=felt_used,
    )
    _total(out, stats, idx, float(deaths.sum()), float(displaced.sum()))
    return out


def _areas(alert: Alert, stats: VillageStats, rates: DisplacementRates) -> Exposure:
    """Each village takes the last listed area that covers it. Areas are applied to an array of
    area numbers, one slice or mask each, so that an alert of thousands of regency or province
    codes costs milliseconds (one scan of every village per code took 32 ms each)."""
    out = Exposure()
    order = np.argsort(stats.codes, kind="stable")
    by_code = stats.codes[order]
    located = ~np.isnan(stats.lat)
    area_of = np.full(len(stats.codes), -1, dtype=np.int64)
    labels: list[str] = []
    rates_of: list[float] = []
    unknown: dict[str, str] = {}  # listed villages the registry does not know: kept, nothing counted
    for n, area in enumerate(alert.areas):
        code = area.village_code
        labels.append(
            f"{alert.hazard}:{area.severity}" + (f":{area.depth_cm:g}cm" if area.depth_cm is not None else "")
        )
        rates_of.append(area_displacement_rate(alert.hazard, area.severity, area.depth_cm, rates))
        if code is None:
            area_of[_inside(area, stats, located)] = n
            continue
        # Codes sort by their prefix: a code's villages are one slice of the sorted codes ('/'
        # follows '.'); a village code is the slice of itself.
        if len(code) == 13:
            first, last = (int(np.searchsorted(by_code, code, side=side)) for side in ("left", "right"))
        else:
            first, last = np.searchsorted(by_code, [code + ".", code + "/"]).tolist()
        area_of[order[first:last]] = n
        if len(code) == 13 and first == last:
            unknown[code] = labels[n]
    idx = order[area_of[order] >= 0]
    which = area_of[idx]
    displaced = (
        stats.persons[idx] * np.asarray(rates_of, dtype=np.float64)[which] if len(idx) else np.zeros(0)
    )
    classes = [labels[k] for k in which.tolist()]
    none: list[float | None] = [None] * len(idx)
    found = _villages(stats, idx, none, none.copy(), classes, displaced.tolist(), [0.0] * len(idx))
    if unknown:
        merged = list(map(VillageExposure, *found))
        merged += [
            VillageExposure(c, None, None, label, 0, 0, 0, 0, 0, 0.0, 0.0) for c, label in unknown.items()
        ]
        merged.sort(key=lambda v: v.village_code)
        found = VillageColumns(*(list(column) for column in zip(*merged, strict=True)))
    out.columns = found
    _total(out, stats, idx, 0.0, float(displaced.sum()))
    return out


def _inside(area: AreaImpact, stats: VillageStats, located: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """The villages whose registry centroid lies in the area's circle or polygon (even-odd rule;
    the areas are small enough that latitude and longitude serve as plane coordinates). Only the
    villages in the shape's bounding box are tested against its edges."""
    if area.circle is not None:
        lat, lon, radius_km = area.circle
        near = np.flatnonzero(located)
        distance = epicentral_distance_km(lat, lon, stats.lat[near], stats.lon[near])
        return near[distance <= radius_km]
    shape = np.asarray(area.polygon, dtype=np.float64)
    (south, west), (north, east) = shape.min(axis=0), shape.max(axis=0)
    with np.errstate(invalid="ignore"):  # NaN (no coordinates) compares false
        box = (
            located & (stats.lat >= south) & (stats.lat <= north) & (stats.lon >= west) & (stats.lon <= east)
        )
    near = np.flatnonzero(box)
    y, x = stats.lat[near], stats.lon[near]
    inside = np.zeros(len(near), dtype=bool)
    ends = np.roll(shape, -1, axis=0)
    for (y1, x1), (y2, x2) in zip(shape.tolist(), ends.tolist(), strict=True):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return near[inside]


def _villages(
    stats: VillageStats, idx: npt.NDArray[np.int64], mmi: list[float | None],
    mmi_predicted: list[float | None], classes: list[str], displaced: list[float], deaths: list[float],
) -> VillageColumns:  # fmt: skip
    """The villages at ``idx`` with their estimates (parallel lists): the registry's figures
    picked for all of them at once, not element by element."""
    return VillageColumns(
        stats.codes[idx].tolist(), mmi, mmi_predicted, classes,
        stats.households[idx].tolist(), stats.persons[idx].tolist(), stats.kpm_households[idx].tolist(),
        stats.vulnerable[idx].tolist(), stats.pregnant[idx].tolist(),
        displaced, deaths,
    )  # fmt: skip


def _total(
    out: Exposure, stats: VillageStats, idx: npt.NDArray[np.int64], deaths: float, displaced: float
) -> None:
    out.households = int(stats.households[idx].sum())
    out.persons = int(stats.persons[idx].sum())
    out.kpm_households = int(stats.kpm_households[idx].sum())
    out.deaths = deaths
    out.displaced = displaced

"""Hazard intensity and its consequences, vectorised with numpy (no Kafka, no ClickHouse).

Sources:
- Allen, T. I., Wald, D. J., Worden, C. B. (2012), "Intensity attenuation for active crustal
  regions", J. Seismology 16:409-433; the hypocentral-distance equation (coefficients as in
  OpenQuake's ``AllenEtAl2012Rhypo``), and its standard deviation, which falls with distance:
  sigma = s1 + s2 / (1 + (R / s3)^2), s1 0.82, s2 0.37, s3 22.9 km (the same table).
- Jaiswal, K., Wald, D. (2010), "An empirical model for global earthquake fatality estimation",
  Earthquake Spectra 26(4) (USGS PAGER): exposure bins (MMI k covers [k-0.5, k+0.5)), the
  fatality model for Indonesia (theta 13.248768, beta 0.150846; MMI 5-9, 10+ folded into 9),
  and the PAGER alert levels.
- InaSAFE (BNPB, Geoscience Australia, World Bank/GFDRR), ``safe/definitions/
  hazard_classifications.py`` (github.com/inasafe/inasafe): default displacement rates per hazard
  class: ``earthquake_mmi_scale`` (1.0 from MMI VI), ``flood_petabencana_hazard_classes`` (depth:
  0-10 cm "use caution" 0.0, 10-70 cm 0.01, 71-150 cm 0.03, over 150 cm 0.05), ``volcano_hazard_
  classes`` (KRB III and II 1.0, KRB I 0.0), ``generic_hazard_classes`` (high and medium 1.0, low
  0.0), which InaSAFE applies to landslides, and ``tsunami_hazard_classes``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

__all__ = [
    "EARTH_RADIUS_KM",
    "DisplacementRates",
    "area_displacement_rate",
    "epicentral_distance_km",
    "fatality_rate",
    "mmi_aww2012",
    "mmi_bin",
    "mmi_sigma_aww2012",
    "pager_level",
]

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
_PAGER_THETA_ID = 13.248768
_PAGER_BETA_ID = 0.150846

Floats = npt.NDArray[np.float64]


def epicentral_distance_km(lat: float, lon: float, lats: Floats, lons: Floats) -> Floats:
    """Great-circle (haversine) distance from one point to many, in km."""
    p1, p2 = math.radians(lat), np.radians(lats)
    dphi = p2 - p1
    dlmb = np.radians(lons) - math.radians(lon)
    a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)


def mmi_aww2012(magnitude: float, depth_km: float, epicentral_km: Floats) -> Floats:
    """Allen, Wald & Worden (2012) hypocentral IPE; R is the hypocentral distance in km."""
    r = np.sqrt(np.asarray(epicentral_km, dtype=np.float64) ** 2 + depth_km**2)
    r_m = -0.209 + 2.042 * math.exp(magnitude - 5)
    mmi = 2.085 + 1.428 * magnitude - 1.402 * np.log(np.sqrt(r**2 + r_m**2))
    far = r > 50
    mmi = mmi + np.where(far, 0.078 * np.log(np.where(far, r, 50.0) / 50), 0.0)
    return np.clip(mmi, 1.0, 12.0)


def mmi_sigma_aww2012(hypocentral_km: Floats) -> Floats:
    """The standard deviation of Allen, Wald & Worden (2012)'s hypocentral IPE, in MMI units, at
    hypocentral distance R km: 0.82 + 0.37 / (1 + (R / 22.9)^2) (1.19 at the hypocentre, 0.82 far off)."""
    r = np.asarray(hypocentral_km, dtype=np.float64)
    return np.asarray(0.82 + 0.37 / (1.0 + (r / 22.9) ** 2), dtype=np.float64)


def mmi_bin(mmi: Floats) -> npt.NDArray[np.int64]:
    """PAGER exposure bin: level k covers [k-0.5, k+0.5)."""
    return np.floor(np.asarray(mmi) + 0.5).astype(np.int64)


def _fatality_rate_of_level(level: int) -> float:
    if level < 5:
        return 0.0
    z = math.log(min(level, 9) / _PAGER_THETA_ID) / _PAGER_BETA_ID
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


#: PAGER fatality rate for Indonesia indexed by MMI bin 0..12.
_FATALITY_BY_BIN = np.array([_fatality_rate_of_level(k) for k in range(13)])


def fatality_rate(bins: npt.NDArray[np.int64]) -> Floats:
    """PAGER empirical fatality rate for Indonesia by MMI bin (0 below V; X and above use IX)."""
    return np.asarray(_FATALITY_BY_BIN[np.clip(bins, 0, 12)], dtype=np.float64)


def pager_level(estimated_deaths: float) -> str:
    """PAGER alert level from estimated deaths: <1 green, <100 yellow, <1000 orange, else red."""
    if estimated_deaths < 1:
        return "green"
    if estimated_deaths < 100:
        return "yellow"
    if estimated_deaths < 1000:
        return "orange"
    return "red"


class DisplacementRates(BaseModel):
    """InaSAFE's defaults (module docstring); configurable through settings
    (``DAMPAK_DISPLACEMENT__<FIELD>``)."""

    model_config = ConfigDict(frozen=True)

    earthquake_min_mmi: int = 6  # earthquake_mmi_scale: 1.0 from VI, 0.0 below
    earthquake: float = 1.0
    flood_caution: float = 0.0  # < 10 cm (petabencana "use caution")
    flood_shallow: float = 0.01  # 10-70 cm (petabencana low)
    flood_medium: float = 0.03  # 71-150 cm (petabencana medium)
    flood_deep: float = 0.05  # > 150 cm (petabencana high)
    tsunami: float = 1.0  # >= 1 m inundation
    volcano_high: float = 1.0  # KRB III
    volcano_medium: float = 1.0  # KRB II
    landslide_high: float = 1.0  # generic_hazard_classes high
    landslide_medium: float = 1.0  # generic_hazard_classes medium


def area_displacement_rate(
    hazard: str, severity: str, depth_cm: float | None, rates: DisplacementRates
) -> float:
    """Share of exposed persons displaced in one listed area of an area hazard."""
    if hazard == "flood":
        if depth_cm is None:
            depth_cm = {"low": 50.0, "medium": 100.0, "high": 200.0}[severity]
        if depth_cm < 10:
            return rates.flood_caution
        if depth_cm < 70:
            return rates.flood_shallow
        return rates.flood_medium if depth_cm <= 150 else rates.flood_deep
    if hazard == "tsunami":
        deep = depth_cm >= 100 if depth_cm is not None else severity != "low"
        return rates.tsunami if deep else 0.0
    if hazard == "volcano":
        return {"high": rates.volcano_high, "medium": rates.volcano_medium}.get(severity, 0.0)
    if hazard == "landslide":
        return {"high": rates.landslide_high, "medium": rates.landslide_medium}.get(severity, 0.0)
    return 0.0

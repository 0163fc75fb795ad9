"""The predicted intensity field corrected by BMKG's felt reports, as ShakeMap does (pure, vectorised).

Sources:
- Worden, C. B., Thompson, E. M., Baker, J. W., Bradley, B. A., Luco, N., Wilson, D. J. (2018),
  "Spatial and spectral interpolation of ground-motion intensity measure observations", BSSA
  108(2):866-875 (ShakeMap 4): the field is the conditional mean of a multivariate normal given
  the observations' residuals against the prediction, the observations' own uncertainty added
  to the diagonal of their covariance.
- Loth, C., Baker, J. W. (2013), "A spatial cross-correlation model of ground motion spectral
  accelerations at multiple periods", Earthquake Engng Struct. Dyn. 42:397-417: the spatial
  correlation, rho(h) = b1 exp(-3h/20) + b2 exp(-3h/70) + b3 [h = 0] (h in km), with the
  coregionalization coefficients at 1 s (Tables II-IV: b1 0.32, b2 0.38, b3 0.30). ShakeMap 4's
  default correlation is this model, and it correlates MMI as the 1 s period
  (usgs/shakemap, ``coremods/model.py``, ``_get_period_arrays``).
- Allen, Wald & Worden (2012): the prediction and its standard deviation (streams.domain.hazard).
- The standard deviation of one felt report, sqrt(((max - min) / 2)^2 + 0.3^2): the report gives
  a range of whole intensities, its half-width taken as one standard deviation, and a whole
  intensity is itself uncertain by 0.3 (ShakeMap 4's standard deviation of an MMI observation
  that states none, ``default_mmi_stddev`` in ``coremods/model.py``; close to 1/sqrt(12), the
  deviation of rounding to a whole degree). "III" -> 0.30, "V-VI" -> 0.58.

ShakeMap first removes a between-event bias (one shift of the whole map); Allen, Wald & Worden
(2012) give only a total standard deviation, and a handful of coarse felt reports does not
warrant moving every village's intensity, so the correction here is the within-event one only:
it fades with distance from the reports, and far from all of them the field is the prediction.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from schemas.alerts import FeltIntensity
from schemas.geo import region_position
from schemas.regions import region_by_name, region_names
from streams.domain.hazard import epicentral_distance_km, mmi_aww2012, mmi_sigma_aww2012

__all__ = [
    "CORRELATION_LONG",
    "CORRELATION_NUGGET",
    "CORRELATION_SHORT",
    "FELT_SIGMA",
    "MAX_OBSERVATIONS",
    "Observation",
    "Predict",
    "condition_on_observations",
    "felt_observations",
    "intensity_field",
    "mmi_correlation",
]

logger = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]
#: The prediction at given points: (latitudes, longitudes) -> (MMI, its standard deviation).
Predict = Callable[[Floats, Floats], tuple[Floats, Floats]]

#: Loth & Baker (2013) at 1 s: the short-range (20 km), long-range (70 km) and nugget coefficients.
CORRELATION_SHORT = 0.32
CORRELATION_LONG = 0.38
CORRELATION_NUGGET = 0.30
#: The standard deviation of a felt intensity given as one whole degree (ShakeMap 4's default).
FELT_SIGMA = 0.3


@dataclass(frozen=True, slots=True)
class Observation:
    """One felt report placed on the map: ``place`` as BMKG wrote it, the Kemendagri regency or
    district ``code`` it names, that region's centroid, and the felt intensity with its standard
    deviation."""

    place: str
    code: str
    lat: float
    lon: float
    mmi: float
    sigma: float


def mmi_correlation(distance_km: Floats) -> Floats:
    """The correlation of two points' intensity residuals ``distance_km`` apart (Loth & Baker
    2013 at 1 s): 1 at the same point, 0.70 just beside it, 0.32 at 10 km, 0.045 at 50 km, 0.005 at 100 km."""
    h = np.asarray(distance_km, dtype=np.float64)
    rho = (
        CORRELATION_SHORT * np.exp(-3.0 * h / 20.0)
        + CORRELATION_LONG * np.exp(-3.0 * h / 70.0)
        + CORRELATION_NUGGET * (h == 0.0)
    )
    return np.asarray(np.nan_to_num(rho, nan=0.0), dtype=np.float64)  # no position: uncorrelated


# ------------------------------------------------------------------ felt reports -> observations
_QUALIFIER = re.compile(r"^(kabupaten|kab\.?|kota|kecamatan|kec\.?)\s+(.+)$")


def _compact(text: str) -> str:
    """Lower-case letters and digits only: "Arga Makmur" and "Argamakmur" meet."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@cache
def _bare_names() -> dict[str, tuple[str, ...]]:
    """Compact bare name -> regency and district codes: a regency by its name without "Kabupaten"
    or "Kota", a district by its name and, for a "Kota X" district, by X as well."""
    index: dict[str, list[str]] = {}
    for code, name in region_names().items():
        if len(code) not in (5, 8):
            continue
        m = _QUALIFIER.match(name.lower())
        keys = {_compact(name)}
        if m is not None and len(code) == 5:
            keys = {_compact(m.group(2))}
        elif m is not None and m.group(1) == "kota":
            keys.add(_compact(m.group(2)))
        for key in keys:
            index.setdefault(key, []).append(code)
    return {key: tuple(codes) for key, codes in index.items()}


def _is_city(code: str) -> bool:
    return len(code) == 5 and region_names().get(code, "").lower().startswith("kota ")


def _candidates(place: str) -> list[str]:
    """The regencies and districts ``place`` may name: the one schemas.regions finds, else every
    region of that bare name, narrowed by a leading "Kab."/"Kota"/"Kec." if the place has one."""
    code = region_by_name(place)
    if code is not None:
        return [code]
    text = " ".join(place.lower().split())
    m = _QUALIFIER.match(text)
    found = list(_bare_names().get(_compact(m.group(2) if m else text), ()))
    if m is None:
        return found
    kind = m.group(1).rstrip(".")
    if kind in ("kab", "kabupaten"):
        return [c for c in found if len(c) == 5 and not _is_city(c)]
    if kind == "kota":
        return [c for c in found if region_names().get(c, "").lower().startswith("kota ")]
    return [c for c in found if len(c) == 8]


def _resolve(place: str, lat: float, lon: float) -> tuple[str, tuple[float, float]] | str:
    """The region ``place`` names with its centroid, or the reason there is none. A bare name
    shared by several regions names, in this order of preference: a regency or city over a
    district (BMKG lists a district by a name no regency has, "III Lembang"); a regency over the
    city of the same name (BMKG writes a city as "Kota X": "III-IV Kota Bengkulu"); then the one
    nearest the epicentre."""
    candidates = _candidates(place)
    if not candidates:
        return "no regency or district has this name"
    placed = [(c, p) for c in candidates if (p := region_position(c)) is not None]
    if not placed:
        return f"no centroid shipped for {', '.join(candidates)}"
    if len(placed) == 1:
        return placed[0]
    lats = np.asarray([p[0] for _, p in placed], dtype=np.float64)
    lons = np.asarray([p[1] for _, p in placed], dtype=np.float64)
    distance = epicentral_distance_km(lat, lon, lats, lons).tolist()
    ranks = [(len(c) != 5, _is_city(c), d) for (c, _), d in zip(placed, distance, strict=True)]
    return placed[min(range(len(placed)), key=ranks.__getitem__)]


#: Felt places used at most. BMKG names a handful (six for Cianjur 2022), strongest first; an
#: alert may list thousands (``schemas.alerts.MAX_AREAS``), and each one used costs a pass over
#: every village and a row of the observations' system: the rest are left out, with a warning.
MAX_OBSERVATIONS = 32


def felt_observations(
    felt: Sequence[FeltIntensity], epicentre_lat: float, epicentre_lon: float
) -> list[Observation]:
    """BMKG's felt reports as observations: each place's region centroid, the middle of its
    felt range (V-VI -> 5.5) and its standard deviation (module docstring). Places that name no
    region, or none with a shipped centroid, are left out with a logged reason, and places after
    the first ``MAX_OBSERVATIONS`` are not read; never raises."""
    out: list[Observation] = []
    if len(felt) > MAX_OBSERVATIONS:
        logger.warning(
            "%d felt places: the first %d are used, as BMKG lists them", len(felt), MAX_OBSERVATIONS
        )
    for report in felt[:MAX_OBSERVATIONS]:
        place = report.place.strip()
        found = _resolve(place, epicentre_lat, epicentre_lon) if place else "no place name"
        if isinstance(found, str):
            logger.info("felt report %r left out: %s", report.place, found)
            continue
        code, (lat, lon) = found
        low, high = sorted((report.mmi_min, report.mmi_max))
        sigma = math.hypot((high - low) / 2.0, FELT_SIGMA)
        out.append(Observation(place, code, lat, lon, (low + high) / 2.0, sigma))
    return out


# ------------------------------------------------------------------ the conditional field
def condition_on_observations(
    lat: Floats,
    lon: Floats,
    mmi: Floats,
    sigma: Floats,
    observations: Sequence[Observation],
    predict: Predict,
) -> Floats:
    """The intensity at the points (``lat``, ``lon``), whose prediction is ``mmi`` with standard
    deviation ``sigma``, conditioned on ``observations`` (Worden et al. 2018):

        mmi + Sigma_YX (Sigma_XX + diag(s_obs^2))^-1 (x - mu_X),

    where mu_X and s_X are ``predict`` at the observations, x their values,
    Sigma_XX = rho(h_XX) s_X s_X' and Sigma_YX = rho(h_YX) sigma s_X' (rho: ``mmi_correlation``).
    The observations' system is solved once; each point then costs one correlation per
    observation, O(points x observations). Clipped to [1, 12]; without observations, ``mmi``."""
    values = np.asarray(mmi, dtype=np.float64)
    if not observations:
        return values.copy()
    o_lat = np.asarray([o.lat for o in observations], dtype=np.float64)
    o_lon = np.asarray([o.lon for o in observations], dtype=np.float64)
    o_mmi = np.asarray([o.mmi for o in observations], dtype=np.float64)
    o_sigma = np.asarray([o.sigma for o in observations], dtype=np.float64)
    mu_x, s_x = (np.asarray(a, dtype=np.float64) for a in predict(o_lat, o_lon))
    points = list(zip(o_lat.tolist(), o_lon.tolist(), strict=True))
    between = np.stack([epicentral_distance_km(a, b, o_lat, o_lon) for a, b in points])
    cov = mmi_correlation(between) * np.outer(s_x, s_x) + np.diag(o_sigma**2)
    weights = s_x * np.linalg.solve(cov, o_mmi - mu_x)  # s_X (Sigma_XX + noise)^-1 (x - mu_X)
    lats, lons = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    shift = np.zeros_like(values)
    for (a, b), w in zip(points, weights.tolist(), strict=True):
        shift += w * mmi_correlation(epicentral_distance_km(a, b, lats, lons))
    corrected = values + np.asarray(sigma, dtype=np.float64) * shift
    return np.asarray(np.clip(corrected, 1.0, 12.0), dtype=np.float64)


def intensity_field(
    lat: float,
    lon: float,
    magnitude: float,
    depth_km: float,
    felt: Sequence[FeltIntensity],
    lats: Floats,
    lons: Floats,
) -> tuple[Floats, Floats, int]:
    """An earthquake's intensity at the points (``lats``, ``lons``): the corrected field, the
    prediction before the correction (Allen, Wald & Worden 2012), and the number of felt reports
    used. The one field the exposure estimate and the map's contours are drawn from."""
    distance = epicentral_distance_km(lat, lon, lats, lons)
    predicted = mmi_aww2012(magnitude, depth_km, distance)
    observations = felt_observations(felt, lat, lon)
    if not observations:
        return predicted, predicted, 0

    def predict(at_lats: Floats, at_lons: Floats) -> tuple[Floats, Floats]:
        at = epicentral_distance_km(lat, lon, at_lats, at_lons)
        return mmi_aww2012(magnitude, depth_km, at), mmi_sigma_aww2012(np.hypot(at, depth_km))

    sigma = mmi_sigma_aww2012(np.hypot(distance, depth_km))
    mmi = condition_on_observations(lats, lons, predicted, sigma, observations, predict)
    return mmi, predicted, len(observations)

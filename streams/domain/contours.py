"""An earthquake's intensity contours for the command-center map (pure, vectorised).

The field is the one the exposure estimate uses (``streams.domain.shakemap.intensity_field``: Allen,
Wald & Worden 2012, corrected by BMKG's felt reports), evaluated on a regular grid around the
epicentre out to where the prediction falls below MMI IV. Each contour is drawn at a PAGER bin's
lower edge, MMI k - 0.5 (``streams.domain.hazard.mmi_bin``): inside the line of level k, a
village's estimated intensity is level k or more, the same class its colour and tooltip give. Lines
are traced by marching squares (Lorensen & Cline 1987; a saddle cell is split by its centre's
value) and returned as GeoJSON MultiLineStrings in [lon, lat] order (RFC 7946).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from schemas.alerts import FeltIntensity
from streams.domain.hazard import EARTH_RADIUS_KM, mmi_aww2012
from streams.domain.shakemap import intensity_field

__all__ = ["GRID_POINTS", "LEVELS", "alert_contours", "intensity_contours", "isolines"]

logger = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]
Segment = tuple[tuple[float, float], tuple[float, float]]

#: Contour levels, MMI IV to X (PAGER's bins; below IV no village is written).
LEVELS = tuple(range(4, 11))
#: Grid points per side (an odd number puts one on the epicentre).
GRID_POINTS = 81
#: The grid reaches where the prediction falls below MMI IV (bin edge 3.5), at least this far
#: and at most the largest reach a felt report can extend, in km.
_MIN_REACH_KM, _MAX_REACH_KM = 15.0, 400.0
_KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180.0
# Marching squares: for each corner pattern (bit 0 lower-left, 1 lower-right, 2 upper-right,
# 3 upper-left, set where the value is at or above the level) the cell edges a line joins; edges
# 0 bottom, 1 right, 2 top, 3 left. Saddles 5 and 10 are resolved in ``_cell_segments``.
_EDGES: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 6: ((0, 2),), 7: ((3, 2),),
    8: ((2, 3),), 9: ((2, 0),), 11: ((2, 1),), 12: ((1, 3),), 13: ((1, 0),), 14: ((0, 3),),
}  # fmt: skip


def _reach_km(magnitude: float, depth_km: float) -> float:
    """The epicentral distance at which the prediction falls below MMI IV (bin edge 3.5)."""
    distances = np.arange(0.0, _MAX_REACH_KM + 1.0, 1.0)
    below = np.flatnonzero(mmi_aww2012(magnitude, depth_km, distances) < 3.5)
    reach = float(distances[below[0]]) if below.size else _MAX_REACH_KM
    return min(_MAX_REACH_KM, max(_MIN_REACH_KM, 1.15 * reach))


def isolines(values: Floats, lats: Floats, lons: Floats, level: float) -> list[Segment]:
    """The line segments where ``values`` (rows by ``lats``, columns by ``lons``, both increasing)
    crosses ``level``, each as two (lon, lat) points, by marching squares."""
    above = values >= level
    # Only cells whose corners straddle the level hold a line.
    mixed = (above[:-1, :-1].astype(np.int8) + above[:-1, 1:] + above[1:, 1:] + above[1:, :-1]) % 4 != 0
    out: list[Segment] = []
    for i, j in zip(*np.nonzero(mixed), strict=True):
        out.extend(_cell_segments(values, lats, lons, int(i), int(j), level))
    return out


def _cell_segments(values: Floats, lats: Floats, lons: Floats, i: int, j: int, level: float) -> list[Segment]:
    corners = (values[i, j], values[i, j + 1], values[i + 1, j + 1], values[i + 1, j])
    case = sum(1 << k for k, v in enumerate(corners) if v >= level)
    pairs: tuple[tuple[int, int], ...]
    if case in (5, 10):  # a saddle: the centre's value says which corners connect
        centre_above = sum(corners) / 4.0 >= level
        pairs = ((0, 1), (2, 3)) if (case == 5) == centre_above else ((3, 0), (1, 2))
    else:
        pairs = _EDGES[case]
    lat0, lat1, lon0, lon1 = lats[i], lats[i + 1], lons[j], lons[j + 1]
    ends = {  # edge -> (corner a, corner b, point a, point b) with points as (lon, lat)
        0: (corners[0], corners[1], (lon0, lat0), (lon1, lat0)),
        1: (corners[1], corners[2], (lon1, lat0), (lon1, lat1)),
        2: (corners[3], corners[2], (lon0, lat1), (lon1, lat1)),
        3: (corners[0], corners[3], (lon0, lat0), (lon0, lat1)),
    }

    def cross(edge: int) -> tuple[float, float]:
        va, vb, (xa, ya), (xb, yb) = ends[edge]
        t = 0.5 if vb == va else float((level - va) / (vb - va))
        return (round(float(xa + t * (xb - xa)), 5), round(float(ya + t * (yb - ya)), 5))

    return [(cross(a), cross(b)) for a, b in pairs]


def intensity_contours(
    lat: float, lon: float, magnitude: float, depth_km: float, felt: Sequence[FeltIntensity]
) -> dict[str, Any]:
    """The contours of an earthquake's intensity field at ``LEVELS``, as a GeoJSON
    FeatureCollection (``properties.mmi``: the level k, inside which intensity is k or more)."""
    reach = _reach_km(magnitude, depth_km)
    half_lat = reach / _KM_PER_DEGREE
    half_lon = half_lat / max(0.05, math.cos(math.radians(lat)))
    lats = np.linspace(lat - half_lat, lat + half_lat, GRID_POINTS)
    lons = np.linspace(lon - half_lon, lon + half_lon, GRID_POINTS)
    grid_lat, grid_lon = np.meshgrid(lats, lons, indexing="ij")
    field, _, _ = intensity_field(lat, lon, magnitude, depth_km, felt, grid_lat.ravel(), grid_lon.ravel())
    values = field.reshape(grid_lat.shape)
    return {"type": "FeatureCollection", "features": list(_features(values, lats, lons))}


def _features(values: Floats, lats: Floats, lons: Floats) -> Iterable[dict[str, Any]]:
    for level in LEVELS:
        segments = isolines(values, lats, lons, level - 0.5)
        if segments:
            yield {
                "type": "Feature",
                "properties": {"mmi": level},
                "geometry": {"type": "MultiLineString", "coordinates": [list(s) for s in segments]},
            }


def alert_contours(alert: Mapping[str, Any]) -> dict[str, Any]:
    """``intensity_contours`` of an ``alerts`` row (``lat``, ``lon``, ``magnitude``, ``depth_km``,
    and ``felt`` as the JSON the store holds); an empty FeatureCollection for an alert that is not
    a located earthquake, or whose felt reports cannot be read (logged)."""
    empty: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    numbers = [alert.get(k) for k in ("lat", "lon", "magnitude", "depth_km")]
    if alert.get("hazard") != "earthquake" or any(n is None for n in numbers):
        return empty
    try:
        felt = tuple(FeltIntensity.model_validate(f) for f in orjson.loads(alert.get("felt") or "[]"))
    except (orjson.JSONDecodeError, ValueError) as exc:
        logger.warning(
            "event %s: its felt reports cannot be read (%s): no contours", alert.get("event_id"), exc
        )
        return empty
    lat, lon, magnitude, depth = (float(n) for n in numbers)  # type: ignore[arg-type]
    return intensity_contours(lat, lon, magnitude, depth, felt)

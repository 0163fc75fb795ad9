"""Centroids of the Kemendagri regions, shipped with the package (``schemas/geo/*.csv``).

Source: the regency (``kabupaten.csv``), district (``kecamatan.csv``) and village
(``villages.csv``) tables of github.com/cahyadsn/wilayah_boundaries (Cahya DSN, MIT licence,
``schemas/geo/LICENSE-wilayah_boundaries.txt``): columns ``code,name,lat,lon``, with the dotted
Kemendagri codes (``32.03``, ``32.03.01``, ``32.03.01.2001``) and the centroid of each boundary
polygon in decimal degrees (WGS 84). Each table is read once, when first asked for.

Boundaries (``boundaries``) are shipped where the command-center map needs outlines: Cianjur
regency (``cianjur_32.03.geojson``: the regency, its 32 districts and 360 villages, from the same
source, RFC 7946 [lon, lat] order, village rings simplified by Douglas-Peucker at 0.0001 degrees;
the district and regency outlines are the union of their villages', ``schemas/geo/README.md``).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import json
from collections.abc import Iterable
from functools import cache
from typing import Any

__all__ = ["boundaries", "region_position", "village_positions"]

#: Code length -> the table holding codes of that length.
_TABLES = {5: "kabupaten.csv", 8: "kecamatan.csv", 13: "villages.csv"}
#: The shipped boundary files (FeatureCollections whose features carry ``code`` and ``name``).
_BOUNDARIES = ("cianjur_32.03.geojson",)


@cache
def _positions(table: str) -> dict[str, tuple[float, float]]:
    """Code -> (latitude, longitude) of every row of ``table``; rows without numbers are left out."""
    text = (importlib.resources.files("schemas") / "geo" / table).read_text(encoding="utf-8")
    rows = csv.reader(io.StringIO(text))
    header = next(rows, [])
    code, lat, lon = (header.index(name) for name in ("code", "lat", "lon"))
    out: dict[str, tuple[float, float]] = {}
    for row in rows:
        try:
            out[row[code].strip()] = (float(row[lat]), float(row[lon]))
        except (IndexError, ValueError):
            continue
    return out


def region_position(code: str) -> tuple[float, float] | None:
    """The centroid (latitude, longitude) of a regency (``NN.NN``), district (``NN.NN.NN``) or
    village (``NN.NN.NN.NNNN``) code, or None when the shipped tables do not hold it."""
    table = _TABLES.get(len(code))
    return None if table is None else _positions(table).get(code)


def village_positions() -> dict[str, tuple[float, float]]:
    """Village code -> centroid (latitude, longitude), for every shipped village (about 83,400).
    The dictionary is shared: do not change it."""
    return _positions(_TABLES[13])


@cache
def _boundaries() -> dict[str, dict[str, Any]]:
    """Code -> GeoJSON feature of every shipped boundary (regency, district or village)."""
    out: dict[str, dict[str, Any]] = {}
    for name in _BOUNDARIES:
        text = (importlib.resources.files("schemas") / "geo" / name).read_text(encoding="utf-8")
        for feature in json.loads(text)["features"]:
            props = feature["properties"]
            out[props["code"]] = {
                "type": "Feature",
                "properties": {"code": props["code"], "name": props["name"]},
                "geometry": feature["geometry"],
            }
    return out


def boundaries(codes: Iterable[str]) -> dict[str, Any]:
    """The shipped outlines of ``codes`` (regency, district or village codes) as one GeoJSON
    FeatureCollection, in code order; codes with no shipped outline are left out."""
    shipped = _boundaries()
    features = [shipped[code] for code in sorted(set(codes)) if code in shipped]
    return {"type": "FeatureCollection", "features": features}

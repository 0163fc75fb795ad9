"""BNPB's published figures match their event by hazard, origin time and magnitude; shipped
boundaries come back as GeoJSON for the codes asked, and each village's outline holds its
shipped centroid's district."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.geo import boundaries, region_position
from schemas.official import MATCH_SECONDS, official_figures

CIANJUR = datetime(2022, 11, 21, 6, 21, 10, tzinfo=UTC)


def test_the_cianjur_update_matches_its_event_and_no_other() -> None:
    found = official_figures("earthquake", CIANJUR + timedelta(seconds=30), 5.6)
    assert found is not None and found.dead == 318 and found.houses_heavy == 25_186
    assert "hazard" not in found.published() and found.published()["as_of"] == "2022-11-26"
    assert official_figures("earthquake", CIANJUR + timedelta(seconds=MATCH_SECONDS + 1), 5.6) is None
    assert official_figures("earthquake", CIANJUR, 4.1) is None  # an aftershock is not the quake
    assert official_figures("flood", CIANJUR, None) is None
    assert official_figures("earthquake", CIANJUR, None) is not None  # no magnitude: time decides


def test_boundaries_of_a_regency_its_districts_and_villages() -> None:
    got = boundaries(["32.03.01.2001", "32.03.01", "32.03", "32.03.01.2001", "35.07.09.2005"])
    assert got["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in got["features"]] == ["32.03", "32.03.01", "32.03.01.2001"]
    for feature in got["features"]:
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert set(feature["properties"]) == {"code", "name"}
    assert boundaries([]) == {"type": "FeatureCollection", "features": []}


def _inside(point: tuple[float, float], ring: list[list[float]]) -> bool:
    """Ray casting, (lon, lat) against one ring of [lon, lat] points."""
    x, y, inside = point[0], point[1], False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _polygons(feature: dict[str, Any]) -> list[list[list[list[float]]]]:
    geometry = feature["geometry"]
    return geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]


def test_every_village_lies_in_its_districts_outline() -> None:
    """A village's centroid that lies in its own outline lies in its kecamatan's (the outlines
    are the union of their villages'); a concave village's centroid can lie outside both."""
    codes = [f"32.03.{d:02d}.{n}" for d in range(1, 33) for n in (*range(1001, 1012), *range(2001, 2031))]
    villages = {f["properties"]["code"]: f for f in boundaries(codes)["features"]}
    districts = {f["properties"]["code"]: f for f in boundaries(c[:8] for c in villages)["features"]}
    assert len(villages) == 360 and len(districts) == 32
    outside_own, misplaced = [], []
    for code, village in villages.items():
        position = region_position(code)
        assert position is not None
        point = (position[1], position[0])
        if not any(_inside(point, polygon[0]) for polygon in _polygons(village)):
            outside_own.append(code)
        elif not any(_inside(point, polygon[0]) for polygon in _polygons(districts[code[:8]])):
            misplaced.append(code)
    assert misplaced == []
    assert len(outside_own) == 3, outside_own  # concave villages: Cibadak, Girimukti and one more

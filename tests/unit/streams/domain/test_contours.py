"""Intensity contours: marching squares on hand-made grids, and the contours of a real field lie
where the field the estimate uses crosses each level."""

from __future__ import annotations

from collections import Counter

import numpy as np
import orjson

from schemas.alerts import FeltIntensity
from streams.domain.contours import alert_contours, intensity_contours, isolines
from streams.domain.hazard import epicentral_distance_km, mmi_aww2012
from streams.domain.shakemap import intensity_field

AXIS = np.array([0.0, 1.0])


def test_one_corner_above_gives_one_segment_across_its_two_edges() -> None:
    values = np.array([[0.0, 0.0], [0.0, 4.0]])  # only the upper-right corner (row 1, col 1)
    [segment] = isolines(values, AXIS, AXIS, 1.0)
    assert sorted(segment) == [(0.25, 1.0), (1.0, 0.25)]  # (lon, lat): top edge and right edge


def test_a_saddle_is_split_by_its_centre() -> None:
    values = np.array([[2.0, 0.0], [0.0, 2.0]])  # lower-left and upper-right above
    joined = isolines(values, AXIS, AXIS, 0.9)  # centre 1.0 >= 0.9: the two above corners join
    apart = isolines(values, AXIS, AXIS, 1.1)  # centre 1.0 < 1.1: each above corner cut off
    assert len(joined) == len(apart) == 2
    # Joined: the lines cut off the two below corners (bottom-right and top-left).
    assert {tuple(sorted(s)) for s in joined} == {
        ((0.55, 0.0), (1.0, 0.45)),
        ((0.0, 0.55), (0.45, 1.0)),
    }
    assert {tuple(sorted(s)) for s in apart} == {
        ((0.0, 0.45), (0.45, 0.0)),
        ((0.55, 1.0), (1.0, 0.55)),
    }


def test_no_line_where_the_level_is_not_crossed() -> None:
    assert isolines(np.full((3, 3), 5.0), np.arange(3.0), np.arange(3.0), 6.0) == []


def test_the_contours_lie_where_the_predicted_field_crosses_each_level() -> None:
    lat, lon, magnitude, depth = -6.84, 107.05, 5.6, 10.0
    contours = intensity_contours(lat, lon, magnitude, depth, ())
    levels = [f["properties"]["mmi"] for f in contours["features"]]
    assert levels == [4, 5, 6, 7]  # M5.6 at 10 km: epicentral intensity between VII and VIII
    for feature in contours["features"]:
        points = np.array([p for s in feature["geometry"]["coordinates"] for p in s])
        at = mmi_aww2012(magnitude, depth, epicentral_distance_km(lat, lon, points[:, 1], points[:, 0]))
        assert np.abs(at - (feature["properties"]["mmi"] - 0.5)).max() < 0.05
        # Closed rings: every end point is shared by an even number of segments.
        ends = Counter(tuple(p) for s in feature["geometry"]["coordinates"] for p in s)
        assert all(n % 2 == 0 for n in ends.values())


def test_felt_reports_move_the_contours_as_they_move_the_estimate() -> None:
    felt = (FeltIntensity(mmi_min=5, mmi_max=6, place="Cianjur"),)
    row = {"event_id": "e", "hazard": "earthquake", "lat": -6.84, "lon": 107.05, "magnitude": 5.6,
           "depth_km": 10.0, "felt": orjson.dumps([f.model_dump() for f in felt]).decode()}  # fmt: skip
    corrected = alert_contours(row)
    plain = intensity_contours(-6.84, 107.05, 5.6, 10.0, ())
    assert corrected != plain
    for feature in corrected["features"]:
        points = np.array([p for s in feature["geometry"]["coordinates"] for p in s])
        field, _, used = intensity_field(-6.84, 107.05, 5.6, 10.0, felt, points[:, 1], points[:, 0])
        assert used == 1
        assert np.abs(field - (feature["properties"]["mmi"] - 0.5)).max() < 0.1


def test_no_contours_for_an_area_alert_or_unreadable_felt_reports() -> None:
    empty = {"type": "FeatureCollection", "features": []}
    assert alert_contours({"hazard": "flood", "lat": None}) == empty
    bad = {"hazard": "earthquake", "lat": -6.8, "lon": 107.0, "magnitude": 5.0, "depth_km": 10.0, "felt": "{"}
    assert alert_contours(bad) == empty

"""Intensity, fatality, displacement and minimum needs against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schemas.alerts import Alert, AreaImpact
from streams.domain.exposure import VillageStats, exposure
from streams.domain.hazard import (
    DisplacementRates,
    area_displacement_rate,
    epicentral_distance_km,
    fatality_rate,
    mmi_aww2012,
    mmi_bin,
    pager_level,
)
from streams.domain.needs import minimum_needs

# (magnitude, depth km, epicentral km) -> MMI, computed by hand from Allen, Wald & Worden (2012), eq. 2.
CASES = [
    ((5.6, 10, 10), 6.3257),  # the worked value: 6.33
    ((5.6, 10, 0), 6.7721),
    ((7.0, 20, 0), 7.5722),
    ((6.0, 30, 40), 5.1604),  # R = 50 km exactly: no far-field term
    ((7.0, 10, 80), 5.9403),  # R > 50 km: + 0.078 ln(R/50)
    ((4.5, 5, 20), 4.2667),
    ((7.0, 10, 200), 4.7554),
]


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_mmi_aww2012(args: tuple[float, float, float], expected: float) -> None:
    m, depth, epi = args
    assert float(mmi_aww2012(m, depth, np.array([epi]))[0]) == pytest.approx(expected, abs=0.01)


def test_haversine_one_degree_of_latitude() -> None:
    assert float(epicentral_distance_km(0.0, 107.0, np.array([1.0]), np.array([107.0]))[0]) == pytest.approx(
        111.195, abs=0.01
    )


def test_pager_bins_and_fatality_rates() -> None:
    assert mmi_bin(np.array([3.49, 3.5, 6.49, 6.5])).tolist() == [3, 4, 6, 7]
    rates = fatality_rate(np.array([4, 5, 6, 7, 8, 9, 10]))
    expected = [0.0, 5.2348e-11, 7.5494e-08, 1.17136e-05, 4.12563e-04, 5.182494e-03, 5.182494e-03]
    assert rates.tolist() == pytest.approx(expected, rel=1e-4)
    assert [pager_level(d) for d in (0.4, 1, 99, 100, 999, 1000)] == [
        "green", "yellow", "yellow", "orange", "orange", "red",
    ]  # fmt: skip


def test_area_displacement_rates() -> None:
    r = DisplacementRates()
    assert area_displacement_rate("flood", "low", 50, r) == 0.01
    assert area_displacement_rate("flood", "low", 100, r) == 0.03
    assert area_displacement_rate("flood", "low", 151, r) == 0.05
    assert area_displacement_rate("tsunami", "low", 120, r) == 1.0
    assert area_displacement_rate("volcano", "low", None, r) == 0.0
    assert area_displacement_rate("volcano", "medium", None, r) == 1.0


def test_minimum_needs_bnpb() -> None:
    n = minimum_needs(1000, pregnant=10)
    assert n == pytest.approx(
        {"rice_kg_week": 2827.0, "drinking_water_l_week": 17500.0, "clean_water_l_week": 67000.0,
         "family_kits_week": 200.0, "toilets": 50.0}
    )  # fmt: skip


def _stats() -> VillageStats:
    # Three villages: at the epicentre, 10 km north, and 300 km away; one without coordinates.
    lat0, lon0 = -6.84, 107.05
    return VillageStats.from_columns(
        {
            "village_code": ["32.03.01.2001", "32.03.02.2001", "33.01.01.2001", "32.03.03.2001"],
            "households": [100, 50, 10, 5],
            "persons": [400, 200, 40, 20],
            "kpm_households": [40, 10, 1, 0],
            "vulnerable_persons": [30, 15, 2, 1],
            "pregnant": [4, 2, 0, 0],
            "lat": [lat0, lat0 + 10 / 111.195, lat0, None],
            "lon": [lon0, lon0, lon0 + 300 / 110.4, None],
        }
    )


def test_earthquake_exposure_matches_a_hand_computation() -> None:
    alert = Alert.model_validate_json(
        json.dumps({"event_id": "e", "hazard": "earthquake", "issued_at": "2022-11-21T06:21:10Z",
                    "lat": -6.84, "lon": 107.05, "magnitude": 5.6, "depth_km": 10})
    )  # fmt: skip
    exp = exposure(alert, _stats(), DisplacementRates())
    assert [v.village_code for v in exp.villages] == ["32.03.01.2001", "32.03.02.2001"]  # 300 km: below IV
    at, north = exp.villages
    assert at.mmi == pytest.approx(6.7721, abs=0.01) and at.hazard_class == "MMI VII"
    assert north.mmi == pytest.approx(6.3257, abs=0.01) and north.hazard_class == "MMI VI"
    deaths_at = 400 * 1.1713579848748878e-05
    assert at.est_deaths == pytest.approx(deaths_at)
    assert at.est_displaced == pytest.approx(400 - deaths_at)
    assert exp.households == 150 and exp.kpm_households == 50 and exp.pager_level == "green"


def test_area_exposure_expands_codes_and_keeps_unknown_villages() -> None:
    alert = Alert.model_validate_json(
        json.dumps({"event_id": "f", "hazard": "flood", "issued_at": "2020-02-25T01:00:00Z",
                    "areas": [{"village_code": "32.03", "severity": "high", "depth_cm": 200},
                              {"village_code": "31.71.01.1001", "severity": "low"}]})
    )  # fmt: skip
    exp = exposure(alert, _stats(), DisplacementRates())
    codes = [v.village_code for v in exp.villages]
    assert codes == ["31.71.01.1001", "32.03.01.2001", "32.03.02.2001", "32.03.03.2001"]
    assert exp.villages[1].est_displaced == pytest.approx(400 * 0.05)
    assert exp.villages[0].persons == 0
    assert exp.displaced == pytest.approx((400 + 200 + 20) * 0.05)


def test_area_shapes_select_villages_by_their_registry_centroid() -> None:
    # The polygon holds the village at the epicentre only; the 12 km circle holds it and the one
    # 10 km north; a village without coordinates is in neither.
    square = [[-6.86, 107.02], [-6.86, 107.08], [-6.82, 107.08], [-6.82, 107.02]]
    alert = Alert.model_validate_json(
        json.dumps({"event_id": "w", "hazard": "extreme_weather", "issued_at": "2022-11-24T08:30:00Z",
                    "areas": [{"polygon": square, "severity": "high"}]})
    )  # fmt: skip
    assert [v.village_code for v in exposure(alert, _stats(), DisplacementRates()).villages] == [
        "32.03.01.2001"
    ]
    circle = alert.model_copy(update={"areas": (AreaImpact(circle=(-6.84, 107.05, 12.0)),)})
    assert [v.village_code for v in exposure(circle, _stats(), DisplacementRates()).villages] == [
        "32.03.01.2001",
        "32.03.02.2001",
    ]
    with pytest.raises(ValueError, match="needs a village_code, a polygon or a circle"):
        AreaImpact(severity="high")

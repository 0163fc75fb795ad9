"""Gardner-Knopoff windows against the published formula, the declustering rule, and the damage
scale that chooses between incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.hazard import DisplacementRates, area_displacement_rate
from streams.domain.incidents import Quake, damage_level, decluster, gardner_knopoff_window

T0 = datetime(2022, 11, 21, 6, 21, 10, tzinfo=UTC)


# (magnitude) -> (km, days), by hand from van Stiphout et al. (2012), eq. for Gardner-Knopoff:
# L = 10^(0.1238 M + 0.983); T = 10^(0.5409 M - 0.547) below M6.5, 10^(0.032 M + 2.7389) from it.
@pytest.mark.parametrize(
    ("magnitude", "km", "days"),
    [
        (4.1, 30.9443, 46.8479),
        (5.6, 47.4548, 303.4171),
        (6.0, 53.1863, 499.3442),
        (6.5, 61.3338, 884.9118),  # the long branch from 6.5
        (7.0, 70.7294, 918.1212),
    ],
)
def test_windows_equal_the_published_formula(magnitude: float, km: float, days: float) -> None:
    assert gardner_knopoff_window(magnitude) == pytest.approx((km, days), rel=1e-5)
    assert km == pytest.approx(10 ** (0.1238 * magnitude + 0.983), rel=1e-5)
    fit = (0.032, 2.7389) if magnitude >= 6.5 else (0.5409, -0.547)
    assert days == pytest.approx(10 ** (fit[0] * magnitude + fit[1]), rel=1e-5)


def _quake(event_id: str, hours: float, lat: float, lon: float, magnitude: float) -> Quake:
    return Quake(event_id, T0 + timedelta(hours=hours), lat, lon, magnitude)


def test_aftershocks_join_the_main_shock_and_others_stand_alone() -> None:
    quakes = [
        _quake("main", 0, -6.84, 107.05, 5.6),
        _quake("after", 84.4, -6.85, 107.06, 4.1),  # 3.5 days later, 1.5 km away
        _quake("far", 44, -7.00, 106.55, 4.6),  # 58 km away: outside the 47 km window
        _quake("late", 24 * 320, -6.84, 107.05, 4.0),  # after the 303-day window
        _quake("before", -1, -6.84, 107.05, 4.0),  # a foreshock: windows look forward only
    ]
    assert decluster(quakes) == {
        "main": "main",
        "after": "main",
        "far": "far",
        "late": "late",
        "before": "before",
    }


def test_an_aftershock_of_an_aftershock_beyond_the_main_window_stands_alone() -> None:
    # B (M5.5) is in A's (M7) window; C (M4) is in B's window but 80 km from A (beyond A's 71 km).
    quakes = [
        _quake("A", 0, 0.0, 100.0, 7.0),
        _quake("B", 1, 0.0, 100.5, 5.5),  # 55.6 km east of A
        _quake("C", 2, 0.0, 100.72, 4.0),  # 24.5 km east of B, 80 km east of A
    ]
    assert decluster(quakes) == {"A": "A", "B": "A", "C": "C"}


def test_equal_magnitudes_the_earlier_is_the_main_shock() -> None:
    quakes = [_quake("second", 2, -6.84, 107.05, 5.0), _quake("first", 1, -6.84, 107.05, 5.0)]
    assert decluster(quakes) == {"first": "first", "second": "first"}


@pytest.mark.parametrize(
    ("hazard", "mmi", "hazard_class", "level"),
    [
        ("earthquake", 5.4, "MMI V", 0),
        ("earthquake", 5.5, "MMI VI", 1),
        ("earthquake", 7.2, "MMI VII", 2),
        ("earthquake", 9.1, "MMI IX", 3),
        ("earthquake", None, "", 0),
        ("landslide", None, "landslide:high", 3),
        ("flood", None, "flood:medium:100cm", 2),
        ("extreme_weather", None, "extreme_weather:low", 1),
        ("flood", None, "", 0),
    ],
)
def test_damage_level(hazard: str, mmi: float | None, hazard_class: str, level: int) -> None:
    assert damage_level(hazard, mmi, hazard_class) == level


@pytest.mark.parametrize(
    ("hazard", "severity", "depth_cm", "rate"),
    [
        ("flood", "low", 5.0, 0.0),  # InaSAFE's petabencana "use caution": under 10 cm
        ("flood", "low", 50.0, 0.01),
        ("flood", "medium", 100.0, 0.03),
        ("flood", "high", 200.0, 0.05),
        ("landslide", "medium", None, 1.0),  # InaSAFE's generic classes: medium displaces all
        ("landslide", "low", None, 0.0),
        ("volcano", "medium", None, 1.0),
    ],
)
def test_hazard_classes_are_inasafes(hazard: str, severity: str, depth_cm: float | None, rate: float) -> None:
    assert area_displacement_rate(hazard, severity, depth_cm, DisplacementRates()) == rate

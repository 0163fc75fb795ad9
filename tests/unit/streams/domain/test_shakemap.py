"""The intensity field conditioned on BMKG's felt reports, against hand computations and the
Cianjur 2022 bulletin (data.bmkg.go.id autogempa)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from schemas.alerts import Alert, FeltIntensity, parse_alerts
from schemas.geo import region_position, village_positions
from streams.domain.exposure import VillageStats, exposure
from streams.domain.hazard import (
    EARTH_RADIUS_KM,
    DisplacementRates,
    epicentral_distance_km,
    mmi_aww2012,
    mmi_sigma_aww2012,
)
from streams.domain.shakemap import (
    Observation,
    condition_on_observations,
    felt_observations,
    mmi_correlation,
)

Floats = npt.NDArray[np.float64]
ALERTS = Path(__file__).resolve().parents[3] / "fixtures" / "disaster-alerts"
LAT0, LON0, M, DEPTH = -6.84, 107.05, 5.6, 10.0  # Cianjur 2022 (BMKG)
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180  # along a meridian


def _predict(lats: Floats, lons: Floats) -> tuple[Floats, Floats]:
    d = epicentral_distance_km(LAT0, LON0, lats, lons)
    return mmi_aww2012(M, DEPTH, d), mmi_sigma_aww2012(np.hypot(d, DEPTH))


def _cianjur() -> Alert:
    [alert] = parse_alerts((ALERTS / "bmkg-autogempa-cianjur-2022.json").read_bytes())
    return alert


# ------------------------------------------------------------------ the models' formulas
@pytest.mark.parametrize(
    ("r", "expected"),
    [(0.0, 1.19), (22.9, 1.005), (45.8, 0.894), (10.0, 1.13074), (229.0, 0.823663)],
)
def test_aww2012_sigma_by_hand(r: float, expected: float) -> None:
    # 0.82 + 0.37 / (1 + (R / 22.9)^2): at R = s3 the second term halves, at 2 s3 it is a fifth.
    assert float(mmi_sigma_aww2012(np.array([r]))[0]) == pytest.approx(expected, abs=1e-4)


def test_correlation_by_hand() -> None:
    h = np.array([0.0, 1e-9, 20.0, 70.0, 500.0])
    rho = mmi_correlation(h)
    assert rho[0] == pytest.approx(1.0)  # 0.32 + 0.38 + the nugget 0.30
    assert rho[1] == pytest.approx(0.70)
    assert rho[2] == pytest.approx(0.32 * math.exp(-3) + 0.38 * math.exp(-6 / 7))
    assert rho[3] == pytest.approx(0.32 * math.exp(-10.5) + 0.38 * math.exp(-3))
    assert rho[4] < 1e-9
    assert mmi_correlation(np.array([np.nan]))[0] == 0.0


def test_felt_sigma_is_half_the_range_and_a_whole_degree() -> None:
    felt = [
        FeltIntensity(place="Garut", mmi_min=4, mmi_max=5),
        FeltIntensity(place="Garut", mmi_min=3, mmi_max=3),
    ]
    ranged, single = felt_observations(felt, LAT0, LON0)
    assert ranged.mmi == 4.5 and ranged.sigma == pytest.approx(math.sqrt(0.5**2 + 0.3**2))
    assert single.mmi == 3.0 and single.sigma == pytest.approx(0.3)


# ------------------------------------------------------------------ the conditional field
def _line(n: int = 60, step_km: float = 10.0) -> tuple[Floats, Floats]:
    """Villages every ``step_km`` due south of the epicentre, on its meridian."""
    lat = LAT0 - np.arange(n, dtype=np.float64) * step_km / KM_PER_DEGREE
    return lat, np.full(n, LON0, dtype=np.float64)


def test_no_observations_leave_the_field_unchanged() -> None:
    lat, lon = _line()
    mmi, sigma = _predict(lat, lon)
    out = condition_on_observations(lat, lon, mmi, sigma, [], _predict)
    assert np.array_equal(out, mmi) and out is not mmi


def test_one_observation_pulls_its_village_and_leaves_far_ones() -> None:
    lat, lon = _line()  # 0 .. 590 km
    mmi, sigma = _predict(lat, lon)
    at = 3  # 30 km south: predicted 5.6
    noise = 0.3
    seen = float(mmi[at]) + 2.0
    obs = [Observation("x", "32.03", float(lat[at]), float(lon[at]), seen, noise)]
    out = condition_on_observations(lat, lon, mmi, sigma, obs, _predict)
    # At the observation: mu + s^2 / (s^2 + n^2) (x - mu), within the noise of x.
    s = float(sigma[at])
    assert out[at] == pytest.approx(mmi[at] + s**2 / (s**2 + noise**2) * 2.0)
    assert abs(out[at] - seen) < noise
    # 10 km away the pull is the correlation there (the nugget gone): less, same sign.
    assert 0 < out[at + 1] - mmi[at + 1] < out[at] - mmi[at]
    # 300 km and more (>> the 70 km range): the prediction.
    assert np.allclose(out[33:], mmi[33:], atol=1e-6)


def test_two_observations_against_the_conditional_mean_by_hand() -> None:
    # Three points on the epicentre's meridian, 0, 15 and 40 km south; observations at the
    # last two. mu_Y|X = mu_Y + S_YX inv(S_XX + N) (x - mu_X), written out with numpy.linalg.
    km = np.array([0.0, 15.0, 40.0])
    lat, lon = LAT0 - km / KM_PER_DEGREE, np.full(3, LON0)
    mmi, sigma = _predict(lat, lon)
    x, noise = np.array([7.0, 4.0]), np.array([0.58, 0.3])
    obs = [
        Observation("a", "32.03", float(lat[i]), LON0, float(x[k]), float(noise[k]))
        for k, i in enumerate((1, 2))
    ]
    out = condition_on_observations(lat, lon, mmi, sigma, obs, _predict)

    def rho(h: float) -> float:
        return 0.32 * math.exp(-3 * h / 20) + 0.38 * math.exp(-3 * h / 70) + (0.30 if h == 0 else 0.0)

    s_x, mu_x = sigma[1:], mmi[1:]
    s_xx = np.array([[s_x[i] * s_x[j] * rho(abs(km[1 + i] - km[1 + j])) for j in range(2)] for i in range(2)])
    s_yx = np.array([[sigma[p] * s_x[j] * rho(abs(km[p] - km[1 + j])) for j in range(2)] for p in range(3)])
    expected = mmi + s_yx @ np.linalg.inv(s_xx + np.diag(noise**2)) @ (x - mu_x)
    assert out == pytest.approx(np.clip(expected, 1, 12), abs=1e-9)


def test_the_field_is_clipped_to_the_scale() -> None:
    lat, lon = _line(3)
    mmi, sigma = _predict(lat, lon)
    obs = [Observation("x", "32.03", float(lat[0]), LON0, 12.0, 0.01)]
    out = condition_on_observations(lat, lon, mmi + 5, sigma, obs, _predict)
    assert out.max() == 12.0


# ------------------------------------------------------------------ felt reports -> observations
def test_cianjur_2022_felt_places_resolve_to_the_intended_regions() -> None:
    alert = _cianjur()
    obs = felt_observations(alert.felt, LAT0, LON0)
    # Cianjur: the regency, not its district Cianjur; Sukabumi: the regency, not Kota Sukabumi
    # (BMKG writes a city "Kota X") nor the districts; Cimahi: the city, not the district in
    # Kuningan; Lembang: the district of Bandung Barat, not the one in Pinrang; Bandung: the regency.
    assert [(o.place, o.code) for o in obs] == [
        ("Cianjur", "32.03"),
        ("Garut", "32.05"),
        ("Sukabumi", "32.02"),
        ("Cimahi", "32.77"),
        ("Lembang", "32.17.01"),
        ("Bandung", "32.04"),
    ]
    assert [o.mmi for o in obs] == [5.5, 4.5, 4.5, 3.0, 3.0, 3.0]
    assert (obs[0].lat, obs[0].lon) == region_position("32.03")


def test_places_left_out_are_logged_and_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    felt = [
        FeltIntensity(place="Atlantis", mmi_min=3, mmi_max=4),
        FeltIntensity(place="Kota Bengkulu", mmi_min=3, mmi_max=4),
    ]
    with caplog.at_level(logging.INFO, logger="streams.domain.shakemap"):
        obs = felt_observations(felt, -3.8, 102.27)
    assert [o.code for o in obs] == ["17.71"]
    assert "Atlantis" in caplog.text
    assert felt_observations([], LAT0, LON0) == []
    bulletin = json.loads((ALERTS / "bmkg-autogempa-cianjur-2022.json").read_text())
    bulletin["Infogempa"]["gempa"]["Dirasakan"] = "-"
    [quiet] = parse_alerts(json.dumps(bulletin).encode())
    assert felt_observations(quiet.felt, LAT0, LON0) == []


# ------------------------------------------------------------------ the exposure it changes
def _shipped_villages(radius_km: float) -> VillageStats:
    positions = village_positions()
    codes = sorted(positions)
    lat = np.asarray([positions[c][0] for c in codes])
    lon = np.asarray([positions[c][1] for c in codes])
    near = np.flatnonzero(epicentral_distance_km(LAT0, LON0, lat, lon) <= radius_km)
    n = len(near)
    return VillageStats.from_columns(
        {
            "village_code": [codes[i] for i in near],
            "households": [250] * n,
            "persons": [1000] * n,
            "kpm_households": [50] * n,
            "vulnerable_persons": [100] * n,
            "pregnant": [10] * n,
            "lat": lat[near].tolist(),
            "lon": lon[near].tolist(),
        }
    )


def test_cianjur_2022_exposure_uses_the_felt_reports_and_keeps_the_prediction() -> None:
    alert = _cianjur()
    stats = _shipped_villages(150.0)
    exp = exposure(alert, stats, DisplacementRates())
    plain = exposure(alert.model_copy(update={"felt": ()}), stats, DisplacementRates())
    assert (exp.felt_used, plain.felt_used) == (6, 0)
    # Without felt reports nothing changes: mmi is the prediction, and mmi_predicted repeats it.
    assert plain.columns.mmi == plain.columns.mmi_predicted
    assert max(c for c in plain.columns.mmi if c is not None) == pytest.approx(6.767, abs=0.001)
    # With them, mmi_predicted is still the prediction, village by village.
    by_code = dict(zip(plain.columns.village_code, plain.columns.mmi, strict=True))
    assert all(
        by_code.get(c, p) == p
        for c, p in zip(exp.columns.village_code, exp.columns.mmi_predicted, strict=True)
    )
    # The bulletin's reports, on the regency and district centroids: V-VI at the Cianjur regency
    # centroid (34 km SSE, predicted 5.05) lifts the epicentral area; III at Cimahi, Lembang and
    # Kab. Bandung (55-68 km, predicted 4.2-4.5) pulls it down more. The corrected peak: 6.71.
    peak = max(c for c in exp.columns.mmi if c is not None)
    assert peak == pytest.approx(6.711, abs=0.005)
    # The V-VI report alone raises the peak above the prediction's.
    lat, lon = stats.lat, stats.lon
    mmi, sigma = _predict(lat, lon)
    alone = condition_on_observations(
        lat, lon, mmi, sigma, felt_observations(alert.felt[:1], LAT0, LON0), _predict
    )
    assert alone.max() > mmi.max() + 0.03


def test_area_hazards_have_no_predicted_intensity() -> None:
    alert = Alert.model_validate_json(
        json.dumps({"event_id": "f", "hazard": "flood", "issued_at": "2020-02-25T01:00:00Z",
                    "areas": [{"village_code": "32.03.01", "severity": "high"},
                              {"village_code": "31.71.01.1001", "severity": "low"}]})
    )  # fmt: skip
    exp = exposure(alert, _shipped_villages(20.0), DisplacementRates())
    assert exp.count > 1 and exp.felt_used == 0
    assert set(exp.columns.mmi) == set(exp.columns.mmi_predicted) == {None}
    assert len(exp.villages[0]) == len(exp.columns) == 11


def test_thousands_of_felt_places_use_the_first_few() -> None:
    from schemas.alerts import FeltIntensity
    from streams.domain.shakemap import MAX_OBSERVATIONS, felt_observations

    felt = [FeltIntensity(place="Cianjur", mmi_min=5, mmi_max=6)] * 5_000
    assert len(felt_observations(felt, -6.84, 107.05)) == MAX_OBSERVATIONS

"""Each province's legal time zone (Keputusan Presiden No. 41 Tahun 1987, in force since 1 January
1988) and times shown as the place's clock showed them; storage stays UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.regions import local_time, region_names, time_zone

CIANJUR_QUAKE = datetime(2022, 11, 21, 6, 21, 10)  # UTC (BMKG: 13:21:10 WIB)


def test_every_province_of_the_reference_has_a_zone() -> None:
    provinces = [code for code in region_names() if len(code) == 2]
    assert len(provinces) == 38
    zones = {code: time_zone(code) for code in provinces}
    assert set(zones.values()) == {("WIB", 7), ("WITA", 8), ("WIT", 9)}


def test_every_code_takes_its_province_zone() -> None:
    for code in region_names():
        assert time_zone(code) == time_zone(code[:2]), code


@pytest.mark.parametrize(
    ("code", "zone"),
    [
        ("32.03", ("WIB", 7)),  # Kabupaten Cianjur, Jawa Barat
        ("32.03.07.2001", ("WIB", 7)),
        ("51", ("WITA", 8)),  # Bali: WITA since 1988
        ("61", ("WIB", 7)),  # Kalimantan Barat: WIB since 1988
        ("62", ("WIB", 7)),  # Kalimantan Tengah
        ("64", ("WITA", 8)),  # Kalimantan Timur
        ("65", ("WITA", 8)),  # Kalimantan Utara, formed from Kalimantan Timur
        ("73", ("WITA", 8)),  # Sulawesi Selatan
        ("82", ("WIT", 9)),  # Maluku Utara
        ("95", ("WIT", 9)),  # Papua Pegunungan (2022)
    ],
)
def test_zone_of(code: str, zone: tuple[str, int]) -> None:
    assert time_zone(code) == zone


@pytest.mark.parametrize("code", ["", "00", "99", "20.01", "3", "3203", "x"])
def test_unknown_province_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="province"):
        time_zone(code)


def test_local_time_of_the_cianjur_quake() -> None:
    assert local_time(CIANJUR_QUAKE, "32.03") == "2022-11-21 13:21 WIB"
    assert local_time(CIANJUR_QUAKE.replace(tzinfo=UTC), "32.03") == "2022-11-21 13:21 WIB"
    # An aware time in another zone is the same instant.
    jakarta = CIANJUR_QUAKE.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=7)))
    assert local_time(jakarta, "32.03.07") == "2022-11-21 13:21 WIB"


def test_local_time_crosses_the_date_line_of_the_zone() -> None:
    late = datetime(2022, 12, 31, 15, 30)
    assert local_time(late, "51") == "2022-12-31 23:30 WITA"
    assert local_time(late, "91") == "2023-01-01 00:30 WIT"

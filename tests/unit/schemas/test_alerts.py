"""The three forms of ``disaster-alerts``, parsed from real BMKG bulletins (data.bmkg.go.id TEWS feeds)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.alerts import FeltIntensity, InvalidAlert, parse_alerts

ALERTS = Path(__file__).resolve().parents[2] / "fixtures" / "disaster-alerts"


def _load(name: str) -> bytes:
    return (ALERTS / name).read_bytes()


def test_every_alert_fixture_parses() -> None:
    files = sorted(ALERTS.iterdir())
    assert len(files) >= 6
    for path in files:
        assert parse_alerts(path.read_bytes())


def test_cianjur_autogempa_wrapper() -> None:
    [a] = parse_alerts(_load("bmkg-autogempa-cianjur-2022.json"))
    assert a.event_id == "bmkg-20221121062110"
    assert a.event_time == datetime(2022, 11, 21, 6, 21, 10, tzinfo=UTC)
    assert (a.lat, a.lon, a.magnitude, a.depth_km, a.tsunami) == (-6.84, 107.05, 5.6, 10.0, False)
    assert a.felt[0] == FeltIntensity(place="Cianjur", mmi_min=5, mmi_max=6)
    assert [f.place for f in a.felt] == ["Cianjur", "Garut", "Sukabumi", "Cimahi", "Lembang", "Bandung"]
    assert "Cianjur" in a.headline and a.source == "bmkg"


def test_list_under_gempa_yields_one_alert_each_and_time_comes_from_datetime() -> None:
    sumedang, bengkulu = parse_alerts(_load("bmkg-gempadirasakan-sumedang-2024.json"))
    # Tanggal/Jam say 9 Jan 20:17 WIB; DateTime (the event time) is 10 Jan 13:17:26 UTC.
    assert sumedang.event_id == "bmkg-20240110131726"
    assert sumedang.issued_at == datetime(2024, 1, 10, 13, 17, 26, tzinfo=UTC)
    assert (sumedang.magnitude, sumedang.depth_km, sumedang.lat, sumedang.lon) == (2.8, 6.0, -6.83, 107.95)
    assert sumedang.felt == (FeltIntensity(place="Sumedang Utara", mmi_min=3, mmi_max=3),)
    assert bengkulu.felt[-1] == FeltIntensity(place="Kota Bengkulu", mmi_min=3, mmi_max=4)
    assert not bengkulu.tsunami  # gempadirasakan items carry no Potensi


def test_bare_gempa_with_tsunami_potential() -> None:
    [a] = parse_alerts(_load("bmkg-gempaterkini-tsunami.json"))
    assert a.tsunami and a.magnitude == 7.1 and a.event_id == "bmkg-20250823141000"


def test_local_date_and_time_when_datetime_is_missing() -> None:
    g = json.loads(_load("bmkg-gempaterkini-tsunami.json"))
    del g["DateTime"]
    [a] = parse_alerts(json.dumps(g).encode())
    assert a.event_time == datetime(2025, 8, 23, 14, 10, tzinfo=UTC)  # 22:10 WITA = UTC+8


def test_tidak_berpotensi_is_not_a_tsunami() -> None:
    g = json.loads(_load("bmkg-gempaterkini-tsunami.json")) | {"Potensi": "Tidak berpotensi tsunami"}
    assert not parse_alerts(json.dumps(g).encode())[0].tsunami


def test_normalized_flood_and_cap() -> None:
    [flood] = parse_alerts(_load("normalized-flood.json"))
    assert flood.hazard == "flood" and len(flood.areas) == 3 and flood.areas[0].depth_cm == 180
    [cap] = parse_alerts(_load("cap-nowcast-banjir.xml"))
    assert cap.hazard == "flood" and cap.event_id == "cap-CJB20200225010000"
    assert [a.village_code for a in cap.areas] == ["32.75.01.1001"] and cap.areas[0].severity == "high"
    assert cap.area_text == ("Pesisir Muara Gembong",)
    assert cap.issued_at == datetime(2020, 2, 25, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload",
    [
        b"nonsense",
        b'{"Infogempa": {"gempa": {"Magnitude": "5.0"}}}',
        b'{"Magnitude": "5.0", "DateTime": "2022-11-21T06:21:10+00:00", "Coordinates": "x", '
        b'"Kedalaman": "10 km"}',
        b'{"event_id": "e", "hazard": "earthquake", "issued_at": "2022-11-21T06:21:10Z"}',
        b'{"event_id": "e", "hazard": "meteor", "issued_at": "2022-11-21T06:21:10Z"}',
        b"<alert><identifier>x</identifier></alert>",
        b"[1, 2]",
    ],
)
def test_invalid_alerts_are_rejected(payload: bytes) -> None:
    with pytest.raises((InvalidAlert, ValidationError)):
        parse_alerts(payload)


def test_cap_areas_without_codes_are_located_by_shape_or_by_name() -> None:
    [cap] = parse_alerts(_load("cap-nowcast-polygon.xml"))
    assert cap.hazard == "extreme_weather" and cap.event_id == "cap-CJR20221124153000"
    polygon, circle, named = cap.areas
    assert polygon.polygon[0] == (-6.86, 107.02) and len(polygon.polygon) == 5
    assert polygon.village_code is None and polygon.name == "Kec. Cugenang"
    assert circle.circle == (-6.95, 107.10, 5.0) and circle.severity == "medium"
    # "Kec. Cilaku" names one district; "Cianjur" is both a district and a regency: kept as text.
    assert named.village_code == "32.03.04" and named.name == "Kec. Cilaku"
    assert cap.area_text == ("Cianjur",)


@pytest.mark.parametrize(
    ("text", "code"),
    [("Bekasi Utara", "32.75.03"), ("Kec. Cugenang", "32.03.11"), ("Cugenang, Kab. Cianjur", "32.03.11"),
     ("Kabupaten Cianjur", "32.03"), ("Kota Bekasi", "32.75"), ("Kab. Bekasi", "32.16"),
     ("Cianjur, Kab. Cianjur", "32.03.01"), ("Cianjur", None), ("Bekasi", None), ("Atlantis", None)],
)  # fmt: skip
def test_region_names_resolve_only_when_unambiguous(text: str, code: str | None) -> None:
    from schemas.regions import region_by_name

    assert region_by_name(text) == code


# ------------------------------------------------------------------ limits (issue 27)
_CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


def _cap(infos: int, areas: int = 1, desc: str = "Kab. Cianjur") -> bytes:
    area = f"<area><areaDesc>{desc}</areaDesc></area>" * areas
    info = f"<info><event>Banjir</event><severity>Severe</severity>{area}</info>" * infos
    return (
        f'<alert xmlns="{_CAP_NS}"><identifier>X</identifier><sent>2024-01-10T13:00:00+07:00</sent>'
        f"{info}</alert>"
    ).encode()


def test_a_cap_document_holds_at_most_32_infos() -> None:
    assert len(parse_alerts(_cap(32))) == 32
    with pytest.raises(InvalidAlert, match=r"^CAP: 3000 <info> blocks, at most 32$"):
        parse_alerts(_cap(3_000))


def test_a_bmkg_list_holds_at_most_32_bulletins() -> None:
    g = json.loads(_load("bmkg-gempaterkini-tsunami.json"))
    assert len(parse_alerts(json.dumps({"Infogempa": {"gempa": [g] * 32}}).encode())) == 32
    with pytest.raises(InvalidAlert, match=r"^BMKG list: 33 bulletins, at most 32$"):
        parse_alerts(json.dumps({"Infogempa": {"gempa": [g] * 33}}).encode())


def test_an_alert_lists_at_most_5000_areas() -> None:
    flood = {"event_id": "F", "hazard": "flood", "issued_at": "2024-01-10T06:00:00Z"}
    [ok] = parse_alerts(json.dumps(flood | {"areas": [{"village_code": "32"}] * 5_000}).encode())
    assert len(ok.areas) == 5_000
    with pytest.raises(ValidationError, match="areas"):
        parse_alerts(json.dumps(flood | {"areas": [{"village_code": "32"}] * 12_000}).encode())
    # A CAP <info> is refused at the bound, before its areas are validated.
    with pytest.raises(InvalidAlert, match=r"^CAP: an <info> block has more than 5000 areas$"):
        parse_alerts(_cap(1, areas=5_001))
    [named] = parse_alerts(_cap(1, desc="Ujung " * 100))
    assert len(named.area_text[0]) == 200


def test_a_cap_document_nested_deeper_than_cap_is_refused_before_it_is_built() -> None:
    """Issue 27 structural fuzz: a CAP document with an element nested 100,000 deep was accepted
    (its junk ignored); CAP nests five elements, and a document past 32 is refused."""
    body = "<x>" * 100_000 + "</x>" * 100_000
    with pytest.raises(InvalidAlert, match=r"^CAP: XML nested deeper than 32 elements$"):
        parse_alerts(_cap(1).replace(b"</alert>", body.encode() + b"</alert>"))
    assert len(parse_alerts(_cap(1).replace(b"</alert>", b"<x>" * 20 + b"</x>" * 20 + b"</alert>"))) == 1

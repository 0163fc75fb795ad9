"""Acceptance of incidents on the real broker and chDB: an aftershock, a nowcast and a landslide
around the Cianjur 2022 earthquake, untagged reports placed on the main shock's incident, an
operator's link that moves the figures and an unlink that restores them exactly, and a replay that
gives the same figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.geo import village_positions
from tests.integration.harness import ROOT, Deployment
from tests.integration.scenario import nearest_villages
from tests.integration.scoped import assert_scoped_views_exact

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MAIN = "bmkg-20221121062110"
AFTERSHOCK = "bmkg-20221124184400"
OTHER = "bmkg-20221123020000"
LANDSLIDE = "bnpb-longsor-cugenang"
NOWCAST = "cap-CJR20221124"
EPI = (-6.84, 107.05)
OTHER_EPI = (-7.0, 106.55)  # 58 km from the main shock: outside its 47 km window

INCIDENTS_SQL = (
    "SELECT incident_id, events, reported_reports, reported_dead, reported_displaced, "
    "reported_houses_heavy FROM dampak.incidents ORDER BY incident_id"
)
PLACED_SQL = (
    "SELECT report_id, event_id, incident_id, attribution FROM dampak.field_reports ORDER BY report_id"
)


def _alert(event_id: str, hazard: str, at: str, **fields: Any) -> tuple[str, bytes, bytes]:
    body = {
        "event_id": event_id,
        "hazard": hazard,
        "issued_at": at,
        "event_time": at,
        "source": "test",
        **fields,
    }
    return ("disaster-alerts", event_id.encode(), json.dumps(body).encode())


def _report(report_id: str, village: str, at: str, event: str | None = None, **counts: Any) -> dict[str, Any]:
    return {
        "report_id": report_id, "reported_at": at, "village_code": village, "reporter_role": "tksk",
        **({"event_id": event} if event else {}), **counts,
    }  # fmt: skip


def _link(link_id: str, action: str, at: str) -> tuple[str, bytes, bytes]:
    body = {
        "link_id": link_id, "action": action, "event_id": OTHER, "other_event_id": MAIN,
        "operator": "posko-cianjur/ratna", "reason": "one sequence, BMKG revised the location",
        "decided_at": at,
    }  # fmt: skip
    return ("incident-links", link_id.encode(), json.dumps(body).encode())


def _scenario() -> tuple[list[tuple[str, bytes, bytes]], list[dict[str, Any]]]:
    near = nearest_villages("32.03.", EPI, 12)
    far = nearest_villages("32.02.", OTHER_EPI, 4)
    positions = village_positions()
    households = [
        {"household_id": f"IH-{code}-{i}", "village_code": code, "updated_at": "2022-11-01T00:00:00Z",
         "members": 4, "lat": positions[code][0], "lon": positions[code][1]}
        for code in near + far
        for i in range(3)
    ]  # fmt: skip
    bulletin = (ROOT / "tests/fixtures/disaster-alerts/bmkg-autogempa-cianjur-2022.json").read_bytes()
    nowcast = (
        (ROOT / "tests/fixtures/disaster-alerts/cap-nowcast-banjir.xml")
        .read_text()
        .replace("CJB20200225010000", "CJR20221124")
        .replace("2020-02-25T08:00:00+07:00", "2022-11-24T07:00:00+07:00")
        .replace("32.75.01.1001", near[0])
    )
    alerts = [
        ("disaster-alerts", MAIN.encode(), bulletin),
        _alert(LANDSLIDE, "landslide", "2022-11-22T03:00:00Z",
               areas=[{"village_code": near[0], "severity": "high"}]),
        _alert(OTHER, "earthquake", "2022-11-23T02:00:00Z", lat=OTHER_EPI[0], lon=OTHER_EPI[1], magnitude=4.6,
               depth_km=10.0),
        ("disaster-alerts", NOWCAST.encode(), nowcast.encode()),
        _alert(AFTERSHOCK, "earthquake", "2022-11-24T18:44:00Z", lat=-6.85, lon=107.06, magnitude=4.1,
               depth_km=10.0),
    ]  # fmt: skip
    reports = [
        # Tagged with the main shock, on the day.
        *(
            _report(f"T-{i}", v, "2022-11-21T12:00:00Z", MAIN, dead=1, displaced=10)
            for i, v in enumerate(near[:6])
        ),
        # Untagged, after the aftershock and the nowcast, in villages both reach: the main shock's.
        *(
            _report(f"U-{i}", v, "2022-11-25T06:00:00Z", houses_heavy=2, displaced=7)
            for i, v in enumerate(near[:8])
        ),
        # Untagged and naming the landslide, where it struck.
        _report("U-longsor", near[0], "2022-11-22T09:00:00Z", hazard="longsor", dead=3),
        # Tagged with the other quake.
        *(_report(f"O-{i}", v, "2022-11-23T08:00:00Z", OTHER, displaced=5) for i, v in enumerate(far)),
    ]
    messages = [("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households]
    messages += alerts
    messages += [("field-reports", r["report_id"].encode(), json.dumps(r).encode()) for r in reports]
    return messages, reports


def _figures(reports: list[dict[str, Any]], linked: bool) -> list[dict[str, Any]]:
    """The incidents view's figures, computed from the reports as the rule says they fall."""
    incidents: dict[str, dict[str, Any]] = {
        MAIN: {"events": [MAIN, LANDSLIDE, AFTERSHOCK]},
        OTHER: {"events": [OTHER]},
        NOWCAST: {"events": [NOWCAST]},
    }
    if linked:
        incidents[MAIN]["events"] = [MAIN, LANDSLIDE, OTHER, AFTERSHOCK]
        del incidents[OTHER]
    for r in reports:
        incident = MAIN if r.get("event_id") != OTHER or linked else OTHER
        f = incidents[incident]
        f["reported_reports"] = f.get("reported_reports", 0) + 1
        for name in ("dead", "displaced", "houses_heavy"):
            f[f"reported_{name}"] = f.get(f"reported_{name}", 0) + r.get(name, 0)
    empty = {"reported_reports": 0, "reported_dead": 0, "reported_displaced": 0, "reported_houses_heavy": 0}
    return [{"incident_id": i, **empty, **f} for i, f in sorted(incidents.items())]


def _numbers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def number(v: Any) -> Any:
        return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    return [{k: number(v) for k, v in r.items()} for r in rows]


def test_incidents_group_place_and_follow_operator_links(deployment: Deployment, tmp_path: Path) -> None:
    messages, reports = _scenario()
    dep = deployment
    dep.start_worker()
    dep.produce(messages)
    dep.wait_for("SELECT count() AS n FROM dampak.field_reports", [{"n": len(reports)}])
    grouped = dep.wait_for(
        "SELECT event_id, incident_id, rule FROM dampak.event_incident ORDER BY event_id",
        sorted(
            [
                {"event_id": AFTERSHOCK, "incident_id": MAIN, "rule": "aftershock"},
                {"event_id": OTHER, "incident_id": OTHER, "rule": "main"},
                {"event_id": MAIN, "incident_id": MAIN, "rule": "main"},
                {"event_id": LANDSLIDE, "incident_id": MAIN, "rule": "secondary"},
                {"event_id": NOWCAST, "incident_id": NOWCAST, "rule": "warning"},
            ],
            key=lambda r: r["event_id"],
        ),
        timeout_s=120,
    )
    assert len(grouped) == 5
    # Every untagged report lands on the main shock's incident, never on the aftershock or the
    # nowcast, with the rule that placed it.
    placed = {r["report_id"]: r for r in dep.query(PLACED_SQL)}
    for rid, row in placed.items():
        if rid.startswith("U-"):
            rule = "hazard" if rid == "U-longsor" else "coverage"
            assert (row["event_id"], row["incident_id"], row["attribution"]) == (MAIN, MAIN, rule), row
    assert not any(r["incident_id"] == NOWCAST for r in placed.values())
    before = _numbers(dep.wait_for(INCIDENTS_SQL, _figures(reports, linked=False), timeout_s=60))

    # The operator links the other quake into the main shock's incident: its reports move.
    dep.produce([_link("L-1", "link", "2022-11-25T08:00:00Z")])
    dep.wait_for(INCIDENTS_SQL, _figures(reports, linked=True), timeout_s=60)
    # Each incident's scoped views (what the page reads) are its rows of the views, aftershocks,
    # the linked event and the reports placed in it included.
    incidents = [r["incident_id"] for r in dep.query("SELECT DISTINCT incident_id FROM dampak.field_reports")]
    assert assert_scoped_views_exact(dep, incidents) > 0
    audit = dep.query("SELECT link_id, action, operator FROM dampak.incident_links")
    assert audit == [{"link_id": "L-1", "action": "link", "operator": "posko-cianjur/ratna"}]
    # ... and unlinks it: the figures are exactly what they were.
    dep.produce([_link("L-2", "unlink", "2022-11-25T09:00:00Z")])
    after = _numbers(dep.wait_for(INCIDENTS_SQL, before, timeout_s=60))
    assert after == before
    placed_after = dep.query(PLACED_SQL)
    assert dep.stop_worker() == 0

    # A replay of every topic into a new store gives the same incidents and placements.
    replay = Deployment(
        f"{dep.name}-replay", tmp_path / "replay", dep.settings.web.port,
        DAMPAK_KAFKA__TOPIC_PREFIX=dep.topic(""),
    )  # fmt: skip
    replay.start_worker()
    try:
        assert _numbers(replay.wait_for(INCIDENTS_SQL, before, timeout_s=180)) == before
        assert replay.wait_for(PLACED_SQL, placed_after, timeout_s=60) == placed_after
    finally:
        replay.stop_worker()

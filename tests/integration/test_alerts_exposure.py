"""Acceptance of the alert flow on the real broker and chDB: Cianjur 2022 bulletin -> exposure,
event summary beside reported figures, revision replaces, reports attach, notifications once."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from kafka import KafkaConsumer

from schemas.geo import village_positions
from schemas.regions import villages as real_villages
from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

EPI = (-6.84, 107.05)
BULLETIN = json.loads((ROOT / "tests/fixtures/disaster-alerts/bmkg-autogempa-cianjur-2022.json").read_text())
# The prediction alone, checked against AWW 2012 written out below: the bulletin without its felt
# report (``Dirasakan`` corrects the field: tests/unit/streams/domain/test_shakemap.py).
PREDICTION_ONLY = json.loads(json.dumps(BULLETIN))
del PREDICTION_ONLY["Infogempa"]["gempa"]["Dirasakan"]
EVENT = "bmkg-20221121062110"


def _mmi(m: float, depth: float, lat: float, lon: float) -> float:
    # Written out again here, independently of streams.domain.hazard.
    p1, p2 = math.radians(EPI[0]), math.radians(lat)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon - EPI[1]) / 2) ** 2
    )
    epi = 2 * 6371.0088 * math.asin(math.sqrt(a))
    r = math.hypot(epi, depth)
    rm = -0.209 + 2.042 * math.exp(m - 5)
    v = 2.085 + 1.428 * m - 1.402 * math.log(math.hypot(r, rm)) + (0.078 * math.log(r / 50) if r > 50 else 0)
    return v


def _death_rate(level: int) -> float:
    if level < 5:
        return 0.0
    z = math.log(min(level, 9) / 13.248768) / 0.150846
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _registry(rng: random.Random) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    households, villages = [], {}
    positions = village_positions()
    for code in real_villages("32.03.")[::6][:60]:  # spread over the regency, up to 80 km away
        # The estimate places a village at its shipped centroid (schemas/geo/), whatever its
        # households' own coordinates say: theirs are scattered here on purpose.
        lat, lon = positions[code]
        villages[code] = {"lat": lat, "lon": lon, "households": 0, "persons": 0, "kpm": 0, "vulnerable": 0}
        for h in range(rng.randint(5, 30)):
            members = rng.randint(1, 6)
            programs = ["PKH"] if rng.random() < 0.3 else []
            elderly = rng.randint(0, 1)
            households.append(
                {"household_id": f"AH-{code}-{h}", "village_code": code, "updated_at": "2022-11-01T00:00:00Z",
                 "members": members, "programs": programs, "elderly": elderly,
                 "lat": lat + rng.uniform(-0.05, 0.05), "lon": lon + rng.uniform(-0.05, 0.05)}
            )  # fmt: skip
            s = villages[code]
            s["households"] += 1
            s["persons"] += members
            s["kpm"] += bool(programs)
            s["vulnerable"] += elderly
    return households, villages


def _expected_exposure(villages: dict[str, dict[str, Any]], magnitude: float) -> dict[str, dict[str, Any]]:
    out = {}
    for code, s in villages.items():
        mmi = _mmi(magnitude, 10.0, s["lat"], s["lon"])
        level = math.floor(mmi + 0.5)
        if level < 4:
            continue
        deaths = s["persons"] * _death_rate(level)
        out[code] = {
            "village_code": code,
            "exposed_households": s["households"],
            "exposed_persons": s["persons"],
            "exposed_kpm_households": s["kpm"],
            "exposed_vulnerable": s["vulnerable"],
            "mmi": round(mmi, 3),
            "est_deaths": round(deaths, 6),
            "est_displaced": round(s["persons"] - deaths if level >= 6 else 0.0, 6),
        }
    return out


EXPOSURE_SQL = (
    "SELECT village_code, exposed_households, exposed_persons, exposed_kpm_households, exposed_vulnerable, "
    "round(mmi, 3) AS mmi, round(est_deaths, 6) AS est_deaths, round(est_displaced, 6) AS est_displaced "
    "FROM dampak.alert_exposure WHERE event_id = {event:String} ORDER BY village_code"
)


def _exposure(dep: Deployment, expected: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Wait for the exposure rows; MMI (stored as Float32) is compared to 0.005, all else exactly."""
    want = [{k: v for k, v in expected[c].items() if k != "mmi"} for c in sorted(expected)]
    sql = EXPOSURE_SQL.replace("round(mmi, 3) AS mmi, ", "")
    rows = dep.wait_for(sql, want, timeout_s=90, event=EVENT)
    mmis = dep.query(EXPOSURE_SQL, event=EVENT)
    assert [r["mmi"] for r in mmis] == pytest.approx(
        [expected[c]["mmi"] for c in sorted(expected)], abs=0.005
    )
    return rows


def test_cianjur_bulletin_exposure_revision_reports_and_needs(deployment: Deployment) -> None:
    dep = deployment
    households, villages = _registry(random.Random(21))
    dep.start_worker()
    dep.produce(("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households)
    dep.wait_for("SELECT count() AS n FROM dampak.village_stats", [{"n": len(villages)}], timeout_s=60)

    dep.produce([("disaster-alerts", EVENT.encode(), json.dumps(PREDICTION_ONLY).encode())])
    expected = _expected_exposure(villages, 5.6)
    assert len(expected) > 10
    _exposure(dep, expected)

    # BMKG revises the magnitude: the estimate is replaced, never added to.
    revised = json.loads(json.dumps(PREDICTION_ONLY))
    revised["Infogempa"]["gempa"]["Magnitude"] = "5.0"
    dep.produce([("disaster-alerts", EVENT.encode(), json.dumps(revised).encode())])
    expected_rev = _expected_exposure(villages, 5.0)
    assert len(expected_rev) < len(expected)
    _exposure(dep, expected_rev)

    summary = dep.query(
        "SELECT magnitude, pager_fatality_level, est_exposed_households, round(est_deaths, 6) AS d, "
        "round(est_displaced, 6) AS disp FROM dampak.event_summary WHERE event_id = {event:String}",
        event=EVENT,
    )
    assert len(summary) == 1
    assert summary[0]["magnitude"] == pytest.approx(5.0)
    assert summary[0]["est_exposed_households"] == sum(e["exposed_households"] for e in expected_rev.values())
    assert summary[0]["disp"] == pytest.approx(
        sum(e["est_displaced"] for e in expected_rev.values()), abs=1e-3
    )
    assert summary[0]["pager_fatality_level"] == ("green" if summary[0]["d"] < 1 else "yellow")

    # Reports without event_id in covered villages attach to the event; elsewhere 'unassigned'.
    covered = sorted(expected_rev)[:3]
    reports = [
        {"report_id": f"AR-{i}", "reported_at": "2022-11-22T09:00:00Z", "village_code": code,
         "houses_heavy": 2, "displaced": 10 + i, "dead": 1}
        for i, code in enumerate(covered)
    ] + [{"report_id": "AR-far", "reported_at": "2022-11-22T09:00:00Z", "village_code": "35.01.01.2001",
          "displaced": 3}]  # fmt: skip
    dep.produce(("field-reports", r["report_id"].encode(), json.dumps(r).encode()) for r in reports)
    got = dep.wait_for(
        "SELECT report_id, event_id FROM dampak.field_reports ORDER BY report_id",
        [{"report_id": "AR-0", "event_id": EVENT}, {"report_id": "AR-1", "event_id": EVENT},
         {"report_id": "AR-2", "event_id": EVENT}, {"report_id": "AR-far", "event_id": "unassigned"}],
        timeout_s=60,
    )  # fmt: skip
    assert got[0]["event_id"] == EVENT and got[-1]["event_id"] == "unassigned"

    summary = dep.query(
        "SELECT reported_displaced, reported_dead, reported_houses_heavy FROM dampak.event_summary "
        "WHERE event_id = {event:String}",
        event=EVENT,
    )
    assert summary == [{"reported_displaced": 33, "reported_dead": 3, "reported_houses_heavy": 6}]

    needs = dep.query(
        "SELECT regency_code, round(est_displaced, 3) AS est, reported_displaced AS rep, "
        "round(reported_rice_kg_week, 3) AS rice, round(reported_toilets, 3) AS toilets "
        "FROM dampak.minimum_needs WHERE event_id = {event:String}",
        event=EVENT,
    )
    assert len(needs) == 1 and needs[0]["regency_code"] == "32.03"
    assert needs[0]["est"] == pytest.approx(
        round(sum(e["est_displaced"] for e in expected_rev.values()), 3), abs=0.01
    )
    assert (needs[0]["rep"], needs[0]["rice"], needs[0]["toilets"]) == (
        33,
        pytest.approx(92.4),
        pytest.approx(1.65),
    )
    assert dep.stop_worker() == 0


def test_displacement_notifications_are_sent_once_per_crossing(kafka_bootstrap: str, tmp_path: Any) -> None:
    from tests.integration.conftest import _ports

    dep = Deployment(
        "notify" + str(random.randrange(10**6)), tmp_path / "d", next(_ports),
        DAMPAK_NOTIFY__DISPLACED_THRESHOLDS="[20, 50]", DAMPAK_NOTIFY__CHECK_INTERVAL_S="1",
    )  # fmt: skip
    dep.start_worker()
    reports = [
        {"report_id": f"N-{i}", "event_id": "E-N", "reported_at": "2022-11-22T09:00:00Z",
         "village_code": "32.03.01.2001", "displaced": 10}
        for i in range(3)
    ]  # fmt: skip
    dep.produce(("field-reports", r["report_id"].encode(), json.dumps(r).encode()) for r in reports)
    dep.wait_for("SELECT count() AS n FROM dampak.notifications", [{"n": 1}], timeout_s=60)
    # Restart and replay the same reports: nothing new; then cross the next threshold once.
    dep.stop_worker()
    dep.start_worker()
    dep.produce(("field-reports", r["report_id"].encode(), json.dumps(r).encode()) for r in reports)
    more = [dict(r, report_id=f"M-{i}") for i, r in enumerate(reports)]
    dep.produce(("field-reports", r["report_id"].encode(), json.dumps(r).encode()) for r in more)
    dep.wait_for("SELECT count() AS n FROM dampak.notifications", [{"n": 2}], timeout_s=60)
    consumer = KafkaConsumer(
        dep.topic("impact-notifications"), bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest", consumer_timeout_ms=5000,
    )  # fmt: skip
    messages = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert sorted(m["notification_id"] for m in messages) == [
        "E-N:32.03:displaced>=20",
        "E-N:32.03:displaced>=50",
    ]
    assert dep.stop_worker() == 0


def test_two_bulletins_of_one_event_in_one_message_leave_the_later_ones_villages(
    deployment: Deployment,
) -> None:
    """Issue 27, cases 3 and 4 on a real worker: an M7.0 and then an M5.0 bulletin of one event in
    one BMKG list (one message, so one batch forwards both). The exposure is the M5.0's, not the
    superseded M7.0's, and the message is stored once, with the bulletin that stands. (The worker
    sends ``disaster-alerts-by-event`` unbundled today; the unit test packs both in one bundle.)"""
    dep = deployment
    households, villages = _registry(random.Random(27))
    dep.start_worker()
    dep.produce(("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households)
    dep.wait_for("SELECT count() AS n FROM dampak.village_stats", [{"n": len(villages)}], timeout_s=60)

    gempa = PREDICTION_ONLY["Infogempa"]["gempa"]
    bulletins = {"Infogempa": {"gempa": [dict(gempa, Magnitude="7.0"), dict(gempa, Magnitude="5.0")]}}
    message = json.dumps(bulletins)
    dep.produce([("disaster-alerts", EVENT.encode(), message.encode())])
    expected = _expected_exposure(villages, 5.0)
    assert 10 < len(expected) < len(_expected_exposure(villages, 7.0))
    _exposure(dep, expected)

    [alert] = dep.query(
        "SELECT magnitude, raw_payload, payload_event_id FROM dampak.alerts WHERE event_id = {event:String}",
        event=EVENT,
    )
    # The message is stored once, with the bulletin that stands.
    assert alert == {"magnitude": 5.0, "raw_payload": message, "payload_event_id": ""}
    assert dep.stop_worker() == 0


def test_an_existing_database_gains_payload_event_id(tmp_path: Any) -> None:
    """A database made before ``payload_event_id`` (migrations 1 to 5) is migrated: the column is
    added where the declaration has it, the ``alerts`` view shows it, and older rows read ''."""
    from sinks.config import ClickHouseTarget
    from sinks.connection import connect
    from sinks.migrations import migrate
    from sinks.tables import ALERTS_STATE

    client = connect(ClickHouseTarget(f"chdb://{tmp_path / 'ch'}", "old", tmp_path))
    client.command("CREATE DATABASE IF NOT EXISTS old")
    migrate(client, "old")
    # As migrations 1 to 5 left it (the columns of migrations 6 and 8 dropped), with a row written then.
    for column in ("payload_event_id", "warning", "felt_used", "pager_fatality_level",
                   "pager_economic_level", "est_economic_loss_usd"):  # fmt: skip
        client.command(f"ALTER TABLE old.alerts_state DROP COLUMN {column}")
    client.command("DELETE FROM old.schema_migrations WHERE version IN (6, 8)")
    client.command("OPTIMIZE TABLE old.schema_migrations FINAL")
    client.command(
        "INSERT INTO old.alerts_state (event_id, version, hazard, issued_at, event_time, raw_payload, "
        "received_at) VALUES ('E-old', 1, 'flood', now(), now(), '{}', now())"
    )
    assert migrate(client, "old") == [6, 8]
    described = client.query("DESCRIBE TABLE old.alerts_state").result_rows
    assert tuple(r[0] for r in described) == ALERTS_STATE.column_names
    rows = client.query("SELECT event_id, raw_payload, payload_event_id FROM old.alerts").result_rows
    assert rows == [("E-old", "{}", "")]
    client.close()

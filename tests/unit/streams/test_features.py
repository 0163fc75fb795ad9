"""Every agent's handler, driven through the engine over fakes (no Kafka, no ClickHouse)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.tables import ALERT_EXPOSURE_STATE, ALERTS_STATE, REGISTRY_STATE, REPORT_STATE, TABLES
from streams.domain.hazard import DisplacementRates
from streams.domain.lag import GroupLag, PartitionLag
from streams.domain.notifications import Notice
from streams.domain.reports import row_version
from streams.engine import Outcome
from streams.features.alerts import AlertDeps, estimate_alert_impact
from streams.features.field_reports import ReportDeps, enrich_report, route_report
from streams.features.households import RegistryDeps, apply_household_change
from streams.features.notifications import Notifier
from streams.features.operations import publish_lag
from tests.unit.fakes import FAST, PSEUDO, FakeForwarder, FakeReader, FakeWriter, message, run

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NOW = datetime(2022, 11, 22, tzinfo=UTC)
COLUMNS = {t.name: set(t.column_names) for t in TABLES}


def _now() -> datetime:
    return NOW


def _household(hid: str = "h1", **kw: Any) -> bytes:
    doc = {"household_id": hid, "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z",
           "members": 4, "desil": 7, "programs": [], "elderly": 1, **kw}  # fmt: skip
    return json.dumps(doc).encode()


def _report(rid: str = "r1", **kw: Any) -> bytes:
    doc = {"report_id": rid, "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001", **kw}
    return json.dumps(doc).encode()


def _assert_declared(writer: FakeWriter) -> None:
    for table, rows in writer.rows.items():
        for row in rows:
            assert set(row) == COLUMNS[table], table


# ------------------------------------------------------------------ households
def _registry() -> RegistryDeps:
    return RegistryDeps({}, {}, PSEUDO, _now)


def test_household_record_is_stored_and_written_with_pseudonyms_only() -> None:
    deps = _registry()
    outcomes, writer, _ = run(
        apply_household_change,
        deps,
        [message("households", _household(nik_head="3203010101800001"), b"h1", offset=9)],
        personal_key=True,
    )
    assert outcomes == [Outcome.OK]
    assert deps.registry["h1"]["offset"] == 9 and deps.registry["h1"]["members"] == 4
    [row] = writer.table(REGISTRY_STATE.name)
    assert row["version"] == 10 and row["nik_ref"].startswith("k1:")
    assert "3203010101800001" not in repr(row) and "'h1'" not in repr(row)
    _assert_declared(writer)


def test_a_household_change_re_emits_its_reports_enriched() -> None:
    deps = _registry()
    doc = orjson.loads(
        orjson.dumps(
            {"report_id": "r1", "revision": 2, "retracted": False, "event_id": "E", "schema_version": 1,
             "reported_at": "2022-11-21T08:00:00+00:00", "reporter_id": "", "reporter_role": "tagana",
             "village_code": "32.03.01.2001", "household_id": "h1", "houses_light": 0, "houses_moderate": 0,
             "houses_heavy": 1, "displaced": 4, "dead": 0, "injured": 0, "missing": 0, "needs": [],
             "lat": None, "lon": None, "notes": "", "digest": "d"}
        )
    )  # fmt: skip
    deps.household_reports["h1"] = {"r1": doc}
    _, writer, _ = run(apply_household_change, deps, [message("households", _household(), b"h1", offset=3)])
    [report] = writer.table(REPORT_STATE.name)
    assert report["registered"] and report["desil"] == 7 and report["version"] == row_version(2, 3)
    _assert_declared(writer)


def test_stale_updates_tombstones_and_bad_records() -> None:
    deps = _registry()
    msgs = [
        message("households", _household(updated_at="2022-11-05T00:00:00Z"), b"h1", offset=0),
        message("households", _household(updated_at="2022-11-01T00:00:00Z"), b"h1", offset=1),  # older
        message("households", _household("h2"), b"other", offset=2),  # key differs from the id
        message("households", b'{"household_id": "h3"}', b"h3", offset=3),  # fields missing
        message("households", None, None, offset=4),  # tombstone without a key
        message("households", None, b"h1", offset=5),  # tombstone
    ]
    outcomes, writer, forwarder = run(apply_household_change, deps, msgs, personal_key=True)
    assert outcomes == [Outcome.OK, Outcome.STALE] + [Outcome.DEAD_LETTER] * 3 + [Outcome.OK]
    assert deps.registry["h1"]["deleted"] and "h2" not in deps.registry
    reasons = [r["reason"] for r in writer.table("dead_letter_state")]
    assert reasons[0] == "message key does not match household_id"
    assert "updated_at: Field required" in reasons[1] and reasons[2] == "tombstone without a key"
    # The households key is personal data: pseudonymised in the table, raw only on the DLQ topic.
    assert writer.table("dead_letter_state")[0]["key_ref"].startswith("k1:")
    assert len(forwarder.on("households-dlq")) == 3


# ------------------------------------------------------------------ field reports
def _reports() -> ReportDeps:
    return ReportDeps({}, {}, PSEUDO, "by-household", _now)


def test_village_summaries_are_written_and_household_reports_forwarded() -> None:
    deps = _reports()
    msgs = [
        message("field-reports", _report("v1", dead=2), b"v1", offset=40),
        message("field-reports", _report("h-r", household_id="h1", houses_heavy=1), b"h-r", offset=41),
        message("field-reports", _report("bad", dead=-1), b"bad", offset=42),
        message("field-reports", None, b"tomb", offset=43),
    ]
    outcomes, writer, forwarder = run(route_report, deps, msgs)
    assert outcomes == [Outcome.OK, Outcome.OK, Outcome.DEAD_LETTER, Outcome.DEAD_LETTER]
    [summary] = writer.table(REPORT_STATE.name)
    assert summary["report_id"] == "v1" and summary["dead"] == 2 and summary["version"] == row_version(1, 40)
    [fwd] = forwarder.on("by-household")
    assert fwd.key == b"h1" and orjson.loads(fwd.value or b"")["household_id"] == "h1"
    reasons = [r["reason"] for r in writer.table("dead_letter_state")]
    assert "dead: Input should be greater than or equal to 0" in reasons[0]
    assert reasons[1].startswith("empty message")
    _assert_declared(writer)


def test_household_reports_are_enriched_and_revisions_decided() -> None:
    deps = _reports()
    deps.registry["h1"] = _state(offset=77)
    _, _, routed = run(
        route_report,
        deps,
        [
            message("field-reports", _report("r1", household_id="h1", displaced=3), b"r1", 0),
            message("field-reports", _report("r1", household_id="h1", displaced=3), b"r1", 1),  # re-sent
            message("field-reports", _report("r1", household_id="h1", revision=2, displaced=5), b"r1", 2),
            message("field-reports", _report("r1", household_id="h1", displaced=9), b"r1", 3),  # late rev 1
        ],
    )
    internal = [message("by-household", f.value, f.key, i) for i, f in enumerate(routed.delivered)]
    outcomes, writer, _ = run(enrich_report, deps, internal)
    assert outcomes == [Outcome.OK, Outcome.DUPLICATE, Outcome.OK, Outcome.STALE]
    rows = writer.table(REPORT_STATE.name)
    assert [(r["revision"], r["displaced"]) for r in rows] == [(1, 3), (1, 3), (2, 5)]
    assert all(r["registered"] and r["version"] == row_version(r["revision"], 77) for r in rows)
    assert deps.household_reports["h1"]["r1"]["revision"] == 2
    _assert_declared(writer)


def _state(offset: int) -> Any:
    from schemas.households import Household
    from streams.domain.registry import household_state

    return household_state(Household.model_validate_json(_household()), offset)


# ------------------------------------------------------------------ alerts
def _stats() -> dict[str, list[Any]]:
    return {
        "village_code": ["32.03.01.2001", "32.03.02.2001"],
        "households": [20_000, 50],
        "persons": [200_000, 200],
        "kpm_households": [4_000, 10],
        "vulnerable_persons": [3_000, 15],
        "pregnant": [400, 2],
        "lat": [-6.84, -6.75],
        "lon": [107.05, 107.05],
    }


def test_an_alert_becomes_an_estimate_and_a_notification_after_the_write() -> None:
    reader, writer, forwarder = FakeReader(_stats()), FakeWriter(), FakeForwarder()
    notifier = Notifier(reader, writer, forwarder, "impact-notifications", FAST, _now)
    deps = AlertDeps(reader, DisplacementRates(), ("yellow", "orange", "red"), notifier, _now)
    bulletin = (FIXTURES / "disaster-alerts" / "bmkg-autogempa-cianjur-2022.json").read_bytes()
    msgs = [
        message("disaster-alerts", bulletin, b"bmkg-20221121062110", offset=5),
        message("disaster-alerts", b"<not-cap/>", b"x", offset=6),
        message("disaster-alerts", b"", b"y", offset=7),
    ]
    from streams.engine import Flow
    from tests.unit.fakes import engine

    flow = Flow("alerts", lambda m, o: estimate_alert_impact(deps, m, o))
    outcomes = asyncio.run(engine(writer, forwarder).process(flow, msgs))
    assert outcomes == [Outcome.OK, Outcome.DEAD_LETTER, Outcome.DEAD_LETTER]
    [alert] = writer.table(ALERTS_STATE.name)
    assert alert["event_id"] == "bmkg-20221121062110" and alert["magnitude"] == 5.6
    assert alert["pager_level"] == "yellow" and alert["est_exposed_households"] == 20_050
    exposure = writer.table(ALERT_EXPOSURE_STATE.name)
    assert [e["village_code"] for e in exposure] == ["32.03.01.2001", "32.03.02.2001"]
    assert {e["version"] for e in exposure} == {alert["version"]}
    [note] = forwarder.on("impact-notifications")
    assert note.key == b"bmkg-20221121062110:pager:yellow"
    assert [r["notification_id"] for r in writer.table("notification_state")] == [
        "bmkg-20221121062110:pager:yellow"
    ]
    reasons = [r["reason"] for r in writer.table("dead_letter_state")]
    assert reasons == ["CAP: root element is not a CAP 1.2 <alert>", "empty message"]
    _assert_declared(writer)


def test_notifications_are_sent_once() -> None:
    reader, writer, forwarder = FakeReader(), FakeWriter(), FakeForwarder(failures=1)
    notifier = Notifier(reader, writer, forwarder, "impact-notifications", FAST, _now)
    reader.displaced = [("E", "32.03", "Cianjur", 12_000), ("E", "32.02", "Sukabumi", 500)]
    reader.sent = {"E:32.03:displaced>=1000"}
    sent = asyncio.run(notifier.check_displacement((1_000, 10_000, 50_000)))
    assert sent == 1
    assert [f.key for f in forwarder.delivered] == [b"E:32.03:displaced>=10000"]
    body = orjson.loads(forwarder.delivered[0].value or b"")
    assert body["kind"] == "reported_displaced" and body["sent_at"].startswith("2022-11-22")
    assert asyncio.run(notifier.send_new([])) == 0
    reader.sent |= {"x"}
    assert asyncio.run(notifier.send_new([Notice("x", "E", "k", "", "1", "m")])) == 0


# ------------------------------------------------------------------ operations
def test_lag_samples_become_rows() -> None:
    writer = FakeWriter()
    groups = [GroupLag("g", "WARN", 1, [PartitionLag("g", "t", 0, 5, 9, 4, 1.5, "WARN")])]
    asyncio.run(publish_lag(groups, writer, NOW))
    [row] = writer.table("consumer_lag")
    assert (row["lag"], row["status"], row["group_status"], row["sampled_at"]) == (4, "WARN", "WARN", NOW)
    _assert_declared(writer)


@pytest.mark.parametrize("table", [t.name for t in TABLES if t.name not in ("schema_migrations", "regions")])
def test_every_written_table_has_a_handler_test(table: str) -> None:
    # Guards this module: each storage table the pipeline writes is checked against its declaration.
    text = Path(__file__).read_text()
    assert table.upper() in text or f'"{table}"' in text, table

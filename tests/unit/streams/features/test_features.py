"""Every agent's handler, driven through the engine over fakes (no Kafka, no ClickHouse)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.tables import (
    ALERT_EXPOSURE_STATE,
    ALERTS_STATE,
    ESTIMATE_STATE,
    INCIDENT_LINK_STATE,
    REGISTRY_STATE,
    REPORT_STATE,
    TABLES,
)
from streams.domain.hazard import DisplacementRates
from streams.domain.lag import GroupLag, PartitionLag
from streams.domain.notifications import Notice
from streams.domain.revision import report_version
from streams.engine import Flow, Forward, Message, Outcome
from streams.features.alerts import AlertDeps, estimate_alert_impact, route_alert
from streams.features.field_reports import ReportDeps, decide_report, enrich_report, route_report
from streams.features.household_reports import HouseholdReports
from streams.features.households import RegistryDeps, apply_household_change, route_household
from streams.features.incidents import IncidentDeps, record_incident_link
from streams.features.notifications import Notifier
from streams.features.operations import publish_lag
from tests.unit.fakes import (
    BATCHING,
    FAST,
    PSEUDO,
    FakeForwarder,
    FakeReader,
    FakeWriter,
    engine,
    message,
    run,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
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


def _internal(forwards: list[Forward], topic: str, first_offset: int = 0) -> list[Message]:
    """What a downstream agent reads: the forwards to ``topic``, at consecutive offsets."""
    sent = [f for f in forwards if f.topic == topic]
    return [message(topic, f.value, f.key, first_offset + i) for i, f in enumerate(sent)]


class Pipeline:
    """The report and registry flows chained over shared tables, one batch per call."""

    def __init__(self) -> None:
        self.registry: dict[str, Any] = {}
        self.household_reports: dict[str, Any] = {}
        self.copies: dict[str, Any] = {}
        self.offsets: dict[str, int] = {}
        self.rows: list[dict[str, Any]] = []
        self.registry_rows: list[dict[str, Any]] = []
        self.outcomes: dict[str, list[Outcome]] = {}
        self.reports = ReportDeps(self.registry, self.household_reports, self.copies, PSEUDO, now=_now)
        self.households = RegistryDeps(self.registry, self.household_reports, PSEUDO, now=_now)
        #: Each step's last batch, to replay it as a worker does after a crash.
        self.batches: dict[str, tuple[Any, Any, list[Message], dict[str, Any]]] = {}

    def _step(self, name: str, handler: Any, deps: Any, msgs: list[Message], **kw: Any) -> FakeForwarder:
        self.batches[name] = (handler, deps, msgs, kw)
        outcomes, writer, forwarder = run(handler, deps, msgs, **kw)
        self.outcomes.setdefault(name, []).extend(outcomes)
        self.rows += writer.table(REPORT_STATE.name)
        self.registry_rows += writer.table(REGISTRY_STATE.name)
        _assert_declared(writer)
        return forwarder

    def _next(self, forwards: list[Forward], topic: str) -> list[Message]:
        msgs = _internal(forwards, topic, self.offsets.get(topic, 0))
        self.offsets[topic] = self.offsets.get(topic, 0) + len(msgs)
        return msgs

    def reports_in(self, *values: bytes) -> None:
        msgs = [message("field-reports", v, None, i) for i, v in enumerate(values)]
        routed = self._step("route", route_report, self.reports, msgs)
        decided = self._step("decide", decide_report, self.reports,
                             self._next(routed.delivered, "field-reports-by-id"))  # fmt: skip
        self._step("enrich", enrich_report, self.reports,
                   self._next(decided.delivered, "field-reports-by-household"))  # fmt: skip

    def households_in(self, *values: tuple[bytes | None, bytes | None]) -> None:
        msgs = [message("households", v, k, i) for i, (k, v) in enumerate(values)]
        routed = self._step("route_households", route_household, self.households, msgs, personal_key=True)
        self._step("apply", apply_household_change, self.households,
                   self._next(routed.delivered, "households-by-id"))  # fmt: skip

    def replay(self, name: str) -> FakeForwarder:
        """Handle the step's last batch again, at the same positions (uncommitted after a crash)."""
        handler, deps, msgs, kw = self.batches[name]
        return self._step(name, handler, deps, msgs, **kw)

    def current(self) -> dict[str, dict[str, Any]]:
        """report_id -> the row that stands. ClickHouse's FINAL keeps the highest version per
        (event, report), its sort key; of those, at most one row of a report is not retracted
        (checked here): that one stands, else the report's latest (retracted) row."""
        final: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.rows:
            key = (row["reported_event_id"], row["report_id"])
            if key not in final or row["version"] >= final[key]["version"]:
                final[key] = row
        out: dict[str, dict[str, Any]] = {}
        for row in sorted(final.values(), key=lambda r: (not r["retracted"], r["version"])):
            kept = out.get(row["report_id"])
            assert kept is None or kept["retracted"], f"report {row['report_id']} stands under two events"
            out[row["report_id"]] = row
        return out


# ------------------------------------------------------------------ households
def test_households_are_validated_rekeyed_and_kept_with_pseudonyms_only() -> None:
    p = Pipeline()
    p.households_in(
        (b"h1", _household(nik_head="3203010101800001", updated_at="2022-11-05T00:00:00Z")),
        (None, _household("h2")),  # no key: the id decides
        (b"h1", _household(updated_at="2022-11-01T00:00:00Z")),  # older: stale
        (b"other", _household("h3")),  # key differs from the id
        (b"h4", b'{"household_id": "h4"}'),  # fields missing
        (None, None),  # tombstone without a key
        (b"h2", None),  # tombstone
    )
    assert p.outcomes["route_households"] == [Outcome.OK] * 3 + [Outcome.DEAD_LETTER] * 3 + [Outcome.OK]
    assert p.outcomes["apply"] == [Outcome.OK, Outcome.OK, Outcome.STALE, Outcome.OK]
    assert p.registry["h1"]["seq"] == 1 and p.registry["h2"]["deleted"] and "h3" not in p.registry
    assert [r["version"] for r in p.registry_rows] == [1, 1, 2]
    assert all(r["nik_ref"].startswith("k1:") or r["nik_ref"] == "" for r in p.registry_rows)
    assert "3203010101800001" not in repr(p.registry_rows) and "'h1'" not in repr(p.registry_rows)


def test_a_replayed_household_change_rewrites_and_an_older_one_is_ignored() -> None:
    deps = RegistryDeps({}, {}, PSEUDO, now=_now)
    state = {"village_code": "32.03.01.2001", "updated_ms": 1, "members": 4, "desil": 7, "programs": [],
             "elderly": 1, "disabled": 0, "under5": 0, "pregnant": 0, "lat": None, "lon": None,
             "nik_head": None, "kk_number": None, "offset": -1, "deleted": False, "seq": 0}  # fmt: skip
    record = orjson.dumps(state)
    outcomes, _, _ = run(
        apply_household_change,
        deps,
        [message("households-by-id", record, b"h1", 5), message("households-by-id", record, b"h1", 5),
         message("households-by-id", record, b"h1", 3)],
    )  # fmt: skip
    assert outcomes == [Outcome.OK, Outcome.DUPLICATE, Outcome.STALE]
    assert deps.registry["h1"]["seq"] == 1


@pytest.mark.parametrize("later", [False, True], ids=["deleted", "deleted-then-recreated"])
def test_a_tombstone_and_records_sent_to_other_partitions_converge_in_any_arrival_order(later: bool) -> None:
    """A publisher that partitions at random (or keyless records with keyed tombstones) gives no
    arrival order across partitions: the producer timestamps order a tombstone and the records."""
    deps = RegistryDeps({}, {}, PSEUDO, now=_now)
    routed = run(route_household, deps, [message("households", _household(desil=2))])[2]
    [record] = _internal(routed.delivered, "households-by-id")
    changes = [(record.value, 100.0), (None, 100.0)]  # the tombstone wins a tie (same millisecond)
    if later:
        recreated = orjson.loads(record.value) | {"desil": 9}  # same updated_at: re-registration
        changes.append((orjson.dumps(recreated), 100.001))
    for order in itertools.permutations(changes):
        deps.registry.clear()
        msgs = [Message("households-by-id", 0, i, b"h1", v, ts) for i, (v, ts) in enumerate(order)]
        run(apply_household_change, deps, msgs)
        state = deps.registry["h1"]
        assert (state["deleted"], state["desil"]) == ((False, 9) if later else (True, None)), order
        assert state["published_ms"] == (100_001 if later else 100_000)


# ------------------------------------------------------------------ field reports
def test_reports_are_validated_keyed_and_village_summaries_written() -> None:
    p = Pipeline()
    msgs = [
        message("field-reports", _report("v1", dead=2), b"v1", 0),
        message("field-reports", _report("v2"), b"other", 1),  # key differs from report_id
        message("field-reports", _report("bad", dead=-1), b"bad", 2),
        message("field-reports", None, b"tomb", 3),
        message("field-reports", _report("far", reported_at="2999-01-01T00:00:00Z"), None, 4),
        message("field-reports", _report("old", reported_at="0001-01-01T00:00:00+01:00"), None, 5),
        message("field-reports", _report("cc", village_code="99.99.99.1999"), None, 6),
        message("field-reports", _report("fw", village_code="\uff13\uff12.03.01.2001"), None, 7),
        message("field-reports", _report("big", household_id="h", displaced=101), None, 8),
        message("field-reports", _report("huge", displaced=2**32), None, 9),
    ]
    outcomes, writer, forwarder = run(route_report, p.reports, msgs)
    assert outcomes == [Outcome.OK] + [Outcome.DEAD_LETTER] * 9
    reasons = [r["reason"] for r in writer.table("dead_letter_state")]
    assert reasons[0] == "message key does not match report_id"
    assert "dead: Input should be greater than or equal to 0" in reasons[1]
    assert reasons[2].startswith("empty message")
    assert "reported_at: Value error, datetime must be between 1900-01-01 and now + 1 day" in reasons[3]
    assert "reported_at: Value error, datetime outside the supported range" in reasons[4]
    assert reasons[5] == "village_code: Value error, unknown village_code"
    assert "village_code: String should match pattern" in reasons[6]
    assert "at most 100 persons (displaced)" in reasons[7]
    assert "displaced: Input should be less than or equal to 4294967295" in reasons[8]
    assert [f.key for f in forwarder.on("field-reports-by-id")] == [b"v1"]
    p.reports_in(_report("v1", dead=2))
    [summary] = p.rows
    assert (
        summary["report_id"] == "v1" and summary["dead"] == 2 and summary["version"] == report_version(1, 1)
    )


def test_the_copy_received_last_stands_whatever_household_it_names() -> None:
    p = Pipeline()
    p.households_in((b"A", _household("A", desil=2)), (b"B", _household("B", desil=9)))
    p.reports_in(_report("r", household_id="A", houses_heavy=1, displaced=3))
    # Same revision, corrected: the report is about household B.
    p.reports_in(_report("r", household_id="B", houses_heavy=1, displaced=4))
    assert p.current()["r"]["household_ref"] == PSEUDO.ref("household_id", "B")
    assert p.current()["r"]["displaced"] == 4 and p.current()["r"]["desil"] == 9
    # Household A changes later: the report moved away, so nothing of it comes back.
    p.households_in((b"A", _household("A", desil=1, updated_at="2022-11-09T00:00:00Z")))
    assert p.current()["r"]["household_ref"] == PSEUDO.ref("household_id", "B")
    assert HouseholdReports(p.household_reports).ids("A") == []
    # B changes: its report is re-enriched with a higher version.
    p.households_in((b"B", _household("B", desil=3, updated_at="2022-11-09T00:00:00Z")))
    assert p.current()["r"]["desil"] == 3
    # Then the report becomes a village summary: it stands, and B drops it.
    p.reports_in(_report("r", displaced=7))
    assert p.current()["r"]["household_ref"] == "" and p.current()["r"]["displaced"] == 7
    assert HouseholdReports(p.household_reports).ids("B") == []


def test_revisions_resends_retractions_and_stale_copies() -> None:
    p = Pipeline()
    p.households_in((b"h1", _household()))
    p.reports_in(
        _report("r1", household_id="h1", displaced=3),
        _report("r1", household_id="h1", displaced=3),  # re-sent
        _report("r1", household_id="h1", revision=2, displaced=5),
        _report("r1", household_id="h1", displaced=9),  # a late revision 1
        _report("r2", household_id="h1", displaced=1),
        _report("r2", household_id="h1", revision=2, retracted=True),
    )
    assert p.outcomes["decide"] == [
        Outcome.OK,
        Outcome.DUPLICATE,
        Outcome.OK,
        Outcome.STALE,
        Outcome.OK,
        Outcome.OK,
    ]
    current = p.current()
    assert (current["r1"]["revision"], current["r1"]["displaced"]) == (2, 5)
    assert current["r2"]["retracted"] and current["r1"]["registered"]
    # Retracted reports leave the household's state: only r1 is re-enriched from now on.
    assert HouseholdReports(p.household_reports).ids("h1") == ["r1"]


class _Recorded(dict[str, Any]):
    """A table that records the keys written (each write is a changelog record in the worker)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.written.append(key)
        super().__setitem__(key, value)


def test_a_replay_writes_its_state_again_for_the_changelog() -> None:
    """After a crash the local store can hold a change its changelog never got: a replay, found
    DUPLICATE against that store, must write it again or the changelog never has it."""
    p = Pipeline()
    registry, reports, copies = _Recorded(), _Recorded(), _Recorded()
    p.registry, p.household_reports, p.copies = registry, reports, copies
    p.reports = ReportDeps(registry, reports, copies, PSEUDO, now=_now)
    p.households = RegistryDeps(registry, reports, PSEUDO, now=_now)
    p.households_in((b"h1", _household()))
    p.reports_in(_report("r1", household_id="h1"))
    for table in (registry, reports, copies):
        table.written.clear()
    p.replay("apply")
    p.replay("decide")
    p.replay("enrich")
    assert {p.outcomes[step][-1] for step in ("apply", "decide", "enrich")} == {Outcome.DUPLICATE}
    assert registry.written == ["h1"] and copies.written == ["r1"]
    assert reports.written == ["r|2|h1r1"]  # the report; its index already lists it


def test_a_report_the_restore_left_out_of_its_household_comes_back_on_replay() -> None:
    """Seen after SIGKILLs: the report was kept and written, its changelog records were not
    published, and the restore put back the household's index from before it. The replay found the
    report DUPLICATE and left the index as it was, so a later registry change never re-enriched it."""
    p = Pipeline()
    p.households_in((b"h1", _household(programs=[], elderly=1)))
    p.reports_in(_report("r1", household_id="h1"), _report("r2", household_id="h1"))
    p.household_reports["i|h1"] = ["r1"]  # the index as restored; r2's own key survived
    p.replay("enrich")
    assert HouseholdReports(p.household_reports).ids("h1") == ["r1", "r2"]
    changed = _household(desil=2, programs=["PKH"], elderly=2, updated_at="2022-11-09T00:00:00Z")
    p.households_in((b"h1", changed))
    assert [(r["kpm"], r["vulnerable_persons"]) for r in p.current().values()] == [(True, 2), (True, 2)]


def test_a_replayed_move_tells_the_household_it_left_again() -> None:
    p = Pipeline()
    p.households_in((b"A", _household("A")), (b"B", _household("B")))
    p.reports_in(_report("r", household_id="A"))
    lost = dict(p.household_reports)  # A's reports before the move
    p.reports_in(_report("r", household_id="B", displaced=2))
    assert HouseholdReports(p.household_reports).ids("A") == []
    # The move's removal never reached A (the worker died before delivering it): A still has r.
    p.household_reports.update({k: v for k, v in lost.items() if "A" in k})
    assert HouseholdReports(p.household_reports).ids("A") == ["r"]
    decided = p.replay("decide")
    assert p.outcomes["decide"][-1] == Outcome.DUPLICATE
    p._step("enrich", enrich_report, p.reports, p._next(decided.delivered, "field-reports-by-household"))
    assert HouseholdReports(p.household_reports).ids("A") == []
    assert HouseholdReports(p.household_reports).ids("B") == ["r"]


def test_a_report_moved_to_another_event_leaves_a_retracted_row_under_the_one_it_left() -> None:
    """report_state is sorted by event: a row is one report under one event, so a copy naming
    another event retracts the row under the earlier one (else the report would count twice)."""
    p = Pipeline()
    p.households_in((b"A", _household("A")), (b"B", _household("B")))
    moves = [
        _report("s", event_id="E1", displaced=1),  # a village summary
        _report("s", event_id="E2", displaced=2),
        _report("h", event_id="E1", household_id="A"),  # a household's report
        _report("h", event_id="E2", household_id="A", displaced=3),  # to another event
        _report("h", event_id=None, household_id="B", displaced=4),  # untagged, another household
        _report("h", event_id="E1", displaced=5),  # back to E1, as a village summary
    ]
    seen = []
    for copy in moves:
        p.reports_in(copy)
        seen.append({r: (row["reported_event_id"], row["displaced"]) for r, row in p.current().items()})
    assert [s.get("s") for s in seen[:2]] == [("E1", 1), ("E2", 2)]
    assert [s["h"] for s in seen[2:]] == [("E1", 0), ("E2", 3), ("", 4), ("E1", 5)]
    gone = [(r["reported_event_id"], r["report_id"]) for r in p.rows if r["retracted"]]
    assert gone == [("E1", "s"), ("E1", "h"), ("E2", "h"), ("", "h")]
    # A replay of the last move writes its rows, the retraction included, again: the same rows.
    before, written = p.current(), len(p.rows)
    p.replay("decide")
    assert p.outcomes["decide"][-1] == Outcome.DUPLICATE
    assert p.rows[written:] == p.rows[written - 2 : written] and p.current() == before


def test_a_household_holds_a_bounded_number_of_reports() -> None:
    from streams.features import household_reports

    p = Pipeline()
    limit, household_reports.MAX_REPORTS = household_reports.MAX_REPORTS, 3
    try:
        p.reports_in(*(_report(f"r{i}", household_id="h1") for i in range(4)))
    finally:
        household_reports.MAX_REPORTS = limit
    assert p.outcomes["enrich"] == [Outcome.OK] * 3 + [Outcome.DEAD_LETTER]


# ------------------------------------------------------------------ alerts
def _stats() -> dict[str, list[Any]]:
    return {
        "village_code": ["32.03.01.2001", "32.03.02.2002"],
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
    deps = AlertDeps(reader, DisplacementRates(), ("yellow", "orange", "red"), notifier, now=_now)
    bulletin = (FIXTURES / "disaster-alerts" / "bmkg-autogempa-cianjur-2022.json").read_bytes()
    bad_felt = bulletin.replace(b"V-VI Cianjur", b"3203010101800001 Cianjur")
    msgs = [
        message("disaster-alerts", bulletin, b"bmkg-20221121062110", offset=5),
        message("disaster-alerts", b"<not-cap/>", b"x", offset=6),
        message("disaster-alerts", b"", b"y", offset=7),
        message("disaster-alerts", bad_felt, b"z", offset=8),
    ]
    routed = asyncio.run(
        engine(writer, forwarder).process(
            Flow("r", functools.partial(route_alert, deps), "dlq", BATCHING), msgs
        )
    )
    assert routed == [Outcome.OK, Outcome.DEAD_LETTER, Outcome.DEAD_LETTER, Outcome.DEAD_LETTER]
    reasons = [r["reason"] for r in writer.table("dead_letter_state")]
    assert reasons[:2] == ["CAP: root element is not a CAP 1.2 <alert>", "empty message"]
    assert "3203010101800001" not in reasons[2] and reasons[2].startswith("Dirasakan")
    internal = _internal(forwarder.delivered, "disaster-alerts-by-event", 40)
    flow = Flow("e", functools.partial(estimate_alert_impact, deps), "dlq", BATCHING)
    assert asyncio.run(engine(writer, forwarder).process(flow, internal)) == [Outcome.OK]
    [alert] = writer.table(ALERTS_STATE.name)
    assert alert["event_id"] == "bmkg-20221121062110" and alert["magnitude"] == 5.6
    assert alert["pager_fatality_level"] == "yellow" and alert["est_exposed_households"] == 20_050
    assert alert["version"] == (1 << 41) + (40 << 16) and alert["raw_payload"] == bulletin.decode()
    exposure = writer.table(ALERT_EXPOSURE_STATE.name)
    assert [e["village_code"] for e in exposure] == ["32.03.01.2001", "32.03.02.2002"]
    assert {e["version"] for e in exposure} == {alert["version"]}
    # Every estimate with its range: PAGER's five fatality and five economic ranges (probabilities
    # summing to 1), ITB's point estimate, and the two displacement estimates.
    ranges = writer.table(ESTIMATE_STATE.name)
    models = [r["model"] for r in ranges]
    assert models == ["pager_fatality"] * 5 + ["pager_economic"] * 5 + [
        "itb_fatality", "inasafe_displacement", "damage_displacement"
    ]  # fmt: skip
    assert {r["version"] for r in ranges} == {alert["version"]}
    for model in ("pager_fatality", "pager_economic"):
        assert sum(r["probability"] for r in ranges if r["model"] == model) == pytest.approx(1.0)
    assert all(r["label"] for r in ranges)
    assert alert["pager_level"] == max(
        alert["pager_fatality_level"],
        alert["pager_economic_level"],
        key=["green", "yellow", "orange", "red"].index,
    )
    assert alert["felt_used"] == 6 and not alert["warning"]
    [note] = forwarder.on("impact-notifications")
    assert note.key == b"bmkg-20221121062110:pager:yellow"
    assert [r["notification_id"] for r in writer.table("notification_state")] == [
        "bmkg-20221121062110:pager:yellow"
    ]
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


def test_the_displacement_check_is_skipped_while_no_row_was_inserted() -> None:
    reader, writer = FakeReader(), FakeWriter()
    notifier = Notifier(reader, writer, FakeForwarder(), "impact-notifications", FAST, _now)
    check = lambda: asyncio.run(notifier.check_displacement((1_000,)))  # noqa: E731
    reader.marks = (("report_state", "all", 7),)
    assert (check(), check(), reader.checks) == (0, 0, 1)  # nothing inserted since: skipped
    reader.marks = (("consumer_lag", "all", 3), ("notification_state", "all", 4), ("report_state", "all", 7))
    check()
    assert reader.checks == 1  # the lag sampler's and the check's own inserts do not count
    reader.marks = (("report_state", "all", 8),)
    reader.displaced = [("E", "32.03", "Cianjur", 1_200)]
    assert (check(), reader.checks) == (1, 2)
    reader.marks = RuntimeError("no system.parts for this user")
    check(), check()
    assert reader.checks == 4  # without marks, every tick checks


def test_a_long_displacement_check_waits_in_proportion_before_the_next() -> None:
    # A check that took 3 s with a share of 0.2: the next begins no sooner than 12 s after it ends,
    # whatever the timer's interval; new rows keep arriving meanwhile.
    clock = [100.0]

    class SlowReader(FakeReader):
        async def displaced_by_regency(self, at_least: int) -> list[tuple[str, str, str, int]]:
            clock[0] += 3.0
            return await super().displaced_by_regency(at_least)

    reader = SlowReader()
    notifier = Notifier(reader, FakeWriter(), FakeForwarder(), "impact-notifications", FAST, _now,
                        max_share=0.2, clock=lambda: clock[0])  # fmt: skip
    for at, block in ((100.0, 1), (113.0, 2), (114.9, 3), (115.0, 4)):
        clock[0] = at
        reader.marks = (("report_state", "all", block),)
        asyncio.run(notifier.check_displacement((1_000,)))
    # Ran at 100 (ending at 103); skipped at 113 and 114.9; ran at 115.
    assert reader.checks == 2


def test_a_failed_displacement_check_is_repeated() -> None:
    reader, writer = FakeReader(), FakeWriter()
    notifier = Notifier(reader, writer, FakeForwarder(), "impact-notifications", FAST, _now)
    reader.marks = (("report_state", "all", 8),)
    reader.displaced = [("E", "32.03", "Cianjur", 1_200)]

    async def refused(ids: Any) -> set[str]:
        raise RuntimeError("ClickHouse refused the read")

    reader.sent_notifications = refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        asyncio.run(notifier.check_displacement((1_000,)))
    del reader.sent_notifications
    assert asyncio.run(notifier.check_displacement((1_000,))) == 1


# ------------------------------------------------------------------ incident links
def test_an_operator_decision_is_stored_as_made() -> None:
    writer, forwarder = FakeWriter(), FakeForwarder()
    deps = IncidentDeps(now=_now)
    link = {
        "link_id": "L-1", "action": "link", "event_id": "bmkg-b", "other_event_id": "bmkg-a",
        "operator": "posko-cianjur/ratna", "reason": "one sequence",
        "decided_at": "2022-11-25T01:00:00+07:00",
    }  # fmt: skip
    msgs = [
        message("incident-links", orjson.dumps(link), b"L-1", offset=1),
        message("incident-links", orjson.dumps(link), b"L-2", offset=2),  # key is not link_id
        message(
            "incident-links",
            orjson.dumps({**link, "link_id": "L-3", "other_event_id": "bmkg-b"}),
            None,
            offset=3,
        ),
        message("incident-links", orjson.dumps({**link, "link_id": "L-4", "reason": "  "}), None, offset=4),
    ]
    flow = Flow("l", functools.partial(record_incident_link, deps), "dlq", BATCHING)
    outcomes = asyncio.run(engine(writer, forwarder).process(flow, msgs))
    assert outcomes == [Outcome.OK] + [Outcome.DEAD_LETTER] * 3
    [row] = writer.table(INCIDENT_LINK_STATE.name)
    assert (row["action"], row["event_id"], row["other_event_id"], row["operator"]) == (
        "link",
        "bmkg-b",
        "bmkg-a",
        "posko-cianjur/ratna",
    )
    assert row["decided_at"] == datetime(2022, 11, 24, 18, 0, tzinfo=UTC)
    reasons = [r["reason"] for r in writer.table("dead_letter_state")]
    assert reasons[0] == "message key does not match link_id"
    assert "linked to itself" in reasons[1] and reasons[2].startswith("reason")
    _assert_declared(writer)


# ------------------------------------------------------------------ operations
def test_lag_samples_become_rows() -> None:
    writer = FakeWriter()
    groups = [GroupLag("g", "WARN", 1, [PartitionLag("g", "t", 0, 5, 9, 4, 1.5, "WARN")])]
    asyncio.run(publish_lag(groups, writer, NOW))
    [row] = writer.table("consumer_lag")
    assert (row["lag"], row["status"], row["group_status"], row["sampled_at"]) == (4, "WARN", "WARN", NOW)
    _assert_declared(writer)


_NOT_WRITTEN_BY_HANDLERS = (
    "schema_migrations", "regions", "village_positions", "privacy_keys", "incident_auto_state",
    "incident_state", "incident_coverage_state", "entitlement_rates",
)  # fmt: skip


@pytest.mark.parametrize(
    # incident_auto_state, incident_state and incident_coverage_state are written by the store
    # itself, after the alerts and decisions it groups (sinks.writer;
    # tests/integration/test_incidents.py);
    # entitlement_rates at the worker's start
    # (sinks.migrations; tests/integration/test_ministry.py).
    "table",
    [t.name for t in TABLES if t.name not in _NOT_WRITTEN_BY_HANDLERS],
)
def test_every_written_table_has_a_handler_test(table: str) -> None:
    # Guards this module: each storage table the pipeline writes is checked against its declaration.
    text = Path(__file__).read_text()
    assert table.upper() in text or f'"{table}"' in text, table

"""No message can stop or corrupt the pipeline (one test per case of the robustness issue), on
the real broker and chDB: every input lands exactly or is dead-lettered, whatever client
published it."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from sinks.views import ANALYST_OBJECTS, PARAMETERIZED_VIEWS
from tests.integration.conftest import _ports
from tests.integration.harness import ROOT, Deployment
from tests.integration.scenario import expected_candidates, expected_impact_village, generate

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

DEV_KEY = b"dampak-development-key-change-me"
VILLAGE, OTHER_VILLAGE = "32.03.01.2001", "32.03.01.2002"
FIGURES = (
    "event_id, village_code, reports, households_affected, houses_light, houses_moderate, houses_heavy, "
    "displaced, dead, injured, missing, kpm_households_affected, vulnerable_persons_affected, "
    "unregistered_households_affected"
)


def ref(kind: str, value: str, key: bytes = DEV_KEY, key_id: str = "k1") -> str:
    """The documented pseudonym, computed independently of the pipeline."""
    return f"{key_id}:" + hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def report(report_id: str, **kw: Any) -> tuple[str, bytes, bytes]:
    doc = {"report_id": report_id, "reported_at": "2022-11-21T09:00:00Z", "village_code": VILLAGE, **kw}
    return ("field-reports", report_id.encode(), json.dumps(doc).encode())


def household(household_id: str, **kw: Any) -> tuple[str, bytes, bytes]:
    doc = {"household_id": household_id, "village_code": VILLAGE, "updated_at": "2022-11-01T00:00:00Z", **kw}
    return ("households", household_id.encode(), json.dumps(doc).encode())


def reasons_for(dep: Deployment, *keys: str) -> dict[str, str]:
    """The dead letters' reasons by message key (raw, or already a pseudonym): ``key_ref`` holds
    every key as its pseudonym."""
    refs = {k if k.startswith("k1:") else ref("household_id", k): k for k in keys}
    rows = dep.query(
        "SELECT key_ref, reason FROM dampak.dead_letters WHERE key_ref IN {keys:Array(String)}",
        keys=list(refs),
    )
    return {refs[r["key_ref"]]: r["reason"] for r in rows}


def wait_letters(dep: Deployment, keys: list[str], timeout_s: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = reasons_for(dep, *keys)
        if len(found) == len(keys):
            return found
        time.sleep(0.5)
    raise AssertionError(f"dead letters of {sorted(set(keys) - set(found))} not found")


def _new(tmp: Path, **env: str) -> Deployment:
    return Deployment(uuid.uuid4().hex[:10], tmp / "data", next(_ports), **env)


@pytest.fixture(scope="module")
def shared(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One worker for the cases that need no restart (each uses its own ids and events)."""
    dep = _new(
        tmp_path_factory.mktemp("robust"),
        DAMPAK_NOTIFY__DISPLACED_THRESHOLDS="[500]",
        DAMPAK_NOTIFY__CHECK_INTERVAL_S="1",
    )
    dep.start_worker()
    yield dep
    assert dep.worker is not None and dep.worker.poll() is None, "the worker died: " + dep.log_tail()
    assert "Traceback" not in dep.log.read_text(errors="replace"), dep.log_tail(80)
    dep.stop_worker()


@pytest.fixture
def own(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    dep = _new(tmp_path)
    yield dep
    if dep.worker is not None and dep.worker.poll() is None:
        dep.kill_worker()


# ------------------------------------------------------------------ 1, 7
def test_1_a_datetime_that_overflows_dead_letters_its_message_only(shared: Deployment) -> None:
    good = [report(f"T1-{i}", event_id="T1", displaced=1) for i in range(5)]
    bad = [
        report("T1-bad-0", event_id="T1", reported_at="0001-01-01T00:00:00+01:00"),
        report("T1-bad-1", event_id="T1", reported_at="9999-12-31T23:30:00-01:00"),
    ]
    alert = {"event_id": "T1-alert", "hazard": "flood", "issued_at": "0001-01-01T00:00:00+01:00"}
    shared.produce(
        [
            *good[:2],
            bad[0],
            *good[2:],
            bad[1],
            ("disaster-alerts", b"T1-alert", json.dumps(alert).encode()),
            household("T1-H", updated_at="9999-12-31T23:30:00-01:00"),
        ]
    )
    shared.wait_for("SELECT count() AS n FROM dampak.field_reports WHERE event_id = 'T1'", [{"n": 5}], 60)
    letters = wait_letters(shared, ["T1-bad-0", "T1-bad-1", "T1-alert", ref("household_id", "T1-H")])
    assert all("datetime" in r for r in letters.values()), letters


def test_7_far_past_and_future_timestamps_are_refused(shared: Deployment) -> None:
    shared.produce(
        [
            household("T7-H", updated_at="9999-01-01T00:00:00Z"),
            household("T7-H", updated_at="2022-11-05T00:00:00Z", desil=4),
            report("T7-old", event_id="T7", reported_at="1800-01-01T00:00:00Z"),
            report("T7-a", event_id="T7", reported_at="2022-11-22T00:00:00Z", displaced=2),
            report("T7-b", reported_at="2022-11-30T00:00:00Z", village_code=OTHER_VILLAGE),
        ]
    )
    wait_letters(shared, ["T7-old", ref("household_id", "T7-H")])
    # The later update applied (the 9999 one would have blocked it), and the event began with its
    # first valid report, so a report without event_id 8 days later still attaches to it.
    shared.wait_for(
        "SELECT desil FROM dampak.registry_state FINAL WHERE household_ref = {h:String}",
        [{"desil": 4}],
        60,
        h=ref("household_id", "T7-H"),
    )
    shared.wait_for(
        "SELECT report_id, event_id FROM dampak.field_reports WHERE report_id LIKE 'T7-%' ORDER BY report_id",
        [{"report_id": "T7-a", "event_id": "T7"}, {"report_id": "T7-b", "event_id": "T7"}],
        60,
    )


# ------------------------------------------------------------------ 2, 3
def test_2_counts_that_do_not_fit_their_columns_are_dead_lettered(shared: Deployment) -> None:
    shared.produce(
        [
            report("T2-big", event_id="T2", displaced=2**32),
            report("T2-huge", event_id="T2", dead=10**30),
            report("T2-hh", event_id="T2", household_id="T2-H", displaced=150),
            household("T2-H", members=70_000),
            report("T2-ok", event_id="T2", displaced=4_294_967_295),
        ]
    )
    letters = wait_letters(shared, ["T2-big", "T2-huge", "T2-hh", ref("household_id", "T2-H")])
    assert "less than or equal to" in letters["T2-big"] and "at most 100 persons" in letters["T2-hh"]
    shared.wait_for(
        "SELECT displaced FROM dampak.impact_village WHERE event_id = 'T2'",
        [{"displaced": 4_294_967_295}],
        60,
    )


def test_2_rows_clickhouse_refuses_are_traced_to_their_message(own: Deployment) -> None:
    own.start_worker()
    own.produce([report("warm")])
    own.wait_for("SELECT count() AS n FROM dampak.field_reports", [{"n": 1}], 60)
    assert own.stop_worker() == 0
    # A constraint added by hand that validation does not know: ClickHouse refuses those rows.
    own.ddl("ALTER TABLE dampak.report_state ADD CONSTRAINT no_x CHECK report_id NOT LIKE 'refuse-%'")
    own.start_worker()
    own.produce([report(f"refuse-{i}") for i in range(3)] + [report(f"fine-{i}") for i in range(5)])
    own.wait_for("SELECT countIf(report_id LIKE 'fine-%') AS n FROM dampak.field_reports", [{"n": 5}], 60)
    letters = wait_letters(own, [f"refuse-{i}" for i in range(3)])
    assert set(letters.values()) == {"ClickHouse refused its report_state row (code 469)"}
    assert own.stop_worker() == 0


def test_3_a_dead_letter_too_large_for_its_topic_is_cut_to_fit(shared: Deployment) -> None:
    doc = {
        "report_id": "T3-big",
        "reported_at": "2022-11-21T09:00:00Z",
        "village_code": VILLAGE,
        "notes": "x" * 1_000_000,
    }
    shared.produce(
        [("field-reports", b"T3-big", json.dumps(doc).encode()), report("T3-after", event_id="T3")]
    )
    assert "notes" in wait_letters(shared, ["T3-big"])["T3-big"]
    shared.wait_for("SELECT count() AS n FROM dampak.field_reports WHERE event_id = 'T3'", [{"n": 1}], 60)
    consumer = KafkaConsumer(
        shared.topic("field-reports-dlq"),
        bootstrap_servers=shared.settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        max_partition_fetch_bytes=2 * 1024 * 1024,
    )
    [big] = [m for m in consumer if m.key == b"T3-big"]
    consumer.close()
    headers = dict(big.headers)
    assert int(headers["dlq.truncated_from"]) == len(json.dumps(doc)) and len(big.value) < 1_000_000


# ------------------------------------------------------------------ 4
def test_4_figures_do_not_depend_on_how_the_publisher_partitioned(own: Deployment) -> None:
    sc = generate(seed=14, n_households=2_000, n_reports=4_000)
    messages = sc.interleaved(random.Random(4))
    rng = random.Random(8)
    # A fifth of the households come without a key: their id decides.
    messages = [
        (t, None if t == "households" and v is not None and rng.random() < 0.2 else k, v)
        for t, k, v in messages
    ]
    own.start_worker()
    own.produce(messages, partitions=random.Random(9))  # random explicit partitions, as kcat may
    expected = expected_impact_village(sc)
    own.wait_for(
        f"SELECT {FIGURES} FROM dampak.impact_village ORDER BY event_id, village_code", expected, 300
    )
    candidates = own.query(
        "SELECT event_id, household_ref, reason FROM dampak.registry_candidates "
        "ORDER BY event_id, household_ref"
    )
    want = sorted((e, ref("household_id", h), reason) for e, h, reason, _ in expected_candidates(sc))
    assert sorted((r["event_id"], r["household_ref"], r["reason"]) for r in candidates) == want
    assert own.stop_worker() == 0


# ------------------------------------------------------------------ 5, 6
def test_5_a_correction_that_moves_a_report_to_another_household_stands(shared: Deployment) -> None:
    shared.produce([household("T5-A", desil=2), household("T5-B", desil=9)])
    shared.produce([report("T5-r", event_id="T5", household_id="T5-A", houses_heavy=1, displaced=3)])
    sql = "SELECT household_ref, displaced FROM dampak.field_reports WHERE report_id = 'T5-r'"
    shared.wait_for(sql, [{"household_ref": ref("household_id", "T5-A"), "displaced": 3}], 60)
    # The same revision, corrected: it is about household B.
    shared.produce([report("T5-r", event_id="T5", household_id="T5-B", houses_heavy=1, displaced=4)])
    shared.wait_for(sql, [{"household_ref": ref("household_id", "T5-B"), "displaced": 4}], 60)
    # Household A changes later: the older copy does not come back.
    shared.produce([household("T5-A", desil=1, updated_at="2022-11-09T00:00:00Z")])
    shared.wait_for(
        "SELECT desil FROM dampak.registry_state FINAL WHERE household_ref = {h:String}",
        [{"desil": 1}],
        60,
        h=ref("household_id", "T5-A"),
    )
    time.sleep(2)
    assert shared.query(sql) == [{"household_ref": ref("household_id", "T5-B"), "displaced": 4}]
    assert shared.query(
        "SELECT household_ref, reason FROM dampak.registry_candidates WHERE event_id = 'T5'"
    ) == [{"household_ref": ref("household_id", "T5-B"), "reason": "above_desil_5"}]


def test_6_a_household_reported_twice_in_one_event_counts_once(shared: Deployment) -> None:
    shared.produce([household("T6-H", desil=8, members=5, elderly=1)])
    shared.produce(
        [
            report(
                "T6-a", event_id="T6", household_id="T6-H", reported_at="2022-11-21T09:00:00Z", houses_light=1
            ),
            report(
                "T6-b",
                event_id="T6",
                household_id="T6-H",
                reported_at="2022-11-21T12:00:00Z",
                houses_heavy=1,
                displaced=5,
                village_code=OTHER_VILLAGE,
            ),
        ]
    )
    shared.wait_for(
        "SELECT village_code, reports, households_affected, houses_light, houses_heavy, displaced, "
        "vulnerable_persons_affected FROM dampak.impact_village WHERE event_id = 'T6'",
        [
            {
                "village_code": OTHER_VILLAGE,
                "reports": 2,
                "households_affected": 1,
                "houses_light": 0,
                "houses_heavy": 1,
                "displaced": 5,
                "vulnerable_persons_affected": 1,
            }
        ],
        60,
    )
    assert shared.query(
        "SELECT households_affected, displaced FROM dampak.impact_province WHERE event_id = 'T6'"
    ) == [{"households_affected": 1, "displaced": 5}]
    assert shared.query(
        "SELECT village_code, heavy_damage, displacement FROM dampak.registry_candidates "
        "WHERE event_id = 'T6'"
    ) == [{"village_code": OTHER_VILLAGE, "heavy_damage": True, "displacement": True}]


# ------------------------------------------------------------------ 8
def test_8_key_rotation_keeps_every_figure_and_leaves_no_old_pseudonym(own: Deployment) -> None:
    sc = generate(seed=15, n_households=1_000, n_reports=3_000)
    bad_households = [household(f"T8-BAD-{i}", desil=11) for i in range(5)]
    own.start_worker()
    own.produce(sc.interleaved(random.Random(5)) + bad_households)
    figures = f"SELECT {FIGURES} FROM dampak.impact_village ORDER BY event_id, village_code"
    own.wait_for(figures, expected_impact_village(sc), 300)
    wait_letters(own, [ref("household_id", f"T8-BAD-{i}") for i in range(5)])
    snapshot = {
        sql: own.query(sql)
        for sql in (
            figures,
            # Centroids are float averages, summed in storage order: compared to 1e-9 degrees.
            "SELECT * EXCEPT (lat, lon), round(lat, 9) AS lat, round(lon, 9) AS lon "
            "FROM dampak.village_stats ORDER BY village_code",
            "SELECT event_id, reason, desil, count() AS n FROM dampak.registry_candidates "
            "GROUP BY event_id, reason, desil ORDER BY ALL",
            "SELECT topic, partition, offset, reason FROM dampak.dead_letters ORDER BY ALL",
        )
    }
    assert own.stop_worker() == 0
    new_key = "a-new-secret-from-the-vault"
    own.env |= {"DAMPAK_PRIVACY__HMAC_KEY": new_key, "DAMPAK_PRIVACY__KEY_ID": "k2"}
    # A worker with the new key refuses to start until the pseudonyms are rotated.
    refused = own.dampak("worker", check=False)
    assert refused.returncode == 2 and "dampak rotate-key" in refused.stderr
    rotated = own.dampak("rotate-key")
    assert "pseudonyms now use key 'k2'" in rotated.stdout
    own.worker = None
    own.start_worker()
    for sql, before in snapshot.items():
        own.wait_for(sql, before, 60)
    # (The incident-scoped views hold the rows of these, per incident.)
    for view in set(ANALYST_OBJECTS) - PARAMETERIZED_VIEWS:
        [row] = own.query(
            "SELECT countIf(position(toString(tuple(*)), 'k1:') > 0) AS old FROM dampak.{v:Identifier}",
            v=view,
        )
        assert row["old"] == 0, view
    candidates = {
        r["household_ref"] for r in own.query("SELECT household_ref FROM dampak.registry_candidates")
    }
    want = {ref("household_id", h, new_key.encode(), "k2") for _, h, _, _ in expected_candidates(sc)}
    assert candidates == want
    letters = {r["key_ref"] for r in own.query("SELECT key_ref FROM dampak.dead_letters")}
    assert {ref("household_id", f"T8-BAD-{i}", new_key.encode(), "k2") for i in range(5)} <= letters
    assert own.stop_worker() == 0
    from tests.integration.test_field_reports_exact import _assert_no_personal_data

    _assert_no_personal_data(own)


# ------------------------------------------------------------------ 9, 10
def test_9_an_event_id_with_a_quote_is_notified_once(shared: Deployment) -> None:
    event = "T9 'quoted' event"
    shared.produce([report(f"T9-{i}", event_id=event, displaced=300) for i in range(2)])
    sql = "SELECT count() AS n FROM dampak.notifications WHERE event_id = {e:String}"
    shared.wait_for(sql, [{"n": 1}], 60, e=event)
    time.sleep(4)  # four more checks
    assert shared.query(sql, e=event) == [{"n": 1}]
    consumer = KafkaConsumer(
        shared.topic("impact-notifications"),
        bootstrap_servers=shared.settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    sent = [m for m in consumer if json.loads(m.value)["event_id"] == event]
    consumer.close()
    assert len(sent) == 1


def test_10_impossible_region_codes_are_dead_lettered(shared: Deployment) -> None:
    shared.produce(
        [
            report("T10-a", event_id="T10", village_code="99.99.99.1999", displaced=1),
            report("T10-b", event_id="T10", village_code="\uff13\uff12.03.01.2001", displaced=1),
            household("T10-H", village_code="99.99.99.1999"),
        ]
    )
    letters = wait_letters(shared, ["T10-a", "T10-b", ref("household_id", "T10-H")])
    assert letters["T10-a"] == "village_code: Value error, unknown village_code"
    assert "String should match pattern" in letters["T10-b"]
    assert shared.query("SELECT count() AS n FROM dampak.impact_province WHERE province_code = '99'") == [
        {"n": 0}
    ]


# ------------------------------------------------------------------ 11, 12
def test_11_hundreds_of_long_reports_for_one_household_are_all_kept(shared: Deployment) -> None:
    shared.produce([household("T11-H", desil=3)])
    notes = "catatan lapangan " * 230  # about 3,900 characters each
    shared.produce(
        report(f"T11-{i}", event_id=f"T11-{i}", household_id="T11-H", houses_light=1, notes=notes)
        for i in range(300)
    )
    sql = (
        "SELECT count() AS n, countIf(desil = {d:UInt8}) AS current FROM dampak.field_reports "
        "WHERE household_ref = {h:String}"
    )
    shared.wait_for(sql, [{"n": 300, "current": 300}], 90, h=ref("household_id", "T11-H"), d=3)
    # A registry change re-enriches every one of them.
    shared.produce([household("T11-H", desil=6, updated_at="2022-11-02T00:00:00Z")])
    shared.wait_for(sql, [{"n": 300, "current": 300}], 90, h=ref("household_id", "T11-H"), d=6)


def test_12_personal_data_never_reaches_dead_letters_or_logs(shared: Deployment) -> None:
    secrets = [
        "HHSECRET12",
        "3203010101801234",
        "3203 0101 0180 5678",
        "3203.0101.0180.9999",
        "3203010101809876",
        "320301010180111",
    ]
    nested = {
        "report_id": "T12-n",
        "reported_at": "2022-11-21T09:00:00Z",
        "village_code": "nope",
        "meta": {"NIK_HEAD": "3203010101801234"},
        "notes": "kk 3203 0101 0180 5678 dan 3203.0101.0180.9999",
    }
    bulletin = json.loads(
        (ROOT / "tests/fixtures/disaster-alerts/bmkg-autogempa-cianjur-2022.json").read_text()
    )
    bulletin["Infogempa"]["gempa"]["Dirasakan"] = "3203010101809876 Cianjur"
    shared.produce(
        [
            ("field-reports", b"T12-t", b'{"report_id":"T12-t","household_id":"HHSECRET12'),
            ("field-reports", b"T12-n", json.dumps(nested).encode()),
            ("disaster-alerts", b"T12-a", json.dumps(bulletin).encode()),
            household("T12-H", nik_head="320301010180111X"),
        ]
    )
    wait_letters(shared, ["T12-t", "T12-n", "T12-a", ref("household_id", "T12-H")])
    rows = shared.query(
        "SELECT reason, payload FROM dampak.dead_letters WHERE key_ref IN {k:Array(String)}",
        k=[ref("household_id", k) for k in ("T12-t", "T12-n", "T12-a", "T12-H")],
    )
    text = json.dumps(rows) + shared.log.read_text(errors="replace")
    assert not [s for s in secrets if s in text]

"""Acceptance of the field-report flow on the real broker and chDB: exact figures under replay,
revisions, retractions, shuffled arrival, registry churn, worker crashes and malformed input."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from typing import Any

import pytest

from tests.integration.harness import Deployment
from tests.integration.scenario import (
    expected_candidates,
    expected_impact_village,
    generate,
    malformed_messages,
)
from tests.integration.scoped import assert_scoped_views_exact

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

FIGURES = (
    "event_id, village_code, reports, households_affected, houses_light, houses_moderate, houses_heavy, "
    "displaced, dead, injured, missing, kpm_households_affected, vulnerable_persons_affected, "
    "unregistered_households_affected"
)
IMPACT_SQL = f"SELECT {FIGURES} FROM dampak.impact_village ORDER BY event_id, village_code"


def _ref(household_id: str) -> str:
    # Independent of the pipeline: the documented pseudonym, HMAC-SHA256 with the default key.
    key = b"dampak-development-key-change-me"
    return "k1:" + hmac.new(key, f"household_id:{household_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _impact_rows(dep: Deployment, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = dep.wait_for(IMPACT_SQL, expected, timeout_s=300)
    return [{k: (int(v) if isinstance(v, int) else v) for k, v in r.items()} for r in rows]


def _check_candidates(dep: Deployment, sc: Any) -> None:
    expected = [(e, _ref(h), reason, desil) for e, h, reason, desil in expected_candidates(sc)]
    rows = dep.query(
        "SELECT event_id, household_ref, reason, desil FROM dampak.registry_candidates "
        "ORDER BY event_id, household_ref LIMIT 100000"
    )
    got = sorted((r["event_id"], r["household_ref"], r["reason"], r["desil"]) for r in rows)
    assert got == sorted(expected)


def _run_scenario(dep: Deployment, n_households: int, n_reports: int, kills: int) -> None:
    sc = generate(seed=11, n_households=n_households, n_reports=n_reports)
    messages = sc.interleaved(random.Random(3))
    expected = expected_impact_village(sc)
    dep.start_worker()
    if kills:
        rng = random.Random(5)
        cut_points = sorted(rng.sample(range(len(messages) // 10, len(messages)), kills))
        start = 0
        for cut in cut_points:
            dep.produce(messages[start:cut])
            start = cut
            time.sleep(rng.uniform(1.0, 4.0))  # let it get some way through, then kill it mid-batch
            dep.kill_worker()
            dep.start_worker()
        dep.produce(messages[start:])
    else:
        dep.produce(messages)
    rows = _impact_rows(dep, expected)
    assert len(rows) == len(expected)
    assert rows == expected
    _check_candidates(dep, sc)
    # The page's incident-scoped views give each incident's rows of the views checked above; the
    # incidents with the most reports, and 'unassigned' (untagged reports placed nowhere).
    busiest = dep.query(
        "SELECT incident_id, count() AS n FROM dampak.field_reports "
        "GROUP BY incident_id ORDER BY n DESC LIMIT 3"
    )
    assert assert_scoped_views_exact(dep, [r["incident_id"] for r in busiest] + ["unassigned"]) > 0


@pytest.mark.slow
def test_impact_is_exact_under_revisions_retractions_and_registry_churn(deployment: Deployment) -> None:
    _run_scenario(deployment, n_households=20_000, n_reports=100_000, kills=0)
    _assert_no_personal_data(deployment)


@pytest.mark.slow
def test_impact_is_exact_when_the_worker_is_killed_three_times(deployment: Deployment) -> None:
    _run_scenario(deployment, n_households=10_000, n_reports=25_000, kills=3)


def test_malformed_messages_are_dead_lettered_and_valid_figures_unaffected(deployment: Deployment) -> None:
    sc = generate(seed=12, n_households=500, n_reports=2_000)
    bad = malformed_messages(500)
    mixed = (
        sc.households
        + [m for pair in zip(sc.reports, bad, strict=False) for m in pair]
        + sc.reports[len(bad) :]
    )
    deployment.start_worker()
    deployment.produce(mixed)
    rows = _impact_rows(deployment, expected_impact_village(sc))
    assert rows == expected_impact_village(sc)
    letters = deployment.wait_for(
        "SELECT count() AS n, countIf(reason = '') AS no_reason FROM dampak.dead_letters",
        [{"n": 500, "no_reason": 0}],
    )
    assert letters == [{"n": 500, "no_reason": 0}]
    reasons = deployment.query("SELECT topic, reason FROM dampak.dead_letters LIMIT 1000")
    text = json.dumps(reasons)
    for expected_reason in (
        "Invalid JSON",
        "village_code",
        "greater than or equal to 0",
        "covers one house",
        "Field required",
        "reporter_role",
        "nik_head",
        "desil",
    ):
        assert expected_reason in text, expected_reason
    # The dead-letter topics carry the raw messages too.
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        deployment.topic("field-reports-dlq"),
        deployment.topic("households-dlq"),
        bootstrap_servers=deployment.settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    dlq = list(consumer)
    consumer.close()
    assert len(dlq) >= 500
    assert all(dict(m.headers).get("dlq.reason") for m in dlq)
    assert deployment.stop_worker() == 0
    _assert_no_personal_data(deployment)


def _assert_no_personal_data(dep: Deployment) -> None:
    """Scan every column of every table for raw NIKs, KK numbers and household ids."""
    tables = dep.query(
        "SELECT name FROM system.tables WHERE database = 'dampak' AND engine LIKE '%MergeTree%'"
    )
    patterns = ["HH11-", "HH12-", "UNREG11-", "UNREG12-", "HBAD", "HHX"]
    checks = ", ".join(
        f"countIf(position(toString(tuple(*)), {{p{i}:String}}) > 0) AS p{i}" for i in range(len(patterns))
    )
    for t in tables:
        name = t["name"]
        if name in ("regions", "schema_migrations"):
            continue
        row = dep.query(
            "SELECT countIf(match(toString(tuple(*)), '[^0-9a-f:]\\\\d{16}[^0-9a-f]')) AS nik, "
            + checks
            + " FROM dampak.{table:Identifier}",
            table=name,
            **{f"p{i}": p for i, p in enumerate(patterns)},
        )[0]
        assert all(v == 0 for v in row.values()), (name, row)

"""One error policy over the whole path of a message (issue 27), on the real broker and chDB:
hostile raw lines on ``field-reports`` are dead-lettered with their reasons, and a valid report
published right after them lands within seconds (before, the three input topics stalled for
good)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import _ports
from tests.integration.harness import Deployment
from tests.integration.test_robustness import ref

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HOSTILE = {
    "P27-open-brackets": b"[" * 700,
    "P27-closed-brackets": b"[" * 700 + b"]" * 700,
    "P27-open-objects": b'{"a":' * 700,
    "P27-digits": b"9" * 5000,
}


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(uuid.uuid4().hex[:10], tmp_path / "data", next(_ports))
    dep.start_worker()
    yield dep
    alive = dep.worker is not None and dep.worker.poll() is None
    if alive:
        dep.stop_worker()
    assert alive, "the worker died: " + dep.log_tail()
    dep.delete_topics()


def test_hostile_reports_are_dead_lettered_and_the_next_report_lands_within_seconds(
    worker: Deployment,
) -> None:
    valid = {
        "report_id": "P27-valid",
        "reported_at": "2022-11-21T09:00:00Z",
        "village_code": "32.03.01.2001",
        "displaced": 3,
    }
    worker.produce([("field-reports", key.encode(), value) for key, value in HOSTILE.items()])
    published = time.monotonic()
    worker.produce([("field-reports", b"P27-valid", json.dumps(valid).encode())])
    worker.wait_for(
        "SELECT report_id, displaced FROM dampak.field_reports WHERE report_id = 'P27-valid'",
        [{"report_id": "P27-valid", "displaced": 3}],
        timeout_s=30,
    )
    took = time.monotonic() - published
    assert took < 30, took
    # Every hostile line is in dead_letters with the boundary's reason, its payload redacted or
    # kept (brackets and digits hold nothing personal, but the digit run is masked).
    keys = {ref("household_id", k): k for k in HOSTILE} | {k: k for k in HOSTILE}
    rows = worker.query(
        "SELECT key_ref, reason, payload_bytes, payload FROM dampak.dead_letters "
        "WHERE topic = {t:String} AND key_ref IN {keys:Array(String)}",
        t=worker.topic("field-reports"),
        keys=list(keys),
    )
    letters = {keys[r["key_ref"]]: r for r in rows}
    assert set(letters) == set(HOSTILE), rows
    nested = "JSON nested deeper than 32 levels"
    assert {k: r["reason"] for k, r in letters.items() if k != "P27-digits"} == dict.fromkeys(
        ("P27-open-brackets", "P27-closed-brackets", "P27-open-objects"), nested
    )
    assert letters["P27-digits"]["reason"] and "internal error" not in letters["P27-digits"]["reason"]
    assert {k: r["payload_bytes"] for k, r in letters.items()} == {k: len(v) for k, v in HOSTILE.items()}
    assert "9999999999" not in letters["P27-digits"]["payload"]
    assert "Traceback" not in worker.log.read_text(errors="replace"), worker.log_tail(80)

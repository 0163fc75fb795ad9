"""Personal data on the write path (issue 27, case 9): what reaches ClickHouse's rows holds no NIK,
KK number or household id in clear, whether it comes as a message key or in a field."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from streams.engine import Outcome
from streams.features.field_reports import route_report
from streams.features.households import route_household
from streams.settings import DEVELOPMENT_KEY
from tests.unit.fakes import message, run
from tests.unit.streams.features.test_features import Pipeline

NIK = "3203010101800001"


def ref(kind: str, value: str) -> str:
    """The documented pseudonym (README, Personal data), computed independently."""
    digest = hmac.new(DEVELOPMENT_KEY.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return "k1:" + digest[:32]


def _report(rid: str, **kw: Any) -> bytes:
    doc = {"report_id": rid, "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001", **kw}
    return json.dumps(doc).encode()


def test_every_dead_letter_key_is_stored_as_its_pseudonym_whatever_the_topic() -> None:
    p = Pipeline()
    reports = [
        message("field-reports", b"not json", NIK.encode(), 0),  # a report keyed by a NIK
        message("field-reports", _report("r1", dead=-1), b"HH-0042", 1),  # keyed by a household id
        message("field-reports", b"{}", None, 2),  # no key
    ]
    outcomes, writer, _ = run(route_report, p.reports, reports)
    households = [message("households", b"[", b"HH-7", 0)]
    h_outcomes, h_writer, _ = run(route_household, p.households, households, personal_key=True)

    assert outcomes == [Outcome.DEAD_LETTER] * 3 and h_outcomes == [Outcome.DEAD_LETTER]
    letters = writer.table("dead_letter_state") + h_writer.table("dead_letter_state")
    assert [r["key_ref"] for r in letters] == [
        ref("household_id", NIK),
        ref("household_id", "HH-0042"),
        "",
        ref("household_id", "HH-7"),
    ]
    stored = repr(letters)
    assert NIK not in stored and "HH-0042" not in stored and "HH-7" not in stored


def test_a_reporter_identified_by_nik_is_masked_like_the_notes() -> None:
    p = Pipeline()
    p.reports_in(
        _report("r1", reporter_id=f"NIK {NIK}", notes=f"reported by {NIK}"),
        _report("r2", reporter_id="3203 0101 0180 0002", household_id="h1"),
        _report("r3", reporter_id="TAGANA-2001"),
    )
    # Every report_state row: village summaries, and the household-level report's enriched row.
    reporters = {(r["report_id"], r["reporter_id"]) for r in p.rows}
    assert reporters == {("r1", "NIK <redacted>"), ("r2", "<redacted>"), ("r3", "TAGANA-2001")}
    assert {r["notes"] for r in p.rows if r["report_id"] == "r1"} == {"reported by <redacted>"}
    assert NIK not in repr(p.rows) and "0180 0002" not in repr(p.rows)

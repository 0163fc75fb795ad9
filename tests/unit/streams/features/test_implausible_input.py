"""Implausible input at the input hop (issue 27, case 11): dead-lettered with its reason, and
nothing of it forwarded, so it never becomes a household, a report or an event of its own."""

from __future__ import annotations

import json
from typing import Any

from streams.engine import Outcome
from streams.features.field_reports import ReportDeps, route_report
from streams.features.households import RegistryDeps, route_household
from tests.unit.fakes import PSEUDO, message, run

ID_REASON = "Value error, an id is printable ASCII only (U+0020 to U+007E)"
DATETIME_REASON = "Value error, a datetime is an ISO 8601 string, e.g. 2022-11-21T08:00:00+07:00"


def _report(**kw: Any) -> bytes:
    doc = {"report_id": "r1", "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001", **kw}
    return json.dumps(doc).encode()


def _household(**kw: Any) -> bytes:
    doc = {"household_id": "h1", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z", **kw}
    return json.dumps(doc).encode()


def test_reports_with_a_spoofed_id_or_a_digit_datetime_are_dead_lettered() -> None:
    deps = ReportDeps({}, {}, {}, PSEUDO)
    msgs = [
        message("field-reports", _report(event_id="bmkg-20221121062110"), None, 0),
        message("field-reports", _report(report_id="r2", event_id="bmkg-20221121062110\u202e"), None, 1),
        message("field-reports", _report(report_id="r3", reported_at="20221121"), None, 2),
        message("field-reports", _report(report_id="r4", household_id="h1\u200b"), None, 3),
    ]
    outcomes, writer, forwarder = run(route_report, deps, msgs)
    assert outcomes == [Outcome.OK] + [Outcome.DEAD_LETTER] * 3
    assert [r["reason"] for r in writer.table("dead_letter_state")] == [
        f"event_id: {ID_REASON}",
        f"reported_at: {DATETIME_REASON}",
        f"household_id: {ID_REASON}",
    ]
    assert [f.key for f in forwarder.on("field-reports-by-id")] == [b"r1"]


def test_implausible_households_and_tombstone_keys_are_dead_lettered() -> None:
    deps = RegistryDeps({}, {}, PSEUDO)
    crowded = _household(members=1, elderly=100, disabled=100, under5=100, pregnant=100)
    msgs = [
        message("households", _household(members=2, elderly=2), b"h1", 0),
        message("households", crowded, b"h1", 1),
        message("households", _household(updated_at="20221121"), b"h1", 2),
        message("households", None, "h1\u202e".encode(), 3),
        message("households", None, b"h1\xff", 4),  # not UTF-8 either
        message("households", None, b"h1", 5),
    ]
    outcomes, writer, forwarder = run(route_household, deps, msgs, personal_key=True)
    assert outcomes == [Outcome.OK] + [Outcome.DEAD_LETTER] * 4 + [Outcome.OK]
    tombstone_reason = "tombstone key is not a household_id (1-128 printable ASCII characters)"
    assert [r["reason"] for r in writer.table("dead_letter_state")] == [
        "message: Value error, more elderly, disabled, under5, pregnant than members",
        f"updated_at: {DATETIME_REASON}",
        tombstone_reason,
        tombstone_reason,
    ]
    assert [(f.key, f.value is None) for f in forwarder.on("households-by-id")] == [
        (b"h1", False),
        (b"h1", True),
    ]

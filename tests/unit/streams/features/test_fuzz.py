"""Property-based fuzzing of every topic's decode-and-handle path (hypothesis): whatever bytes or
JSON-like values arrive, the outcome is handled or dead-lettered (never an exception, never an
"internal error"), and every row the handlers emit fits the declared types of its columns, so
ClickHouse never refuses it."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.tables import TABLES
from streams.domain.hazard import DisplacementRates
from streams.engine import Flow, Forward, Message, Outcome
from streams.features.alerts import AlertDeps, estimate_alert_impact, route_alert
from streams.features.field_reports import ReportDeps, decide_report, enrich_report, route_report
from streams.features.households import RegistryDeps, apply_household_change, route_household
from streams.features.notifications import Notifier
from tests.unit.fakes import BATCHING, FAST, PSEUDO, FakeForwarder, FakeReader, FakeWriter, engine, message

TYPES = {t.name: dict(t.columns) for t in TABLES}
_INT_RANGES = {f"UInt{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)} | {"Int64": (-(2**63), 2**63 - 1)}
_DT_MIN, _DT_MAX = datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, tzinfo=UTC)


def fits(type_: str, value: Any) -> bool:
    """Whether ``value`` can be inserted into a ClickHouse column of ``type_`` (the types used)."""
    type_ = type_.split(" DEFAULT ")[0]
    if m := re.fullmatch(r"(Nullable|LowCardinality|Array)\((.*)\)", type_):
        outer, inner = m.groups()
        if outer == "Nullable":
            return value is None or fits(inner, value)
        if outer == "Array":
            return isinstance(value, list | tuple) and all(fits(inner, v) for v in value)
        return fits(inner, value)
    if type_ == "String":
        return isinstance(value, str)
    if type_ == "Bool":
        return isinstance(value, bool)
    if type_ in _INT_RANGES:
        low, high = _INT_RANGES[type_]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if type_.startswith("Float"):
        return isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)
    if type_.startswith("DateTime64"):
        return isinstance(value, datetime) and value.tzinfo is not None and _DT_MIN <= value <= _DT_MAX
    raise AssertionError(f"no check for {type_}")


def _check(writer: FakeWriter, outcomes: list[Outcome]) -> None:
    assert all(isinstance(o, Outcome) for o in outcomes)
    for table, rows in writer.rows.items():
        for row in rows:
            for column, value in row.items():
                assert fits(TYPES[table][column], value), (table, column, value)
    for row in writer.table("dead_letter_state"):
        assert not row["reason"].startswith("internal error"), row["reason"]


# ------------------------------------------------------------------ strategies
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_like = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_datetimes = st.sampled_from(
    ["2022-11-21T08:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "1800-01-01T00:00:00",
     "2999-01-01T00:00:00Z", "2022-11-21", "kemarin", "2022-11-21T08:00:00+14:00"]
) | json_like  # fmt: skip
_codes = (
    st.sampled_from(["32.03.01.2001", "99.99.99.1999", "\uff13\uff12.03.01.2001", "32.03", "32.03.01"])
    | json_like
)
_counts = st.integers(min_value=-2, max_value=2**65) | st.sampled_from([0, 1, 5, 100, 101, 2**32 - 1, 2**32])
_ids = st.sampled_from(["h1", "h2", "r1", "", "x" * 200]) | json_like


def _doc(fields: dict[str, Any]) -> Any:
    return st.fixed_dictionaries({}, optional=fields)


reports = _doc(
    {
        "report_id": _ids,
        "revision": _counts,
        "retracted": st.booleans() | json_like,
        "event_id": _ids,
        "reported_at": _datetimes,
        "reporter_role": st.sampled_from(["tagana", "police"]),
        "village_code": _codes,
        "household_id": _ids,
        "houses_heavy": _counts,
        "houses_light": _counts,
        "displaced": _counts,
        "dead": _counts,
        "needs": st.lists(st.text(max_size=70), max_size=40) | json_like,
        "lat": st.floats() | json_like,
        "notes": st.text(max_size=50) | json_like,
    }
)
households = _doc(
    {
        "household_id": _ids,
        "village_code": _codes,
        "updated_at": _datetimes,
        "members": _counts,
        "desil": _counts,
        "programs": st.lists(st.sampled_from(["PKH", "BLT"])) | json_like,
        "elderly": _counts,
        "nik_head": st.sampled_from(["3203010101800001", "32030101"]) | json_like,
        "lon": st.floats() | json_like,
    }
)
alerts = _doc(
    {
        "event_id": _ids,
        "hazard": st.sampled_from(["earthquake", "flood", "meteor"]),
        "issued_at": _datetimes,
        "lat": st.floats(-100, 100) | json_like,
        "lon": st.floats() | json_like,
        "magnitude": st.floats() | json_like,
        "depth_km": st.floats() | json_like,
        "revision": _counts,
        "areas": st.lists(
            _doc({"village_code": _codes, "severity": st.sampled_from(["high", "x"])}), max_size=3
        ),
    }
)
bmkg = _doc(
    {
        "DateTime": _datetimes,
        "Tanggal": st.text(max_size=12),
        "Jam": st.text(max_size=12),
        "Coordinates": st.sampled_from(["-6.84,107.05", "x,y", "1,2,3"]) | st.text(max_size=8),
        "Magnitude": st.sampled_from(["5.6", "1e400", "nan"]) | st.text(max_size=5),
        "Kedalaman": st.sampled_from(["10 km", "km"]) | st.text(max_size=5),
        "Dirasakan": st.sampled_from(["III-IV Kota Bengkulu", "XIV Mars", "3203010101800001"])
        | st.text(max_size=9),
    }
).map(lambda g: {"Infogempa": {"gempa": g}})


def _payloads(docs: Any) -> Any:
    encoded = st.one_of(docs, json_like).map(lambda d: json.dumps(d, ensure_ascii=False).encode())
    return st.one_of(encoded, st.binary(max_size=200), st.none())


# ------------------------------------------------------------------ the paths
def _run(
    handler: Any, deps: Any, msgs: list[Message], writer: FakeWriter, forwarder: FakeForwarder
) -> list[Outcome]:
    flow = Flow("fuzz", functools.partial(handler, deps), "dlq", BATCHING)
    return asyncio.run(engine(writer, forwarder).process(flow, msgs))


def _next(forwarder: FakeForwarder, topic: str, seen: int) -> list[Message]:
    sent: list[Forward] = forwarder.on(topic)[seen:]
    return [message(topic, f.value, f.key, seen + i) for i, f in enumerate(sent)]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([None, b"h1", b"r1", b"\xff"]), _payloads(reports)), max_size=6))
def test_field_reports_are_handled_or_dead_lettered(batch: list[tuple[bytes | None, bytes | None]]) -> None:
    deps = ReportDeps({}, {}, {}, PSEUDO)
    writer, forwarder = FakeWriter(), FakeForwarder()
    msgs = [message("field-reports", v, k, i) for i, (k, v) in enumerate(batch)]
    outcomes = _run(route_report, deps, msgs, writer, forwarder)
    outcomes += _run(decide_report, deps, _next(forwarder, "field-reports-by-id", 0), writer, forwarder)
    outcomes += _run(
        enrich_report, deps, _next(forwarder, "field-reports-by-household", 0), writer, forwarder
    )
    _check(writer, outcomes)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([None, b"h1", b"\x00"]), _payloads(households)), max_size=6))
def test_households_are_handled_or_dead_lettered(batch: list[tuple[bytes | None, bytes | None]]) -> None:
    deps = RegistryDeps({}, {}, PSEUDO)
    writer, forwarder = FakeWriter(), FakeForwarder()
    msgs = [message("households", v, k, i) for i, (k, v) in enumerate(batch)]
    outcomes = _run(route_household, deps, msgs, writer, forwarder)
    outcomes += _run(apply_household_change, deps, _next(forwarder, "households-by-id", 0), writer, forwarder)
    _check(writer, outcomes)


_STATS = {
    "village_code": ["32.03.01.2001"],
    "households": [10],
    "persons": [40],
    "kpm_households": [2],
    "vulnerable_persons": [3],
    "pregnant": [1],
    "lat": [-6.84],
    "lon": [107.05],
}


@FUZZ
@given(
    st.lists(st.one_of(_payloads(alerts), _payloads(bmkg), st.text(max_size=80).map(str.encode)), max_size=4)
)
def test_alerts_are_handled_or_dead_lettered(batch: list[bytes | None]) -> None:
    reader, writer, forwarder = FakeReader(_STATS), FakeWriter(), FakeForwarder()
    notifier = Notifier(reader, writer, forwarder, "impact-notifications", FAST)
    deps = AlertDeps(reader, DisplacementRates(), ("yellow",), notifier)
    msgs = [message("disaster-alerts", v, b"e", i) for i, v in enumerate(batch)]
    outcomes = _run(route_alert, deps, msgs, writer, forwarder)
    outcomes += _run(
        estimate_alert_impact, deps, _next(forwarder, "disaster-alerts-by-event", 0), writer, forwarder
    )
    _check(writer, outcomes)


def test_the_column_check_refuses_what_clickhouse_refuses() -> None:
    assert not fits("UInt32", 2**32) and not fits("UInt16", 70_000) and not fits("UInt8", -1)
    assert not fits("Nullable(Float64)", math.inf) and fits("Nullable(Float64)", None)
    assert not fits("DateTime64(3, 'UTC')", datetime(1, 1, 1, tzinfo=UTC))
    assert fits("Array(LowCardinality(String))", ["a"]) and not fits("Array(String)", [1])

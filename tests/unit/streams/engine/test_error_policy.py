"""One error policy over the whole path of a message (issue 27): decoding, boundary limits,
dead-lettering, forwarding and producing, and the safety net, driven through the engine over
fakes. Every test bounds its run: the old engine retried these batches forever."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from sinks.tables import DEAD_LETTER_STATE, REPORT_STATE
from streams.engine import Engine, Flow, Forward, Message, Outcome, Output
from streams.engine.aiokafka.faults import REFUSED_RECORD
from streams.engine.bundle import BUNDLE_HEADER, unpack
from streams.features.field_reports import ReportDeps, route_report
from streams.runtime.handoff import RowProducer, decode_row
from tests.unit.fakes import BATCHING, FAST, FAULTS, PSEUDO, FakeForwarder, FakeWriter, dead_letters, message
from tests.unit.streams.runtime.test_handoff import TABLE as LAG
from tests.unit.streams.runtime.test_handoff import _row as _lag_row

VALID = (
    b'{"report_id": "R-1", "reported_at": "2022-11-21T09:30:00Z", "village_code": "32.03.01.2001", '
    b'"displaced": 4}'
)
HOSTILE = {
    "open brackets": b"[" * 700,
    "closed brackets": b"[" * 700 + b"]" * 700,
    "open objects": b'{"a":' * 700,
    "closed objects": b'{"a":' * 700 + b"1" + b"}" * 700,
    "5,000 digits": b"9" * 5000,
}
LAG_INT = "partition"
YEAR_10000 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() + 1


def _process(engine: Engine, flow: Flow, messages: list[Message], timeout_s: float = 10) -> list[Outcome]:
    return asyncio.run(asyncio.wait_for(engine.handle(flow, messages), timeout_s)) or []


def _engine(writer: FakeWriter, forwarder: Any, bundled: dict[str, int] | None = None) -> Engine:
    return Engine(writer, forwarder, dead_letters(), FAST, bundled=bundled, faults=FAULTS)


def _reports(boundary: bool) -> Flow:
    """The field-reports routing as the worker runs it (``boundary=True``), or on a flow of its
    own without the boundary limits (the rest of the path must hold by itself)."""
    deps = ReportDeps({}, {}, {}, PSEUDO)
    handler = functools.partial(route_report, deps)
    if boundary:
        return Flow("route_reports", handler, "field-reports-dlq", BATCHING, boundary=True)
    return Flow("route_reports", handler, "field-reports-dlq", BATCHING)


def _letters(writer: FakeWriter) -> dict[int, str]:
    return {r["offset"]: r["reason"] for r in writer.table(DEAD_LETTER_STATE.name)}


# ------------------------------------------------------------------ case 1
def test_deeply_nested_reports_are_dead_lettered_and_the_next_report_goes_on() -> None:
    """Case 1: validation rejected ``[[[…]]]`` 700 deep, and its dead-lettering then raised
    RecursionError in the redaction, outside the handler's try: the batch was retried forever.
    Even on a flow without the boundary limits (the redaction must hold by itself)."""
    writer, forwarder = FakeWriter(), FakeForwarder()
    values = [*HOSTILE.values(), VALID]
    messages = [message("field-reports", v, offset=i) for i, v in enumerate(values)]
    outcomes = _process(_engine(writer, forwarder), _reports(boundary=False), messages)
    assert outcomes == [Outcome.DEAD_LETTER] * len(HOSTILE) + [Outcome.OK]
    assert [f.key for f in forwarder.on("field-reports-by-id")] == [b"R-1"]
    assert sorted(_letters(writer)) == list(range(len(HOSTILE)))
    assert len(forwarder.on("field-reports-dlq")) == len(HOSTILE)


def test_input_messages_over_the_boundary_limits_are_dead_lettered_with_the_limit() -> None:
    """The boundary limits of an input flow: nesting depth and message bytes, named in the
    reason; a JSON document 32 deep still reaches its handler."""
    writer, forwarder = FakeWriter(), FakeForwarder()
    values = [*HOSTILE.values(), b"[" * 32 + b"]" * 32, b" " * (1 << 20) + VALID, VALID]
    messages = [message("field-reports", v, offset=i) for i, v in enumerate(values)]
    outcomes = _process(_engine(writer, forwarder), _reports(boundary=True), messages)
    assert outcomes == [Outcome.DEAD_LETTER] * (len(HOSTILE) + 2) + [Outcome.OK]
    reasons = _letters(writer)
    for offset in (0, 1, 2, 3):
        assert reasons[offset] == "JSON nested deeper than 32 levels"
    assert "JSON" in reasons[4]  # not nested: the contract's own reason
    assert "recursion" not in reasons[5] and "nested deeper" not in reasons[5]  # 32 deep passes the limit
    assert reasons[6] == f"message of {(1 << 20) + len(VALID)} bytes is over the limit of {1 << 20}"
    assert [f.key for f in forwarder.on("field-reports-by-id")] == [b"R-1"]


# ------------------------------------------------------------------ case 11
def test_a_kafka_timestamp_at_year_10000_on_a_dead_letter_is_stored_as_unknown() -> None:
    """Case 11: a dead letter's row converted the Kafka timestamp with ``fromtimestamp``, which
    raised ValueError at year 10000, on the same path as case 1 (the batch retried forever)."""
    writer, forwarder = FakeWriter(), FakeForwarder()
    far = Message("field-reports", 0, 0, None, b"not json", YEAR_10000)
    ok = Message("field-reports", 0, 1, None, VALID, datetime.now(UTC).timestamp())
    outcomes = _process(_engine(writer, forwarder), _reports(boundary=False), [far, ok])
    assert outcomes == [Outcome.DEAD_LETTER, Outcome.OK]
    [row] = writer.table(DEAD_LETTER_STATE.name)
    assert row["offset"] == 0 and row["message_timestamp"] == datetime.fromtimestamp(0, UTC)
    assert [f.key for f in forwarder.on("field-reports-by-id")] == [b"R-1"]


def test_input_messages_with_a_kafka_timestamp_out_of_range_are_dead_lettered() -> None:
    """Kafka timestamps are bounded like the contracts' datetimes: a valid report published at
    year 10000, or three days ahead, is refused with the range; one published now passes."""
    writer, forwarder = FakeWriter(), FakeForwarder()
    now = datetime.now(UTC).timestamp()
    stamps = [YEAR_10000, now + 3 * 86400, float("nan"), now]
    messages = [Message("field-reports", 0, i, None, VALID, ts) for i, ts in enumerate(stamps)]
    outcomes = _process(_engine(writer, forwarder), _reports(boundary=True), messages)
    assert outcomes == [Outcome.DEAD_LETTER] * 3 + [Outcome.OK]
    reason = "Kafka timestamp out of range (1900-01-01 to now + 86400 s)"
    assert _letters(writer) == {0: reason, 1: reason, 2: reason}


# ------------------------------------------------------------------ case 2
class SizedForwarder(FakeForwarder):
    """Refuses a record over ``limit`` bytes the way aiokafka and the broker do (a
    ``MessageSizeTooLargeError`` for that record; the others of the request go through), and
    classifies it as the aiokafka back-end does."""

    refused_record = REFUSED_RECORD

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.refused: list[Forward] = []

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]:
        self.attempts += 1
        out: list[BaseException | None] = []
        for f in forwards:
            if len(f.value or b"") + len(f.key or b"") > self.limit:
                self.refused.append(f)
                out.append(MessageSizeTooLargeError("too large"))
            else:
                self.delivered.append(f)
                out.append(None)
        return out


def _forwarding(sizes: dict[bytes, int], msg: Message, out: Output) -> Outcome:
    """Forwards ``sizes[value]`` bytes for a message; writes a row of it."""
    out.add(REPORT_STATE, {"n": msg.offset})
    out.forward("by-id", msg.value, b"x" * sizes[msg.value or b""])
    return Outcome.OK


def test_a_forward_larger_than_the_producer_takes_dead_letters_its_message() -> None:
    """Case 2: a 1.2 MB forward was refused by aiokafka, and the refusal retried forever in the
    shared input loop. It dead-letters its message now, and the batch goes on."""
    writer, forwarder = FakeWriter(), SizedForwarder(1_000_000)
    flow = Flow("route", functools.partial(_forwarding, {b"big": 1_200_000, b"ok": 100}), "dlq", BATCHING)
    messages = [message("in", v, offset=i) for i, v in enumerate([b"ok", b"big", b"ok"])]
    outcomes = _process(_engine(writer, forwarder), flow, messages)
    assert outcomes == [Outcome.OK, Outcome.DEAD_LETTER, Outcome.OK]
    assert _letters(writer) == {
        1: "forward to by-id of 1200131 bytes is over the producer's limit of 1000000"
    }
    assert [r["n"] for r in writer.table(REPORT_STATE.name)] == [0, 2]  # its row is not written
    assert [len(f.value or b"") for f in forwarder.on("by-id")] == [100, 100]
    assert forwarder.refused == []  # never even sent


def test_a_record_the_broker_refuses_dead_letters_the_message_it_came_from_in_a_bundle() -> None:
    """A broker whose topic takes less than the producer (``max.message.bytes``) refuses the
    bundle that holds the message: the bundle is split to find it, the others are delivered in
    order, and only that message is dead-lettered (its row not written)."""
    writer, forwarder = FakeWriter(), SizedForwarder(100_000)
    sizes = {b"a": 40_000, b"b": 40_000, b"big": 150_000, b"c": 40_000}
    flow = Flow("route", functools.partial(_forwarding, sizes), "dlq", BATCHING)
    messages = [message("in", v, offset=i) for i, v in enumerate([b"a", b"b", b"big", b"c"])]
    # One key per message and one partition: every forward goes in one bundle of 270 KB.
    outcomes = _process(_engine(writer, forwarder, bundled={"by-id": 1}), flow, messages)
    assert outcomes == [Outcome.OK, Outcome.OK, Outcome.DEAD_LETTER, Outcome.OK]
    assert _letters(writer) == {2: "Kafka refused its record to by-id (MessageSizeTooLargeError)"}
    assert [r["n"] for r in writer.table(REPORT_STATE.name)] == [0, 1, 3]
    delivered = [key for f in forwarder.on("by-id") for key, _, _ in unpack(f.value or b"")]
    assert delivered == [b"a", b"b", b"c"]
    assert all(f.headers == (BUNDLE_HEADER,) for f in forwarder.on("by-id"))


def test_a_dead_letter_the_broker_refuses_is_sent_without_its_value() -> None:
    """A dead-letter topic that takes less than the dead letter: sent again with its headers
    only (the source offset holds the value), never retried forever."""
    writer, forwarder = FakeWriter(), SizedForwarder(10_000)
    flow = Flow("route", functools.partial(_forwarding, {}), "dlq", BATCHING)  # KeyError: dead-lettered
    outcomes = _process(_engine(writer, forwarder), flow, [message("in", b"y" * 50_000)])
    assert outcomes == [Outcome.DEAD_LETTER]
    [letter] = forwarder.on("dlq")
    assert letter.value is None
    assert dict(letter.headers)["dlq.truncated_from"] == b"50000"
    assert dict(letter.headers)["dlq.reason"] == b"internal error: KeyError"


# ------------------------------------------------------------------ the safety net
def test_a_batch_that_keeps_failing_is_halved_to_its_message_which_is_dead_lettered() -> None:
    """A fault no rule foresees (here a hook that fails for one message) fails the whole batch:
    after a few tries it is halved until the message is found and dead-lettered; every other
    message is written, in order."""

    def handler(msg: Message, out: Output) -> Outcome:
        out.add(REPORT_STATE, {"n": msg.offset})
        out.forward("by-id", msg.key, msg.value)
        if msg.value == b"poison":

            async def hook() -> None:
                raise ValueError("a bug in a hook")

            out.then(hook)
        return Outcome.OK

    writer, forwarder = FakeWriter(), FakeForwarder()
    values = [b"ok"] * 5 + [b"poison"] + [b"ok"] * 4
    messages = [message("in", v, offset=i) for i, v in enumerate(values)]
    outcomes = _process(_engine(writer, forwarder), Flow("route", handler, "dlq", BATCHING), messages)
    assert outcomes == [Outcome.OK] * 5 + [Outcome.DEAD_LETTER] + [Outcome.OK] * 4
    assert _letters(writer) == {5: "internal error: ValueError"}
    assert sorted({r["n"] for r in writer.table(REPORT_STATE.name)}) == list(range(10))
    assert [f.topic for f in forwarder.on("dlq")] == ["dlq"]


def test_infrastructure_faults_are_retried_in_place_not_bisected() -> None:
    """A handler that meets ClickHouse or Kafka unavailable ten times in a row has its batch
    handled again until they are back: nothing is halved or dead-lettered."""
    faults = iter(range(10))

    def handler(msg: Message, out: Output) -> Outcome:
        if next(faults, None) is not None:
            raise ConnectionRefusedError("broker gone")
        out.add(REPORT_STATE, {"n": msg.offset})
        return Outcome.OK

    writer = FakeWriter()
    messages = [message("in", b"ok", offset=i) for i in range(4)]
    assert (
        _process(_engine(writer, FakeForwarder()), Flow("route", handler, "dlq", BATCHING), messages)
        == [Outcome.OK] * 4
    )
    assert _letters(writer) == {}
    assert [r["n"] for r in writer.table(REPORT_STATE.name)] == [0, 1, 2, 3]


def test_a_row_too_large_to_hand_over_to_the_writer_dead_letters_its_message() -> None:
    """A compute worker hands its rows to ``sink-rows``: a row record Kafka refuses is traced to
    its message like a row ClickHouse refuses, instead of being retried forever."""
    forwarder = SizedForwarder(50_000)
    rows = RowProducer(forwarder, "sink-rows", FAST, partitions=1)

    def handler(msg: Message, out: Output) -> Outcome:
        row = _lag_row(msg.offset)
        row["status"] = "x" * len(msg.value or b"")
        out.add(LAG, row)
        return Outcome.OK

    values = [b"ok", b"big" * 30_000, b"ok"]
    messages = [message("in", v, offset=i) for i, v in enumerate(values)]
    engine = Engine(rows, forwarder, dead_letters(), FAST, faults=FAULTS)
    outcomes = _process(engine, Flow("route", handler, "dlq", BATCHING), messages)
    assert outcomes == [Outcome.OK, Outcome.DEAD_LETTER, Outcome.OK]
    handed = [decode_row(v) for f in forwarder.on("sink-rows") for _, v, _ in unpack(f.value or b"")]
    assert sorted(row["offset"] for table, row in handed if table is DEAD_LETTER_STATE) == [1]
    assert sorted(row[LAG_INT] for table, row in handed if table is LAG) == [0, 2]

"""The engine's loop and error policy over fakes: order of operations, dead-lettering, retries."""

from __future__ import annotations

import asyncio
from typing import Any

from sinks.tables import DEAD_LETTER_STATE, REPORT_STATE
from streams.engine import Engine, Flow, Message, Outcome, Output
from streams.errors import InvalidMessage
from tests.unit.fakes import (
    BATCHING,
    FAST,
    FAULTS,
    FakeForwarder,
    FakeUnavailable,
    FakeUndecodable,
    FakeWriter,
    dead_letters,
    engine,
    message,
)


def _row(n: int) -> dict[str, Any]:
    return {"n": n}


def _handler(msg: Message, out: Output) -> Outcome:
    value = msg.value or b""
    out.add(REPORT_STATE, _row(int(value) if value.isdigit() else -1))  # added, then maybe rolled back
    if value.startswith(b"bad"):
        raise InvalidMessage("n: not a number")
    if value.startswith(b"boom"):
        raise KeyError("HH-secret-id")
    out.forward("forwarded", msg.key, msg.value)
    return Outcome.OK


def _messages(*values: bytes) -> list[Message]:
    return [message("in", v, key=f"k{i}".encode(), offset=i) for i, v in enumerate(values)]


def test_a_batch_is_forwarded_then_written_then_hooked() -> None:
    order: list[str] = []
    writer, forwarder = FakeWriter(), FakeForwarder()

    async def hook() -> None:
        order.append(f"hook after {len(writer.table('report_state'))} rows")

    def handler(msg: Message, out: Output) -> Outcome:
        out.add(REPORT_STATE, _row(msg.offset))
        out.forward("forwarded", msg.key, msg.value)
        if msg.offset == 1:
            out.then(hook)
        return Outcome.OK

    outcomes = asyncio.run(
        engine(writer, forwarder).process(Flow("t", handler, "in-dlq", BATCHING), _messages(b"1", b"2", b"3"))
    )
    assert outcomes == [Outcome.OK] * 3
    assert [r["n"] for r in writer.table("report_state")] == [0, 1, 2]
    assert [f.value for f in forwarder.delivered] == [b"1", b"2", b"3"]
    assert writer.calls == [("report_state", 3)]  # one insert per table and batch
    assert order == ["hook after 3 rows"]


def test_table_changes_are_stored_after_the_handlers_and_published_before_the_rows_are_written() -> None:
    order: list[str] = []

    class Changes:
        def write(self) -> None:
            order.append("stores written")

        async def flush(self) -> None:
            order.append("changelog published")

    class Writer(FakeWriter):
        async def insert(self, table: Any, rows: Any) -> None:
            order.append("rows written")
            await super().insert(table, rows)

    def handler(msg: Message, out: Output) -> Outcome:
        order.append("handled")
        return _handler(msg, out)

    e = Engine(Writer(), FakeForwarder(), dead_letters(), FAST, changelog=Changes(), faults=FAULTS)
    asyncio.run(e.process(Flow("t", handler, "in-dlq", BATCHING), _messages(b"1", b"2")))
    assert order == ["handled", "handled", "stores written", "changelog published", "rows written"]


def test_an_invalid_message_is_dead_lettered_and_the_batch_goes_on() -> None:
    writer, forwarder = FakeWriter(), FakeForwarder()
    outcomes = asyncio.run(
        engine(writer, forwarder).process(
            Flow("t", _handler, "in-dlq", BATCHING), _messages(b"1", b"bad", b"3")
        )
    )
    assert outcomes == [Outcome.OK, Outcome.DEAD_LETTER, Outcome.OK]
    # The failed handler's partial row is gone; the others are written.
    assert [r["n"] for r in writer.table("report_state")] == [1, 3]
    [letter] = forwarder.on("in-dlq")
    assert letter.value == b"bad" and letter.key == b"k1"
    assert dict(letter.headers) == {
        "dlq.reason": b"n: not a number",
        "dlq.topic": b"in",
        "dlq.partition": b"0",
        "dlq.offset": b"1",
    }
    [row] = writer.table(DEAD_LETTER_STATE.name)
    assert (row["topic"], row["offset"], row["reason"]) == ("in", 1, "n: not a number")
    assert set(row) == set(DEAD_LETTER_STATE.column_names)
    assert [f.value for f in forwarder.on("forwarded")] == [b"1", b"3"]


def test_an_unexpected_handler_error_dead_letters_without_quoting_values() -> None:
    writer, forwarder = FakeWriter(), FakeForwarder()
    outcomes = asyncio.run(
        engine(writer, forwarder).process(Flow("t", _handler, "in-dlq", BATCHING), _messages(b"boom", b"2"))
    )
    assert outcomes == [Outcome.DEAD_LETTER, Outcome.OK]
    [row] = writer.table("dead_letter_state")
    assert row["reason"] == "internal error: KeyError"
    assert "HH-secret-id" not in str(forwarder.on("in-dlq")[0].headers)


def test_unavailable_clickhouse_is_retried_in_place() -> None:
    writer = FakeWriter(unavailable=3)
    outcomes = asyncio.run(
        engine(writer).process(Flow("t", _handler, "in-dlq", BATCHING), _messages(b"1", b"2"))
    )
    assert outcomes == [Outcome.OK, Outcome.OK]
    assert len(writer.calls) == 4 and [r["n"] for r in writer.table("report_state")] == [1, 2]


def test_rows_clickhouse_refuses_are_traced_to_their_message() -> None:
    writer, forwarder = FakeWriter(reject=lambda row: row.get("n") in (5, 11)), FakeForwarder()
    values = [str(i).encode() for i in range(16)]
    outcomes = asyncio.run(
        engine(writer, forwarder).process(Flow("t", _handler, "in-dlq", BATCHING), _messages(*values))
    )
    assert [i for i, o in enumerate(outcomes) if o is Outcome.DEAD_LETTER] == [5, 11]
    assert sorted({r["n"] for r in writer.table("report_state")}) == [
        i for i in range(16) if i not in (5, 11)
    ]
    reasons = {r["offset"]: r["reason"] for r in writer.table("dead_letter_state")}
    assert reasons == {5: "ClickHouse refused its report_state row (RowsRejected)"} | {
        11: "ClickHouse refused its report_state row (RowsRejected)"
    }
    assert [int(f.headers[3][1]) for f in forwarder.on("in-dlq")] == [5, 11]


def test_a_retry_resends_only_what_was_not_delivered() -> None:
    forwarder = FakeForwarder(failures=1, fail_if=lambda f: f.value == b"2")
    asyncio.run(
        engine(forwarder=forwarder).process(
            Flow("t", _handler, "in-dlq", BATCHING), _messages(b"1", b"2", b"3")
        )
    )
    assert [f.value for f in forwarder.delivered] == [b"1", b"3", b"2"]
    assert forwarder.attempts == 2


def test_a_back_ends_infrastructure_fault_in_a_handler_retries_the_batch() -> None:
    writer, calls = FakeWriter(), []

    def flaky(msg: Message, out: Output) -> Outcome:
        calls.append(msg.offset)
        if len(calls) == 2:
            raise FakeUnavailable("broker gone")
        out.add(REPORT_STATE, _row(msg.offset))
        return Outcome.OK

    outcomes = asyncio.run(engine(writer).handle(Flow("t", flaky, "in-dlq", BATCHING), _messages(b"1", b"2")))
    assert outcomes == [Outcome.OK] * 2
    assert calls == [0, 1, 0, 1]  # the whole batch again, from the start
    assert writer.table("dead_letter_state") == []


def test_a_back_ends_fault_of_a_messages_own_bytes_dead_letters_it() -> None:
    writer = FakeWriter()

    def undecodable(msg: Message, out: Output) -> Outcome:
        if msg.offset == 0:
            raise FakeUndecodable("not the codec's bytes")
        return Outcome.OK

    flow = Flow("t", undecodable, "in-dlq", BATCHING)
    outcomes = asyncio.run(engine(writer).process(flow, _messages(b"1", b"2")))
    assert outcomes == [Outcome.DEAD_LETTER, Outcome.OK]
    [row] = writer.table("dead_letter_state")
    assert row["reason"] == "internal error: FakeUndecodable"

"""The engine's loop and error policy over fakes: order of operations, dead-lettering, retries."""

from __future__ import annotations

import asyncio
from typing import Any

from sinks.tables import DEAD_LETTER_STATE, REPORT_STATE
from streams.engine import Engine, Flow, Message, Outcome, Output
from streams.engine.bundle import BUNDLE_HEADER, pack, partition_of
from streams.engine.dead_letters import DeadLetters
from streams.errors import InvalidMessage
from streams.metrics import EVENTS
from tests.unit.fakes import FAST, PSEUDO, FakeForwarder, FakeRecord, FakeStream, FakeWriter, engine, message


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
        engine(writer, forwarder).process(Flow("t", handler, "in-dlq"), _messages(b"1", b"2", b"3"))
    )
    assert outcomes == [Outcome.OK] * 3
    assert [r["n"] for r in writer.table("report_state")] == [0, 1, 2]
    assert [f.value for f in forwarder.delivered] == [b"1", b"2", b"3"]
    assert writer.calls == [("report_state", 3)]  # one insert per table and batch
    assert order == ["hook after 3 rows"]


def test_table_changes_are_published_before_the_rows_are_written() -> None:
    order: list[str] = []

    class Changes:
        async def flush(self) -> None:
            order.append("changelog published")

    class Writer(FakeWriter):
        async def insert(self, table: Any, rows: Any) -> None:
            order.append("rows written")
            await super().insert(table, rows)

    e = Engine(Writer(), FakeForwarder(), DeadLetters(PSEUDO, 4096), FAST, changelog=Changes())
    asyncio.run(e.process(Flow("t", _handler, "in-dlq"), _messages(b"1")))
    assert order == ["changelog published", "rows written"]


def test_an_invalid_message_is_dead_lettered_and_the_batch_goes_on() -> None:
    writer, forwarder = FakeWriter(), FakeForwarder()
    outcomes = asyncio.run(
        engine(writer, forwarder).process(Flow("t", _handler, "in-dlq"), _messages(b"1", b"bad", b"3"))
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
        engine(writer, forwarder).process(Flow("t", _handler, "in-dlq"), _messages(b"boom", b"2"))
    )
    assert outcomes == [Outcome.DEAD_LETTER, Outcome.OK]
    [row] = writer.table("dead_letter_state")
    assert row["reason"] == "internal error: KeyError"
    assert "HH-secret-id" not in str(forwarder.on("in-dlq")[0].headers)


def test_unavailable_clickhouse_is_retried_in_place() -> None:
    writer = FakeWriter(unavailable=3)
    outcomes = asyncio.run(engine(writer).process(Flow("t", _handler, "in-dlq"), _messages(b"1", b"2")))
    assert outcomes == [Outcome.OK, Outcome.OK]
    assert len(writer.calls) == 4 and [r["n"] for r in writer.table("report_state")] == [1, 2]


def test_rows_clickhouse_refuses_are_traced_to_their_message() -> None:
    writer, forwarder = FakeWriter(reject=lambda row: row.get("n") in (5, 11)), FakeForwarder()
    values = [str(i).encode() for i in range(16)]
    outcomes = asyncio.run(
        engine(writer, forwarder).process(Flow("t", _handler, "in-dlq"), _messages(*values))
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
        engine(forwarder=forwarder).process(Flow("t", _handler, "in-dlq"), _messages(b"1", b"2", b"3"))
    )
    assert [f.value for f in forwarder.delivered] == [b"1", b"3", b"2"]
    assert forwarder.attempts == 2


def test_run_acks_after_the_write_and_counts_outcomes() -> None:
    writer = FakeWriter()
    stream = FakeStream([_messages(b"1", b"bad"), _messages(b"7")])
    before = EVENTS.labels("in", "dead_letter")._value.get()
    asyncio.run(engine(writer).run(Flow("t", _handler, "in-dlq"), stream))
    assert [m.value for m in stream.acked] == [b"1", b"bad", b"7"]
    assert [r["n"] for r in writer.table("report_state")] == [1, 7]
    assert EVENTS.labels("in", "dead_letter")._value.get() == before + 1


def test_a_flow_may_wait_less_or_take_fewer_records_than_the_engine() -> None:
    e = Engine(FakeWriter(), FakeForwarder(), DeadLetters(PSEUDO, 4096), FAST, batch_size=10_000,
               batch_seconds=0.2)  # fmt: skip
    default, urgent, bundles = FakeStream([]), FakeStream([]), FakeStream([])
    asyncio.run(e.run(Flow("t", _handler, "in-dlq"), default))
    asyncio.run(e.run(Flow("alerts", _handler, "in-dlq", batch_seconds=0.05), urgent))
    asyncio.run(e.run(Flow("by-id", _handler, "in-dlq", take=12), bundles))
    taken = [(s.take, s.within) for s in (default, urgent, bundles)]
    assert taken == [(10_000, 0.2), (10_000, 0.05), (12, 0.2)]


def test_forwards_to_internal_topics_travel_in_bundles_and_come_out_in_order() -> None:

    forwarder = FakeForwarder()
    bundling = Engine(FakeWriter(), forwarder, DeadLetters(PSEUDO, 4096), FAST, bundled={"forwarded": 6})
    values = [str(i).encode() for i in range(40)]
    asyncio.run(bundling.process(Flow("t", _handler, "in-dlq"), _messages(*values)))
    records = forwarder.on("forwarded")
    assert len(records) == len({partition_of(f"k{i}".encode(), 6) for i in range(40)}) <= 6
    assert all(r.headers == (BUNDLE_HEADER,) and r.key is None for r in records)
    # Downstream, each record comes out as the messages it holds, in order, with positions.
    seen: list[Message] = []

    def collect(msg: Message, out: Output) -> Outcome:
        seen.append(msg)
        return Outcome.OK

    stream = FakeStream([[FakeRecord("forwarded", r.partition or 0, 7, r.key, r.value, 1.0, [BUNDLE_HEADER])
                          for r in records]])  # fmt: skip
    downstream = Engine(
        FakeWriter(), FakeForwarder(), DeadLetters(PSEUDO, 4096), FAST, bundled={"forwarded": 6}
    )
    asyncio.run(downstream.run(Flow("down", collect, "dlq"), stream))
    assert sorted(m.value or b"" for m in seen) == sorted(values)
    for r in records:
        inside = [m for m in seen if m.partition == r.partition]
        assert [m.index for m in inside] == list(range(len(inside)))
        assert [m.position for m in inside] == [(7 << 16) | i for i in range(len(inside))]
        assert all(m.key and partition_of(m.key, 6) == r.partition for m in inside)
    assert len(stream.acked) == len(records)  # one ack per record, not per message


def test_a_batch_of_bundles_is_handled_in_runs_of_about_batch_size_messages() -> None:
    # Ten bundles of 30 messages taken at once, with a batch size of 100: four runs of whole
    # bundles (the last shorter), each written and acked before the next is unpacked.
    bundles = [[(f"k{b}-{i}".encode(), b"1", None) for i in range(30)] for b in range(10)]
    records = [FakeRecord("forwarded", 0, b, None, next(pack(items)), 1.0, [BUNDLE_HEADER])
               for b, items in enumerate(bundles)]  # fmt: skip
    stream, writer = FakeStream([records]), FakeWriter()
    acked_before_write: list[int] = []

    def count(msg: Message, out: Output) -> Outcome:
        out.add(REPORT_STATE, _row(msg.offset))
        return Outcome.OK

    class Writer(FakeWriter):
        async def insert(self, table: Any, rows: Any) -> None:
            acked_before_write.append(len(stream.acked))
            await writer.insert(table, rows)

    e = Engine(
        Writer(), FakeForwarder(), DeadLetters(PSEUDO, 4096), FAST, batch_size=100, bundled={"forwarded": 6}
    )
    asyncio.run(e.run(Flow("down", count, "dlq"), stream))
    assert [n for _, n in writer.calls] == [120, 120, 60]
    assert acked_before_write == [0, 4, 8]
    assert len(stream.acked) == 10


def test_a_record_of_an_input_topic_is_itself_whatever_its_headers() -> None:
    # Only dampak's own internal topics carry bundles: a publisher's record with the bundle header
    # is one message (its handler validates it as any other), never unpacked into many.
    items = [(f"k{i}".encode(), b"1", None) for i in range(5)]
    value = next(pack(items))
    seen: list[Message] = []

    def collect(msg: Message, out: Output) -> Outcome:
        seen.append(msg)
        return Outcome.OK

    e = Engine(FakeWriter(), FakeForwarder(), DeadLetters(PSEUDO, 4096), FAST, bundled={"forwarded": 6})
    stream = FakeStream([[FakeRecord("field-reports", 0, 3, b"key", value, 1.0, [BUNDLE_HEADER])]])
    asyncio.run(e.run(Flow("in", collect, "dlq"), stream))
    assert [(m.key, m.value, m.in_bundle) for m in seen] == [(b"key", value, False)]
    assert len(stream.acked) == 1


def test_an_infrastructure_fault_in_a_handler_retries_the_batch_instead_of_dead_lettering() -> None:
    from faust.exceptions import PartitionsMismatch

    writer, calls = FakeWriter(), []

    def flaky(msg: Message, out: Output) -> Outcome:
        calls.append(msg.offset)
        if len(calls) == 2:  # Kafka metadata not settled yet, say after a broker restart
            raise PartitionsMismatch("changelog partitions unknown")
        out.add(REPORT_STATE, _row(msg.offset))
        return Outcome.OK

    stream = FakeStream([_messages(b"1", b"2", b"3")])
    asyncio.run(engine(writer).run(Flow("t", flaky, "in-dlq"), stream))
    assert calls == [0, 1, 0, 1, 2]  # the whole batch again, from the start
    assert writer.table("dead_letter_state") == []
    assert sorted({r["n"] for r in writer.table("report_state")}) == [0, 1, 2]


def test_faust_acks_of_an_earlier_generation_are_refused() -> None:
    """Faust acks the messages its stream skips after a rebalance; they must not move offsets."""
    from types import SimpleNamespace

    from streams.engine.acks import guarded

    recorded: list[int] = []

    def ack(consumer: object, message: SimpleNamespace) -> bool:
        recorded.append(message.offset)
        return True

    consumer = SimpleNamespace(app=SimpleNamespace(consumer_generation_id=7))
    checked = guarded(ack)
    old = SimpleNamespace(generation_id=6, tp="t-0", offset=10)
    now = SimpleNamespace(generation_id=7, tp="t-0", offset=11)
    untracked = SimpleNamespace(generation_id=None, tp="t-0", offset=12)
    assert [checked(consumer, m) for m in (old, now, untracked)] == [False, True, True]
    assert recorded == [11, 12]


def test_a_batch_in_flight_when_a_rebalance_begins_changes_nothing_more_and_is_not_acked() -> None:
    """The partitions may go to another worker, which restores their tables from the changelog:
    after the rebalance began, no handler of the old batch may run, and it is not acked."""
    from tests.unit.fakes import FakeGroup, FakeRecord

    group, handled = FakeGroup(now=1), []

    class RebalancingForwarder(FakeForwarder):
        async def deliver(self, forwards: Any) -> list[BaseException | None]:
            if group.now == 1:  # the group starts rebalancing while the first batch is delivered
                group.rebalances += 1
                group.now = 2
                await asyncio.sleep(0)
            return await super().deliver(forwards)

    def handler(msg: Message, out: Output) -> Outcome:
        handled.append(msg.offset)
        out.add(REPORT_STATE, _row(msg.offset))
        out.forward("forwarded", msg.key, msg.value)
        return Outcome.OK

    writer = FakeWriter()
    old = [FakeRecord("in", 0, i, b"k", b"1", 1.0, generation_id=1) for i in range(3)]
    stale = [FakeRecord("in", 0, 3, b"k", b"1", 1.0, generation_id=1)]  # fetched before the rebalance
    new = [FakeRecord("in", 0, i, b"k", b"1", 1.0, generation_id=2) for i in range(4)]
    stream = FakeStream([old, stale, new])
    e = Engine(writer, RebalancingForwarder(), DeadLetters(PSEUDO, 4096), FAST, group=group)
    asyncio.run(e.run(Flow("t", handler, "in-dlq"), stream))
    assert handled == [0, 1, 2, 0, 1, 2, 3]  # the stale event was not handled; the new batch was
    assert [m.offset for m in stream.acked] == [0, 1, 2, 3]  # the new generation's only
    assert all(m.generation_id == 2 for m in stream.acked)
    assert sorted(r["n"] for r in writer.table("report_state")) == [0, 1, 2, 3]  # written once


def test_a_batch_waits_for_a_rebalance_in_progress_to_end() -> None:
    from tests.unit.fakes import FakeGroup, FakeRecord

    group = FakeGroup(now=5, in_progress=True)
    seen: list[int | None] = []

    def handler(msg: Message, out: Output) -> Outcome:
        seen.append(group.now)
        return Outcome.OK

    async def main() -> None:
        async def settle() -> None:
            await asyncio.sleep(0.2)
            group.in_progress, group.now = False, 6

        stream = FakeStream([[FakeRecord("in", 0, 0, b"k", b"1", 1.0, generation_id=6)]])
        e = Engine(FakeWriter(), FakeForwarder(), DeadLetters(PSEUDO, 4096), FAST, group=group)
        await asyncio.gather(settle(), e.run(Flow("t", handler, "in-dlq"), stream))

    asyncio.run(main())
    assert seen == [6]


def test_the_faust_forwarder_bounds_the_buffer_of_the_topics_it_is_told() -> None:
    import faust

    from streams.engine.forwarder import FaustForwarder

    app = faust.App("t", broker="kafka://127.0.0.1:1", autodiscover=False)
    forwarder = FaustForwarder(app, {"by-id": 24})
    assert forwarder.topic("by-id").maxsize == 24
    assert forwarder.topic("by-id").clone(is_iterator=True).queue.maxsize == 24  # an agent's buffer
    assert forwarder.topic("field-reports").maxsize is None  # Faust's stream_buffer_maxsize

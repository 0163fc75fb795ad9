"""The engine as the body of a Faust agent (streams/engine/faust/runner.py), over a fake stream:
what is taken, cut and acked, and what a rebalance does to a batch."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from faust.exceptions import PartitionsMismatch

from sinks.tables import REPORT_STATE
from streams.engine import Batching, Engine, Flow, Message, Outcome, Output
from streams.engine.backend import Group
from streams.engine.bundle import BUNDLE_HEADER, pack, partition_of
from streams.engine.faust.faults import FAULTS as FAUST_FAULTS
from streams.engine.faust.runner import FaustRunner
from streams.ops.metrics import EVENTS
from tests.unit.fakes import (
    BATCHING,
    FAST,
    FAULTS,
    FakeForwarder,
    FakeGroup,
    FakeRecord,
    FakeStream,
    FakeWriter,
    dead_letters,
    engine,
)
from tests.unit.streams.engine.test_engine import _handler, _messages, _row


def _runner(e: Engine, group: Group | None = None) -> FaustRunner:
    """``e`` run as Faust agents; without ``group``, of a group that never rebalances."""
    return FaustRunner(e, group or FakeGroup(now=None))


def test_run_acks_after_the_write_and_counts_outcomes() -> None:
    writer = FakeWriter()
    stream = FakeStream([_messages(b"1", b"bad"), _messages(b"7")])
    before = EVENTS.labels("in", "dead_letter")._value.get()
    asyncio.run(_runner(engine(writer)).run(Flow("t", _handler, "in-dlq", BATCHING), stream))
    assert [m.value for m in stream.acked] == [b"1", b"bad", b"7"]
    assert [r["n"] for r in writer.table("report_state")] == [1, 7]
    assert EVENTS.labels("in", "dead_letter")._value.get() == before + 1


def test_a_flows_batching_says_how_many_records_it_takes_and_how_long_it_waits() -> None:
    runner, batching = _runner(engine()), Batching(10_000, 0.2)
    default, urgent, bundles = FakeStream([]), FakeStream([]), FakeStream([])
    asyncio.run(runner.run(Flow("t", _handler, "in-dlq", batching), default))
    urgent_batching = dataclasses.replace(batching, seconds=0.05)
    asyncio.run(runner.run(Flow("alerts", _handler, "in-dlq", urgent_batching), urgent))
    asyncio.run(
        runner.run(Flow("by-id", _handler, "in-dlq", dataclasses.replace(batching, take=12)), bundles)
    )
    taken = [(s.take, s.within) for s in (default, urgent, bundles)]
    assert taken == [(10_000, 0.2), (10_000, 0.05), (12, 0.2)]


def test_forwards_to_internal_topics_travel_in_bundles_and_come_out_in_order() -> None:

    forwarder = FakeForwarder()
    bundling = Engine(FakeWriter(), forwarder, dead_letters(), FAST, bundled={"forwarded": 6}, faults=FAULTS)
    values = [str(i).encode() for i in range(40)]
    asyncio.run(bundling.process(Flow("t", _handler, "in-dlq", BATCHING), _messages(*values)))
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
        FakeWriter(), FakeForwarder(), dead_letters(), FAST, bundled={"forwarded": 6}, faults=FAULTS
    )
    asyncio.run(_runner(downstream).run(Flow("down", collect, "dlq", BATCHING), stream))
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

    e = Engine(Writer(), FakeForwarder(), dead_letters(), FAST, bundled={"forwarded": 6}, faults=FAULTS)
    batching = dataclasses.replace(BATCHING, size=100)
    asyncio.run(_runner(e).run(Flow("down", count, "dlq", batching), stream))
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

    e = Engine(FakeWriter(), FakeForwarder(), dead_letters(), FAST, bundled={"forwarded": 6}, faults=FAULTS)
    stream = FakeStream([[FakeRecord("field-reports", 0, 3, b"key", value, 1.0, [BUNDLE_HEADER])]])
    asyncio.run(_runner(e).run(Flow("in", collect, "dlq", BATCHING), stream))
    assert [(m.key, m.value, m.in_bundle) for m in seen] == [(b"key", value, False)]
    assert len(stream.acked) == 1


def test_an_infrastructure_fault_in_a_handler_retries_the_batch_instead_of_dead_lettering() -> None:
    writer, calls = FakeWriter(), []

    def flaky(msg: Message, out: Output) -> Outcome:
        calls.append(msg.offset)
        if len(calls) == 2:  # Kafka metadata not settled yet, say after a broker restart
            raise PartitionsMismatch("changelog partitions unknown")
        out.add(REPORT_STATE, _row(msg.offset))
        return Outcome.OK

    stream = FakeStream([_messages(b"1", b"2", b"3")])
    asyncio.run(
        _runner(engine(writer, faults=FAUST_FAULTS)).run(Flow("t", flaky, "in-dlq", BATCHING), stream)
    )
    assert calls == [0, 1, 0, 1, 2]  # the whole batch again, from the start
    assert writer.table("dead_letter_state") == []
    assert sorted({r["n"] for r in writer.table("report_state")}) == [0, 1, 2]


def test_a_batch_in_flight_when_a_rebalance_begins_changes_nothing_more_and_is_not_acked() -> None:
    """The partitions may go to another worker, which restores their tables from the changelog:
    after the rebalance began, no handler of the old batch may run, and it is not acked."""
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
    e = Engine(writer, RebalancingForwarder(), dead_letters(), FAST, faults=FAULTS)
    asyncio.run(FaustRunner(e, group).run(Flow("t", handler, "in-dlq", BATCHING), stream))
    assert handled == [0, 1, 2, 0, 1, 2, 3]  # the stale event was not handled; the new batch was
    assert [m.offset for m in stream.acked] == [0, 1, 2, 3]  # the new generation's only
    assert all(m.generation_id == 2 for m in stream.acked)
    assert sorted(r["n"] for r in writer.table("report_state")) == [0, 1, 2, 3]  # written once


def test_a_batch_waits_for_a_rebalance_in_progress_to_end() -> None:
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
        e = Engine(FakeWriter(), FakeForwarder(), dead_letters(), FAST, faults=FAULTS)
        await asyncio.gather(
            settle(), FaustRunner(e, group).run(Flow("t", handler, "in-dlq", BATCHING), stream)
        )

    asyncio.run(main())
    assert seen == [6]

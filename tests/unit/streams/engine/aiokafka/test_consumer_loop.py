"""The engine on a plain consumer group (streams/engine/aiokafka/consumer.py), over the fake
back-end's consumer: what is committed, and what happens to a batch when its partitions are
revoked."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from aiokafka import TopicPartition

from streams.engine import Batching, Flow, Message, Outcome, Output
from streams.engine.aiokafka import consumer as consumer_module
from streams.engine.aiokafka.consumer import ConsumerLoop
from streams.errors import InvalidMessage
from streams.features.field_reports import ReportDeps, route_report
from tests.unit.fakes import (
    FAST,
    PSEUDO,
    FakeConsumer,
    FakeForwarder,
    FakeRecord,
    FakeWriter,
    by_partition,
    engine,
)

#: Small batches, gathered for a short while.
LOOP = Batching(100, 0.01)


def _records(topic: str, partition: int, offsets: range) -> list[FakeRecord]:
    return [FakeRecord(topic, partition, o, None, str(o).encode()) for o in offsets]


class _Seen:
    def __init__(self, slow: float = 0.0) -> None:
        self.messages: list[tuple[str, int, int]] = []
        self.slow = slow

    async def __call__(self, msg: Message, out: Output) -> Outcome:
        if msg.value == b"bad":
            raise InvalidMessage("not a number")
        self.messages.append((msg.topic, msg.partition, msg.offset))
        out.forward(f"{msg.topic}-by-id", msg.key, msg.value)
        if self.slow:
            await asyncio.sleep(self.slow)
        return Outcome.OK


def _run(consumer: FakeConsumer, seen: _Seen, **kw: Any) -> tuple[ConsumerLoop, FakeForwarder]:
    forwarder = FakeForwarder()
    flows = kw.pop("flows", None) or {
        t: Flow(f"route-{t}", seen, f"{t}-dlq", LOOP) for t in ("reports", "households")
    }
    loop = ConsumerLoop(engine(FakeWriter(), forwarder), flows, FAST, idle_s=0.01, **kw)

    async def main() -> None:
        task = asyncio.create_task(loop.run(consumer))
        await asyncio.wait_for(consumer.idle.wait(), 10)
        await asyncio.sleep(0.05)
        consumer.commits_while_running = list(consumer.commits)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    return loop, forwarder


def test_batches_of_several_topics_are_handled_and_their_next_offsets_committed() -> None:
    consumer = FakeConsumer([_records("reports", 0, range(3)) + _records("households", 2, range(5, 7))])
    seen = _Seen()
    _, forwarder = _run(consumer, seen)
    assert sorted(seen.messages) == [
        ("households", 2, 5),
        ("households", 2, 6),
        *(("reports", 0, o) for o in range(3)),
    ]
    assert len(forwarder.delivered) == 5
    committed: dict[TopicPartition, int] = {}
    for c in consumer.commits:
        committed.update(c)
    assert committed == {TopicPartition("reports", 0): 3, TopicPartition("households", 2): 7}
    assert consumer.stopped


def test_what_is_done_is_committed_once_nothing_comes_even_before_the_commit_interval() -> None:
    """A worker that starts on a few records and then sees nothing more commits them while it
    runs (they stayed uncommitted, lag on the dashboard, when the loop only committed at its
    interval after a batch)."""
    consumer = FakeConsumer([_records("reports", 3, range(4))])
    _run(consumer, _Seen(), commit_every_s=3600.0)
    assert consumer.commits_while_running == [{TopicPartition("reports", 3): 4}]


def test_a_rejected_record_is_dead_lettered_and_committed_past() -> None:
    bad = FakeRecord("reports", 1, 4, None, b"bad")
    consumer = FakeConsumer([[*_records("reports", 1, range(4)), bad]])
    _, forwarder = _run(consumer, _Seen())
    assert [f.topic for f in forwarder.delivered].count("reports-dlq") == 1
    assert consumer.commits[-1] == {TopicPartition("reports", 1): 5}


def test_a_topic_handled_at_once_skips_the_engine_and_one_left_to_it_goes_through_it() -> None:
    """``at_once`` (the writer's inserts) takes a topic's records of a batch whole; when it
    declines them, the engine handles them one message at a time. Both are committed."""
    offered: list[tuple[str, list[int]]] = []

    async def at_once(topic: str, records: list[Any]) -> bool:
        offered.append((topic, [r.offset for r in records]))
        return topic == "reports"

    consumer = FakeConsumer([_records("reports", 0, range(3)) + _records("households", 2, range(5, 7))])
    seen = _Seen()
    _run(consumer, seen, at_once=at_once)
    assert sorted(offered) == [("households", [5, 6]), ("reports", [0, 1, 2])]
    assert seen.messages == [("households", 2, 5), ("households", 2, 6)]  # declined: the engine's
    committed: dict[TopicPartition, int] = {}
    for c in consumer.commits:
        committed.update(c)
    assert committed == {TopicPartition("reports", 0): 3, TopicPartition("households", 2): 7}


def test_records_fetched_while_a_rebalance_is_under_way_are_dropped_unhandled_and_uncommitted() -> None:
    """They belong to the generation being revoked; the new assignment starts from the committed
    offsets."""

    async def revoked_while_fetching(consumer: FakeConsumer) -> dict[TopicPartition, list[FakeRecord]]:
        await consumer.listener.on_partitions_revoked({TopicPartition("reports", 0)})
        return by_partition(_records("reports", 0, range(3)))

    consumer = FakeConsumer([revoked_while_fetching])
    seen = _Seen()
    _run(consumer, seen)
    assert seen.messages == []
    assert all(TopicPartition("reports", 0) not in c for c in consumer.commits)


def test_records_fetched_after_the_group_is_joined_are_handled() -> None:
    """The first join revokes nothing and then assigns: what is fetched after it is this
    worker's (it was lost, fetched and dropped, when every revocation dropped the next fetch)."""

    async def joined_while_fetching(consumer: FakeConsumer) -> dict[TopicPartition, list[FakeRecord]]:
        await consumer.listener.on_partitions_revoked(set())
        await consumer.listener.on_partitions_assigned({TopicPartition("reports", 0)})
        return by_partition(_records("reports", 0, range(3)))

    consumer = FakeConsumer([joined_while_fetching])
    seen = _Seen()
    _run(consumer, seen)
    assert seen.messages == [("reports", 0, o) for o in range(3)]
    assert consumer.commits[-1] == {TopicPartition("reports", 0): 3}


def test_a_batch_in_flight_at_a_revocation_is_abandoned_and_the_revocation_waits_for_it() -> None:
    """The revocation stops the batch at its next await and returns only once it has stopped: the
    next owner never starts while this one still forwards."""
    events: list[str] = []

    async def revoke_soon(consumer: FakeConsumer) -> dict[TopicPartition, list[FakeRecord]]:
        async def revoke() -> None:
            await asyncio.sleep(0.02)  # the batch is in its handlers by then
            await consumer.listener.on_partitions_revoked({TopicPartition("reports", 0)})
            events.append(f"revoked after {len(seen.messages)} handled")

        asyncio.get_running_loop().create_task(revoke())
        return by_partition(_records("reports", 0, range(10)))

    seen = _Seen(slow=0.01)
    consumer = FakeConsumer([revoke_soon])
    _, forwarder = _run(consumer, seen)
    assert 0 < len(seen.messages) < 10
    assert events == [f"revoked after {len(seen.messages)} handled"]  # nothing handled after it
    assert forwarder.delivered == []  # abandoned before its forwards were delivered
    assert all(TopicPartition("reports", 0) not in c for c in consumer.commits)


def test_a_refused_commit_is_left_to_the_next_owner_and_the_loop_goes_on() -> None:
    consumer = FakeConsumer(
        [_records("reports", 0, range(2)), None, _records("reports", 0, range(2, 4))], refuse_commits=1
    )
    seen = _Seen()
    _run(consumer, seen, commit_every_s=0.0)
    assert len(seen.messages) == 4
    assert consumer.commits[-1] == {TopicPartition("reports", 0): 4}


def test_a_hostile_report_stops_none_of_the_three_input_topics_sharing_the_loop() -> None:
    """Issue 27 case 1: the three input topics share one loop, and a field report nested 700
    deep failed its own dead-lettering, so its batch was retried forever and all three topics
    stopped. Now the hostile reports are dead-lettered, and what comes after them on every topic
    is routed and committed."""
    deps = ReportDeps({}, {}, {}, PSEUDO)
    hostile = [b"[" * 700, b"[" * 700 + b"]" * 700, b'{"a":' * 700, b"9" * 5000]
    valid = b'{"report_id": "R-1", "reported_at": "2022-11-21T09:30:00Z", "village_code": "32.03.01.2001"}'
    reports = [FakeRecord("field-reports", 0, o, None, v) for o, v in enumerate([*hostile, valid])]
    others = _records("households", 1, range(2)) + _records("disaster-alerts", 2, range(2))
    seen = _Seen()
    flows = {
        "field-reports": Flow(
            "route_reports", functools.partial(route_report, deps), "field-reports-dlq", LOOP
        ),
        "households": Flow("route_households", seen, "households-dlq", LOOP),
        "disaster-alerts": Flow("route_alerts", seen, "disaster-alerts-dlq", LOOP),
    }
    consumer = FakeConsumer([reports, None, others, None])
    _, forwarder = _run(consumer, seen, flows=flows)
    assert [f.key for f in forwarder.on("field-reports-by-id")] == [b"R-1"]
    assert len(forwarder.on("field-reports-dlq")) == len(hostile)
    assert sorted(seen.messages) == [("disaster-alerts", 2, 0), ("disaster-alerts", 2, 1),
                                     ("households", 1, 0), ("households", 1, 1)]  # fmt: skip
    committed: dict[TopicPartition, int] = {}
    for c in consumer.commits:
        committed.update(c)
    assert committed == {
        TopicPartition("field-reports", 0): 5,
        TopicPartition("households", 1): 2,
        TopicPartition("disaster-alerts", 2): 2,
    }


def test_a_kafka_timestamp_before_1970_reaches_the_boundary_and_only_minus_one_means_none() -> None:
    """Issue 27 structural fuzz: a record stamped in 1800 (a negative Kafka timestamp) was read as
    "no timestamp", so the boundary's 1900 bound never saw it and it was routed."""
    assert consumer_module._seconds(-1) is None
    assert consumer_module._seconds(None) is None
    assert consumer_module._seconds(-5_364_662_400_000) == -5_364_662_400.0  # 1800-01-01
    assert consumer_module._seconds(0) == 0.0
    deps = ReportDeps({}, {}, {}, PSEUDO)
    valid = b'{"report_id": "R-1", "reported_at": "2022-11-21T09:30:00Z", "village_code": "32.03.01.2001"}'
    old = FakeRecord("field-reports", 0, 0, None, valid, timestamp=-5_364_662_400_000)
    route = Flow(
        "route_reports", functools.partial(route_report, deps), "field-reports-dlq", LOOP, boundary=True
    )
    flows = {"field-reports": route}
    consumer = FakeConsumer([[old], None])
    _, forwarder = _run(consumer, _Seen(), flows=flows)
    assert forwarder.on("field-reports-by-id") == []
    [letter] = forwarder.on("field-reports-dlq")
    assert dict(letter.headers)["dlq.reason"].startswith(b"Kafka timestamp out of range")

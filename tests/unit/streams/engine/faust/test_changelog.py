"""Changelog records are published per partition, in order, retried from the first batch not
acknowledged, and a flush returns only when every change made before it is published."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import aiokafka

from streams.engine.faust.changelog import AioBatchSender, Changelog, Record, Sent
from tests.unit.fakes import FAST


class _Store:
    def __init__(self) -> None:
        self.persisted: dict[Any, int] = {}

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp.topic, tp.partition] = offset


class _Broker:
    """A fake of the producer's batches: two records per batch; ``fail`` names the sends (by
    number, from 0) whose acknowledgement fails; ``gate`` holds every acknowledgement."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.logs: dict[tuple[str, int], list[Record]] = {}
        self.sends = 0
        self.fail = fail or set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, topic: str, partition: int, records: list[Record]) -> list[Sent]:
        sent: list[Sent] = []
        for i in range(0, len(records), 2):
            sent.append((len(records[i : i + 2]), self._ack((topic, partition), records[i : i + 2])))
        return sent

    def _ack(self, tp: tuple[str, int], batch: list[Record]) -> Awaitable[int | None]:
        number, self.sends = self.sends, self.sends + 1

        async def ack() -> int:
            await self.gate.wait()
            if number in self.fail:
                raise ConnectionError("not leader")
            log = self.logs.setdefault(tp, [])
            log.extend(batch)
            return len(log) - len(batch)

        return ack()


def test_a_flush_publishes_each_partition_in_order_and_keeps_the_last_offset() -> None:
    broker, store = _Broker(), _Store()
    changelog = Changelog(broker, FAST)

    async def run() -> None:
        for i in range(5):
            changelog.add(store, "registry-changelog", i % 2, f"k{i}".encode(), f"v{i}".encode())
        changelog.add(store, "registry-changelog", 0, b"k0", None)
        await changelog.flush()

    asyncio.run(run())
    assert broker.logs == {
        ("registry-changelog", 0): [(b"k0", b"v0"), (b"k2", b"v2"), (b"k4", b"v4"), (b"k0", None)],
        ("registry-changelog", 1): [(b"k1", b"v1"), (b"k3", b"v3")],
    }
    assert store.persisted == {("registry-changelog", 0): 3, ("registry-changelog", 1): 1}


def test_a_failed_batch_is_sent_again_with_every_batch_after_it_before_a_later_flush() -> None:
    # Send 0 is the first batch of partition 0 ([k0, k1]); it fails, the second ([k2]) lands.
    broker, store = _Broker(fail={0}), _Store()
    changelog = Changelog(broker, FAST)

    async def run() -> None:
        for k in (b"k0", b"k1", b"k2"):
            changelog.add(store, "t", 0, k, b"old")
        first = asyncio.ensure_future(changelog.flush())
        await asyncio.sleep(0)
        changelog.add(store, "t", 0, b"k2", b"new")  # a later change to a key of the failed round
        await changelog.flush()
        assert first.done()

    asyncio.run(run())
    log = broker.logs["t", 0]
    # [k2 old] landed, then the round again from its failed batch, then the later round: the
    # latest value of every key comes last.
    assert log == [(b"k2", b"old"), (b"k0", b"old"), (b"k1", b"old"), (b"k2", b"old"), (b"k2", b"new")]
    assert store.persisted == {("t", 0): 4}


def test_a_flush_with_nothing_new_waits_for_the_round_in_flight() -> None:
    # One agent's flush may carry another's changes: the other must not ack before they land.
    broker, store = _Broker(), _Store()
    changelog = Changelog(broker, FAST)

    async def run() -> list[str]:
        seen: list[str] = []
        broker.gate.clear()
        changelog.add(store, "t", 0, b"k", b"v")
        carrying = asyncio.ensure_future(changelog.flush())
        await asyncio.sleep(0)
        other = asyncio.ensure_future(changelog.flush())
        await asyncio.sleep(0.01)
        seen.append(f"held {carrying.done()} {other.done()}")
        broker.gate.set()
        await asyncio.gather(carrying, other)
        seen.append(f"published {broker.logs['t', 0]}")
        return seen

    assert asyncio.run(run()) == ["held False False", "published [(b'k', b'v')]"]


def test_a_cancelled_flush_does_not_cancel_the_publishing() -> None:
    broker, store = _Broker(), _Store()
    changelog = Changelog(broker, FAST)

    async def run() -> None:
        broker.gate.clear()
        changelog.add(store, "t", 0, b"k", b"v")
        waiting = asyncio.ensure_future(changelog.flush())
        await asyncio.sleep(0)
        waiting.cancel()
        broker.gate.set()
        await changelog.flush()

    asyncio.run(run())
    assert broker.logs == {("t", 0): [(b"k", b"v")]}


def test_the_aiokafka_sender_cuts_records_into_batches_that_fit() -> None:
    queued: list[tuple[str, int, int]] = []

    class Producer(aiokafka.AIOKafkaProducer):  # type: ignore[misc]
        async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
            queued.append((topic, partition, batch.record_count()))
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(type("Meta", (), {"offset": 10 * len(queued)})())
            return done

    async def run() -> list[int | None]:
        producer = Producer(bootstrap_servers="127.0.0.1:1", max_batch_size=200)
        records: list[Record] = [(f"k{i}".encode(), b"x" * 60) for i in range(7)]
        sent = await AioBatchSender(lambda: producer).send("t", 3, records)
        assert sum(n for n, _ in sent) == 7 and len(sent) > 1
        return [await ack for _, ack in sent]  # type: ignore[misc]

    offsets = asyncio.run(run())
    assert [q[:2] for q in queued] == [("t", 3)] * len(queued)
    assert sum(q[2] for q in queued) == 7
    assert offsets == [10 * (i + 1) for i in range(len(queued))]


def test_the_stores_are_written_before_anything_is_published_and_a_failed_write_publishes_nothing() -> None:
    broker, store = _Broker(), _Store()
    changelog = Changelog(broker, FAST)
    calls: list[int] = []
    failing = [True]

    def write() -> None:  # the tables' writes (``TableState.write``): published only once written
        calls.append(broker.sends)
        if failing[0]:
            raise OSError("disk full")

    changelog.before_publishing(write)

    async def run() -> None:
        changelog.add(store, "registry-changelog", 0, b"k0", b"v0")
        try:
            await changelog.flush()
        except OSError:
            pass
        else:
            raise AssertionError("the store's fault is the flush's")
        assert broker.logs == {} and broker.sends == 0
        failing[0] = False
        await changelog.flush()  # the changes kept are written and published now

    asyncio.run(run())
    assert calls == [0, 0]
    assert broker.logs == {("registry-changelog", 0): [(b"k0", b"v0")]}

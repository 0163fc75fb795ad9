"""The producer's recovery fixes reach into aiokafka: these fail if an upgrade moves what they
rely on."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka
import pytest
from aiokafka.errors import UnknownTopicOrPartitionError
from faust.transport.drivers.aiokafka import Producer

from streams.engine.faust.producer import RecoveringProducer, patient, use_recovering_producer


def test_faust_gets_bounded_requests_and_batches_keep_their_lifetime() -> None:
    use_recovering_producer(30)

    async def build() -> tuple[int, float]:
        cls = Producer._producer_type.fget(None)  # type: ignore[attr-defined]
        producer = cls(bootstrap_servers="127.0.0.1:1", request_timeout_ms=1_200_000)
        return producer.client._request_timeout_ms, producer._message_accumulator._batch_ttl

    assert asyncio.run(build()) == (30_000, 1200)


def test_every_topic_sent_to_is_tracked_for_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    async def known_topic_send(self: Any, topic: str, *args: Any, **kwargs: Any) -> None:
        return None  # aiokafka's send, for a topic whose partitions it already knows

    monkeypatch.setattr(aiokafka.AIOKafkaProducer, "send", known_topic_send)
    monkeypatch.setattr(aiokafka.AIOKafkaProducer, "send_batch", known_topic_send)

    async def send() -> set[str]:
        producer = RecoveringProducer(bootstrap_servers="127.0.0.1:1", request_timeout_s=5)
        monkeypatch.setattr(producer.client, "force_metadata_update", _done)  # no broker here
        await producer.send("impact-notifications", b"v")
        await producer.send_batch(producer.create_batch(), "registry-changelog", partition=0)
        return set(producer.client._topics)

    assert asyncio.run(send()) == {"impact-notifications", "registry-changelog"}


def test_a_send_waits_for_metadata_as_long_as_a_batch_lives() -> None:
    calls: list[str] = []

    async def wait_on_metadata(topic: str) -> set[int]:
        calls.append(topic)
        if len(calls) < 3:
            raise UnknownTopicOrPartitionError()  # the connection's timeout passed
        return {0, 1}

    assert asyncio.run(patient(wait_on_metadata, 60)("t")) == {0, 1} and calls == ["t"] * 3
    calls.clear()
    with pytest.raises(UnknownTopicOrPartitionError):
        asyncio.run(patient(wait_on_metadata, 0)("t"))  # the lifetime has passed: give up
    assert calls == ["t"]


def test_the_client_keeps_a_patient_metadata_wait() -> None:
    async def build() -> Any:
        return RecoveringProducer(bootstrap_servers="127.0.0.1:1", request_timeout_s=5).client

    client = asyncio.run(build())
    assert client._request_timeout_ms == 5_000
    assert client._wait_on_metadata.__qualname__ == "patient.<locals>.wait"


def _done() -> asyncio.Future[bool]:
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    fut.set_result(True)
    return fut

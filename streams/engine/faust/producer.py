"""An aiokafka producer that finds its way back after a broker restart.

Two ways a worker's producer stayed stuck after the broker came back (both seen in the fault
suite, the worker idle for the rest of the run: Faust's commit waits on the producer's flush, and
the group's rejoin on the commit):

- **Topics it forgot.** aiokafka asks for metadata of the topics it *tracks*, and tracks a topic
  only when it first sends to one whose partitions it does not know. A producer that learnt
  every topic at start (its first metadata request asks for all of them) tracks few or none; a
  refresh then replaces the cluster's metadata with the tracked topics only, and batches for any
  other topic wait for a leader the producer never asks about again (for Faust's
  ``producer_request_timeout``, 20 minutes). Here every topic sent to is tracked.
- **A request never answered.** Faust gives its producer one timeout, 1,200 s, and aiokafka uses
  it twice: as the lifetime of a batch waiting for a partition leader, and as the wait for each
  answer on a connection. A metadata request the restarted broker left unanswered held the
  producer for the whole 1,200 s. Here a connection waits ``request_timeout_s`` (the Java
  client's ``request.timeout.ms`` default is 30 s); a batch keeps its own lifetime, so a long
  outage still loses no changelog record, and a send that waits for a topic's metadata keeps
  waiting as long (aiokafka's client bounds that wait by the same timeout: cut to 30 s, a send
  during a longer outage failed, and a failed changelog send crashes Faust's producer buffer).
"""

# Works around aiokafka 0.14 ``AIOKafkaClient`` asking for the metadata of the topics it tracks
# only (aiokafka/client.py: ``self._topics``, "empty set will fetch all topic metadata", and
# ``set_topics`` replacing them), and faust-streaming 0.15.3 giving its aiokafka producer
# ``producer_request_timeout`` (1,200 s) as ``request_timeout_ms``
# (faust/transport/drivers/aiokafka.py, ``Producer._settings_default``); the producer class is
# replaced through ``Producer._producer_type``. No upstream issue was found for either.

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
from aiokafka.errors import UnknownTopicOrPartitionError
from faust.transport.drivers.aiokafka import Producer

__all__ = ["RecoveringProducer", "patient", "use_recovering_producer"]


class RecoveringProducer(aiokafka.AIOKafkaProducer):  # type: ignore[misc]
    def __init__(self, *args: Any, request_timeout_s: float, **kwargs: Any) -> None:
        """``request_timeout_s``: the wait for one answer on a connection."""
        super().__init__(*args, **kwargs)
        # Connections read their timeout from the client when they open; the batches keep the
        # producer's own (their lifetime without a leader), and so does a wait for metadata.
        self.client._request_timeout_ms = int(request_timeout_s * 1000)
        self.client._wait_on_metadata = patient(
            self.client._wait_on_metadata, self._request_timeout_ms / 1000
        )

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic not in self.client._topics:
            self.client.add_topic(topic)
        return await super().send(topic, *args, **kwargs)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if topic not in self.client._topics:
            self.client.add_topic(topic)
        return await super().send_batch(batch, topic, partition=partition)


def patient(
    wait_on_metadata: Callable[[str], Awaitable[Any]], lifetime_s: float
) -> Callable[[str], Awaitable[Any]]:
    """``wait_on_metadata`` (which gives up after a connection's timeout), tried again until
    ``lifetime_s`` has passed."""

    async def wait(topic: str) -> Any:
        deadline = time.monotonic() + lifetime_s
        while True:
            try:
                return await wait_on_metadata(topic)
            except UnknownTopicOrPartitionError:
                if time.monotonic() >= deadline:
                    raise

    return wait


def use_recovering_producer(request_timeout_s: float) -> None:
    """Make Faust's producers, from now on, ``RecoveringProducer`` with ``request_timeout_s``
    (the latest call wins)."""
    make = functools.partial(RecoveringProducer, request_timeout_s=request_timeout_s)
    Producer._producer_type = property(lambda self: make)  # type: ignore[method-assign,assignment]

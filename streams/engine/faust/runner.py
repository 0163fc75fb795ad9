"""The engine as the body of a Faust agent: take events without acking (``noack_take``), hand each
batch to the engine, then ack; events of an earlier group generation are dropped; each message's
handler runs in its event's context (Faust's current event), so that table changes reach the
changelog partition of that event."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Container, Iterator, Sequence
from contextvars import Token
from typing import Any

from faust.streams import _current_event

from streams.engine.backend import Group
from streams.engine.batch import Message, messages_of
from streams.engine.loop import Engine, Flow

__all__ = ["EventContext", "FaustRunner"]

logger = logging.getLogger(__name__)

#: How long a batch waits for a rebalance in progress to end before it is handled anyway.
_REBALANCE_WAIT_S = 30.0


class FaustRunner:
    """Runs flows on ``engine`` as Faust agents of the consumer group ``group`` (``FaustGroup``)."""

    def __init__(self, engine: Engine, group: Group) -> None:
        self._engine = engine
        self._group = group

    async def run(self, flow: Flow, stream: Any) -> None:
        """The body of a Faust agent: take events without acking, process, then ack them."""
        batching = flow.batching
        async for taken in stream.noack_take(batching.records, within=batching.seconds):
            events = await self._of_this_generation(taken)
            # A bundle holds many messages: a batch is cut to about ``batching.size`` messages, so
            # one taken from a backlog of bundles does not hold millions at once.
            for chunk, messages in _chunks(events, batching.size, self._engine.bundled):
                if not await self._run_batch(flow, stream, chunk, messages):
                    break  # abandoned at a rebalance: the rest is fetched again too

    async def _run_batch(self, flow: Flow, stream: Any, events: list[Any], messages: list[Message]) -> bool:
        if await self._engine.handle(flow, messages, self._group) is None:
            return False
        for event in events:
            await stream.ack(event)
        return True

    async def _of_this_generation(self, events: Sequence[Any]) -> list[Any]:
        """``events`` less those fetched in an earlier generation of the group (waiting for a
        rebalance in progress to end first)."""
        waited = 0.0
        while self._group.rebalancing():
            if waited >= _REBALANCE_WAIT_S:  # never stall on a flag a rebalance failed to clear
                logger.warning("still rebalancing after %.0f s; handling the batch", waited)
                break
            await asyncio.sleep(0.05)
            waited += 0.05
        now = self._group.generation()
        if now is None:
            return list(events)
        kept = [e for e in events if getattr(e.message, "generation_id", now) == now]
        if len(kept) < len(events):
            dropped = len(events) - len(kept)
            logger.warning("dropped %d events of an earlier group generation (fetched again)", dropped)
        return kept


def _chunks(
    events: Sequence[Any], size: int, bundled: Container[str]
) -> Iterator[tuple[list[Any], list[Message]]]:
    """``events`` in runs of whole events holding about ``size`` messages (at least one event);
    records of ``bundled`` topics are unpacked."""
    chunk: list[Any] = []
    messages: list[Message] = []
    for event in events:
        chunk.append(event)
        record = event.message
        messages.extend(messages_of(record, record.timestamp, event, record.topic in bundled))
        if len(messages) >= size:
            yield chunk, messages
            chunk, messages = [], []
    if chunk:
        yield chunk, messages


class EventContext:
    """The engine's current-event hook for Faust (``backend.EventScope``). Faust writes a table
    change to the changelog partition of the *current event*; noack_take hands events over outside
    that context, so the engine re-establishes it for each message's handler (co-partitioning
    depends on it): set when the event changes (the messages of a bundle share theirs), restored
    when the batch ends."""

    def __init__(self) -> None:
        self._native: Any = None
        self._first: Token[Any] | None = None

    def __enter__(self) -> EventContext:
        return self

    def enter(self, native: Any) -> None:
        if native is None or native is self._native:
            return
        self._native = native
        token = _current_event.set(weakref.ref(native))
        if self._first is None:
            self._first = token

    def __exit__(self, *exc: object) -> None:
        if self._first is not None:
            _current_event.reset(self._first)

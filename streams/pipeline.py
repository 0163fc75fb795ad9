"""What every agent shares: settings, the ClickHouse sink, pseudonyms, topics, tables and metrics.

Also the batch loop all agents use: take events without acking, process them, write their rows,
and only then ack, so a source offset is never committed before its rows are in ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from faust.streams import _current_event
from pydantic import ValidationError

from streams.domain.reports import Outcome
from streams.metrics import END_TO_END_SECONDS, EVENTS, SINK_BATCH_SECONDS
from streams.privacy import Pseudonymizer
from streams.settings import Settings

__all__ = [
    "Batch",
    "Pipeline",
    "RowSink",
    "describe_validation_error",
    "run_batches",
]

logger = logging.getLogger(__name__)


class RowSink(Protocol):
    """Where rows go: ``ClickHouseSink`` in production, a fake in unit tests."""

    async def write(self, batches: Mapping[str, Sequence[Mapping[str, Any]]]) -> None: ...

    async def query(
        self, sql: str, max_rows: int, timeout_s: float
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    async def select_columns(self, sql: str) -> dict[str, list[Any]]: ...


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line reason built from locations and messages only: input values (which may hold a NIK)
    never reach logs or dead letters."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:1000]


@dataclass
class Batch:
    """Rows and forwarded messages produced while processing one batch of events."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deliveries: list[Awaitable[Any]] = field(default_factory=list)
    #: Run after the rows are written and before the events are acked (e.g. notifications).
    after_write: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)


@dataclass
class Pipeline:
    settings: Settings
    sink: RowSink
    pseudo: Pseudonymizer
    app: Any  # faust.App
    topics: dict[str, Any] = field(default_factory=dict)  # logical name -> faust topic
    dlq: dict[str, Any] = field(default_factory=dict)  # physical source name -> faust DLQ topic
    tables: dict[str, Any] = field(default_factory=dict)

    def dead_letter(self, batch: Batch, event: Any, reason: str, personal_key: bool = False) -> Outcome:
        """Send a rejected message to ``<topic>-dlq`` (raw bytes, reason in headers) and to the
        ``dead_letters`` table (pseudonymised, size-capped payload). The agent moves on."""
        msg = event.message
        topic = msg.topic
        logger.warning("dead-lettered %s[%d]@%d: %s", topic, msg.partition, msg.offset, reason)
        headers = {
            "dlq.reason": reason.encode(),
            "dlq.topic": topic.encode(),
            "dlq.partition": str(msg.partition).encode(),
            "dlq.offset": str(msg.offset).encode(),
        }
        batch.deliveries.append(self.dlq[topic].send(key=msg.key, value=msg.value, headers=headers))
        key = msg.key if isinstance(msg.key, bytes) else None
        batch.add(
            "dead_letter_state",
            {
                "topic": topic,
                "partition": msg.partition,
                "offset": msg.offset,
                "reason": reason,
                "key_ref": self.pseudo.ref("household_id", key.decode("utf-8", "replace"))
                if key and personal_key
                else (key or b"").decode("utf-8", "replace")[:256],
                "payload": self.pseudo.redact_payload(
                    msg.value, key if personal_key else None, self.settings.sink.dead_letter_payload_max_bytes
                ),
                "payload_bytes": len(msg.value or b""),
                "message_timestamp": datetime.fromtimestamp(msg.timestamp or 0, UTC),
                "received_at": datetime.now(UTC),
            },
        )
        return Outcome.DEAD_LETTER


async def _handle_as_current(
    handle: Callable[[Batch, Any], Awaitable[Outcome]], batch: Batch, event: Any
) -> Outcome:
    # Faust writes a table change to the changelog partition of the *current event*; noack_take
    # hands events over outside that context, so re-establish it (co-partitioning depends on it).
    token = _current_event.set(weakref.ref(event))
    try:
        return await handle(batch, event)
    finally:
        _current_event.reset(token)


async def run_batches(
    pipeline: Pipeline, stream: Any, handle: Callable[[Batch, Any], Awaitable[Outcome]]
) -> None:
    """The loop of every agent: take up to ``batch_size`` events or ``batch_seconds``, handle each,
    wait for forwarded messages, write the rows, then ack.

    ``handle`` returns the event's outcome. It must not raise for bad input; an unexpected
    exception is logged and the batch is retried, never acked unwritten.
    """
    sink_settings = pipeline.settings.sink
    async for events in stream.noack_take(sink_settings.batch_size, within=sink_settings.batch_seconds):
        started = time.perf_counter()
        while True:
            batch = Batch()
            try:
                outcomes = [await _handle_as_current(handle, batch, event) for event in events]
                if batch.deliveries:
                    await asyncio.gather(*batch.deliveries)
                await pipeline.sink.write(batch.rows)
                for hook in batch.after_write:
                    await hook()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or an infrastructure failure: never ack what was not written.
                logger.exception("batch of %d events failed; retrying", len(events))
                await asyncio.sleep(1.0)
        visible = time.time()
        counts: Counter[tuple[str, str]] = Counter()
        for event, outcome in zip(events, outcomes, strict=True):
            counts[event.message.topic, outcome.value] += 1
            if event.message.timestamp:
                END_TO_END_SECONDS.observe(max(0.0, visible - event.message.timestamp))
            await stream.ack(event)
        for (topic, outcome_label), n in counts.items():
            EVENTS.labels(topic, outcome_label).inc(n)
        SINK_BATCH_SECONDS.observe(time.perf_counter() - started)

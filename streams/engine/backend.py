"""What the engine's rules need of a back-end (Faust, a plain aiokafka consumer group, the fakes of
the unit tests): a consumer group's rebalances, a row writer, a forwarder, the table changes to
publish, the current-event hook, and how the back-end's exceptions are classified.

The rules (``streams.engine.loop``) import no client: each back-end (``streams.engine.faust``,
``streams.engine.aiokafka``) implements these and hands them over (arroyo's
``backends/abstract.py``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sinks.tables import Row, Table
from streams.engine.batch import Forward

__all__ = [
    "ChangeFlusher",
    "EventScope",
    "Faults",
    "Forwarder",
    "Group",
    "RowWriter",
    "send_all",
]

logger = logging.getLogger(__name__)

#: Exception types, as ``isinstance`` takes them.
Types = tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Faults:
    """How a back-end's exceptions are classified for the error policy."""

    #: Not a message's fault (a client or its broker unavailable, metadata not settled after a
    #: broker restart): retried in place, never dead-lettered.
    infrastructure: Types = ()
    #: ... except these, which are about a message's own bytes (Faust's ``DecodeError``): its
    #: message is dead-lettered.
    message: Types = ()
    #: What the producer or the broker says of one record, not of the cluster: too large (Kafka
    #: Streams' ``RecordTooLargeException``) or invalid. Never retried: the record's message is
    #: dead-lettered.
    refused: Types = ()


class Group(Protocol):
    """What the engine knows of its consumer group (Faust's app, a plain consumer's rebalance
    listener; a fake in unit tests)."""

    #: Rebalances begun so far (counted from the consumer's revocation callback, before anything
    #: of the rebalance runs on the event loop).
    rebalances: int

    def rebalancing(self) -> bool: ...

    def generation(self) -> int | None: ...


class RowWriter(Protocol):
    """Stores rows: retries unavailability in place, raises ``RowsRejected`` for refused data."""

    async def insert(self, table: Table, rows: Sequence[Row]) -> None: ...


class ChangeFlusher(Protocol):
    """Writes the table changes handlers made to their stores, and publishes them (Faust's
    ``Changelog``); none in unit tests."""

    def write(self) -> None:
        """Write the changes made so far to their stores (synchronously: no rebalance can revoke
        their partitions meanwhile)."""
        ...

    async def flush(self) -> None:
        """Write the changes made so far to their stores, and publish them to their changelogs."""
        ...


class Forwarder(Protocol):
    """Publishes messages; returns, per message, None when delivered or the error.
    ``refused_record`` says which of those errors are records the producer or the broker refused
    (its back-end's ``Faults.refused``)."""

    refused_record: Types

    async def deliver(self, forwards: Sequence[Forward]) -> list[BaseException | None]: ...


class EventScope(Protocol):
    """The current-event hook: a back-end that routes table changes by the event being handled
    (Faust) is told, before each message's handler, which native event it came from; the scope
    restores what was current when the batch ends."""

    def __enter__(self) -> EventScope: ...

    def enter(self, native: Any) -> None: ...

    def __exit__(self, *exc: object) -> None: ...


async def send_all(
    forwards: Sequence[Forward], send: Callable[[Forward], Awaitable[Any]]
) -> list[BaseException | None]:
    """A forwarder's ``deliver``: buffer every forward (``send`` returns an awaitable
    acknowledgement), then wait for each; one result per forward (None when acknowledged). A
    forward that could not even be buffered is reported, and retried by the engine."""
    pending: list[Any] = []
    for f in forwards:
        try:
            pending.append(await send(f))
        except Exception as exc:
            pending.append(exc)
    results: list[BaseException | None] = []
    for p in pending:
        if isinstance(p, BaseException):
            results.append(p)
            continue
        try:
            await p
            results.append(None)
        except Exception as exc:
            results.append(exc)
    return results

"""A broken Kafka connection must fail its request, not the client.

aiokafka's ``AIOKafkaConnection.send`` turns an ``OSError`` from writing to its socket into a
``KafkaConnectionError``, which every caller retries. Under uvloop (the worker's event loop),
writing to a transport that the peer has already closed raises ``RuntimeError`` ("unable to
perform operation on <TCPTransport closed=True ...>; the handler is closed") instead; asyncio's
own loop ignores the write. That happens when a broker dies between the connection check and the
write. When the write was a metadata request, the ``RuntimeError`` ends the client's metadata
task without a log line, and every later metadata refresh waits forever. Found with the fault
suite: after a 20 s broker outage the consumer's group coordinator waited on such a refresh, the
offset commit waited on the coordinator, Faust's fetcher waited on the commit, and the worker
consumed nothing while reporting itself ready.

``treat_closed_transports_as_broken()`` makes such a write what it is, a broken connection.
"""

# Works around aio-libs/aiokafka issue #1038 ("Closing of connection from server don't caught for
# uvloop", open): ``AIOKafkaConnection.send`` catches only ``OSError`` around its write
# (aiokafka/conn.py), and uvloop raises ``RuntimeError`` there (MagicStack/uvloop issue #506).

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError

__all__ = ["treat_closed_transports_as_broken"]

_PATCHED = "_dampak_closed_transport_guard"


def treat_closed_transports_as_broken() -> None:
    """Patch aiokafka's connection (once per process)."""
    if getattr(AIOKafkaConnection, _PATCHED, False):
        return
    AIOKafkaConnection.send = broken_on_closed_transport(AIOKafkaConnection.send)
    AIOKafkaConnection._send_sasl_token = broken_on_closed_transport(AIOKafkaConnection._send_sasl_token)
    setattr(AIOKafkaConnection, _PATCHED, True)


def broken_on_closed_transport(send: Callable[..., Any]) -> Callable[..., Any]:
    """``send``, raising ``KafkaConnectionError`` (and closing the connection) where the write to a
    closed transport raised ``RuntimeError``."""

    @functools.wraps(send)
    def guarded_send(conn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return send(conn, *args, **kwargs)
        except RuntimeError as exc:
            conn.close(reason=CloseReason.CONNECTION_BROKEN, exc=exc)
            raise KafkaConnectionError(f"Connection at {conn.host}:{conn.port} broken: {exc}") from exc

    return guarded_send

"""A Kafka connection whose broker went away, under uvloop: the request fails as a broken
connection (which aiokafka's callers retry), never with the RuntimeError that ends its metadata
task. A real socket, closed by the peer; no broker needed."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
import uvloop
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from streams.engine.aiokafka.connections import broken_on_closed_transport

#: aiokafka's own send, even when another test of this process patched the class.
_UNPATCHED_SEND = getattr(AIOKafkaConnection.send, "__wrapped__", AIOKafkaConnection.send)


async def _send_after_the_peer_closed(send: object) -> BaseException | None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # As a SIGKILLed broker does: the kernel resets the connection.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = AIOKafkaConnection("127.0.0.1", port)
    conn._reader, conn._writer = await asyncio.open_connection("127.0.0.1", port)
    conn._versions = {MetadataRequest.API_KEY: (0, 0)}  # as learnt in the handshake
    conn._read_task = asyncio.get_running_loop().create_future()  # its reader, idle
    await asyncio.sleep(0.2)  # the reset arrives: uvloop closes the transport
    assert conn.connected()  # what aiokafka checks before sending: the reader saw no EOF
    try:
        pending = send(conn, MetadataRequest([]))  # type: ignore[operator]
        if asyncio.isfuture(pending) or asyncio.iscoroutine(pending):
            pending.close() if asyncio.iscoroutine(pending) else pending.cancel()
        return None
    except BaseException as exc:
        return exc
    finally:
        server.close()


def test_uvloop_raises_runtime_error_on_a_closed_transport_unpatched() -> None:
    """Why the patch exists: aiokafka's own send lets the RuntimeError through under uvloop."""
    error = uvloop.run(_send_after_the_peer_closed(_UNPATCHED_SEND))
    assert isinstance(error, RuntimeError) and "closed" in str(error)


def test_a_write_to_a_closed_transport_is_a_broken_connection() -> None:
    guarded = broken_on_closed_transport(AIOKafkaConnection.send)
    error = uvloop.run(_send_after_the_peer_closed(guarded))
    with pytest.raises(KafkaConnectionError, match="broken"):
        raise error if error else AssertionError("the write did not fail")


def test_a_worker_whose_kafka_metadata_task_ended_is_not_ready() -> None:
    """The safety net for any other cause: /readyz says so instead of "ready"."""
    from types import SimpleNamespace

    from streams.ops.web import worker_ready

    async def ended() -> None:
        raise RuntimeError("the handler is closed")

    async def main() -> tuple[bool, bool]:
        running = asyncio.ensure_future(asyncio.sleep(10))
        dead = asyncio.ensure_future(ended())
        await asyncio.sleep(0.01)

        def app(task: asyncio.Future[None]) -> SimpleNamespace:
            client = SimpleNamespace(_sync_task=task)
            consumer = SimpleNamespace(_thread=SimpleNamespace(_consumer=SimpleNamespace(_client=client)),
                                       assignment=lambda: {"tp"})  # fmt: skip
            return SimpleNamespace(
                consumer=consumer,
                producer=SimpleNamespace(
                    _producer=SimpleNamespace(client=SimpleNamespace(_sync_task=running))
                ),
                rebalancing=False,
                tables=SimpleNamespace(actives_ready=True),
                in_recovery=False,
            )

        alive, _ = worker_ready(app(running))
        stalled, checks = worker_ready(app(dead))
        running.cancel()
        assert checks["kafka_metadata"] is False
        return alive, stalled

    assert asyncio.run(main()) == (True, False)


def test_a_worker_whose_consumer_thread_has_not_started_is_not_ready() -> None:
    """/readyz answered 500 when polled between the web server's start and the consumer's."""
    from types import SimpleNamespace

    from faust.exceptions import ConsumerNotStarted

    from streams.ops.web import worker_ready

    def not_started() -> set[str]:
        raise ConsumerNotStarted("Consumer thread not yet started")

    app = SimpleNamespace(
        consumer=SimpleNamespace(_thread=SimpleNamespace(), assignment=not_started),
        producer=SimpleNamespace(),
        rebalancing=False,
        tables=SimpleNamespace(actives_ready=False),
        in_recovery=True,
    )
    ready, checks = worker_ready(app)
    assert ready is False and checks["partitions_assigned"] is False

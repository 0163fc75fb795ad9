"""The worker's ``POST /query`` answers: the bound on concurrent analyst queries is a clear 503,
never a wait without end (issue 27, case 8)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sinks.connection import Connection, ConnectionPool
from streams.ops.web import QueryEndpoint
from streams.settings import Settings

HEADERS = {"Host": "127.0.0.1:6066", "Content-Type": "application/json"}


class Unused:
    """A client the endpoint never reaches while its one connection is held."""

    def close(self) -> None:
        pass


def test_a_query_that_finds_every_connection_busy_is_answered_503() -> None:
    async def scenario() -> tuple[int, Any, float]:
        settings = Settings(clickhouse={"query_concurrency": 1, "query_wait_s": 0.1})
        pool = ConnectionPool([Connection(Unused(), "dampak")], settings.clickhouse.query_wait_s)  # type: ignore[arg-type]
        endpoint = QueryEndpoint(settings, pool)
        release = threading.Event()
        held = asyncio.ensure_future(pool.run(lambda client: release.wait(5)))
        await asyncio.sleep(0.01)

        async def body() -> dict[str, Any]:
            return {"sql": "SELECT 1"}

        started = asyncio.get_running_loop().time()
        try:
            status, answer = await endpoint.answer("POST", HEADERS, body)
        finally:
            release.set()
        waited = asyncio.get_running_loop().time() - started
        await held
        pool.close()
        return status, answer, waited

    status, answer, waited = asyncio.run(scenario())
    assert status == 503
    assert answer["error"].startswith("all 1 analyst connections are busy")
    assert 0.1 <= waited < 1.0

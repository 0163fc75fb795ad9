"""Opening ClickHouse through clickhouse-connect (one code path for embedded chDB and a server),
the embedded ClickHouse's single-process lock, and the I/O thread that ClickHouse calls run on."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from sinks.config import ClickHouseTarget
from sinks.errors import QueryBusy

__all__ = [
    "Connection",
    "ConnectionPool",
    "clickhouse_lock",
    "connect",
    "forget_holder",
    "holder",
    "record_holder",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def connect(target: ClickHouseTarget) -> Client:
    """Open a client for ``target`` (``chdb://path`` or ``http(s)://user:pw@host:port/db``) and
    create its database. For the embedded ClickHouse the data directory is created first; only one
    process may hold it (see ``clickhouse_lock``)."""
    if target.embedded:
        Path(target.dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    client = clickhouse_connect.get_client(dsn=target.dsn)
    client.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
    client.database = target.database  # unqualified names are the database's
    return client


@contextmanager
def clickhouse_lock(target: ClickHouseTarget, blocking: bool) -> Iterator[bool]:
    """Hold the embedded ClickHouse's lock file; yields False if another process holds it.

    chDB admits one process per data directory; the lock says which one (the worker, or a CLI
    command that opens ClickHouse directly).
    """
    target.state_dir.mkdir(parents=True, exist_ok=True)
    with open(target.lock_file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Connection:
    """One client and the one thread its calls run on (a clickhouse-connect client is not safe to
    share between threads, and the embedded ClickHouse admits one session)."""

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking call on the I/O thread."""
        return await asyncio.get_running_loop().run_in_executor(self._io, call, *args)

    def close(self) -> None:
        self._io.shutdown(wait=True)
        self.client.close()


class ConnectionPool:
    """A few connections, each on its own thread, for reads that must not wait for each other
    (analyst queries): a slow query holds one connection, the others stay free.

    The connections are the bound on concurrent queries (a semaphore of their number): a call
    waits at most ``wait_s`` for a free one, then raises QueryBusy instead of queueing without end.
    """

    def __init__(self, connections: list[Connection], wait_s: float = 5.0) -> None:
        self._free: asyncio.Queue[Connection] = asyncio.Queue()
        self._all = connections
        self._wait_s = wait_s
        for conn in connections:
            self._free.put_nowait(conn)

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run ``call(client, *args)`` on a free connection's thread. Raises QueryBusy when none
        is free within ``wait_s``."""
        try:
            conn = await asyncio.wait_for(self._free.get(), timeout=self._wait_s or None)
        except TimeoutError:
            raise QueryBusy(
                f"all {len(self._all)} analyst connections are busy (DAMPAK_CLICKHOUSE__QUERY_CONCURRENCY);"
                f" waited {self._wait_s:g} s (__QUERY_WAIT_S): try again"
            ) from None
        try:
            return await conn.run(call, conn.client, *args)
        finally:
            self._free.put_nowait(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()


def record_holder(target: ClickHouseTarget, pid: int, url: str) -> None:
    """Record the process that holds the embedded ClickHouse and where it serves queries."""
    target.worker_file.write_text(json.dumps({"pid": pid, "url": url}))


def forget_holder(target: ClickHouseTarget) -> None:
    target.worker_file.unlink(missing_ok=True)


def holder(target: ClickHouseTarget) -> dict[str, Any] | None:
    """The recorded holder of the embedded ClickHouse while it holds it (else None)."""
    if not target.worker_file.exists():
        return None
    with clickhouse_lock(target, blocking=False) as free:
        if free:
            return None
    try:
        record: dict[str, Any] = json.loads(target.worker_file.read_text())
    except (OSError, ValueError):
        return None
    return record

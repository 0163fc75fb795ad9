"""Running the Faust worker: the shared start-up (``streams.runtime.startup``), the bulk restore of
its local tables, then Faust's worker until a clean shutdown."""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.request
from typing import Any

from streams.errors import DampakError
from streams.runtime.startup import (
    check_port_free,
    check_recorded_key,
    check_secrets,
    held_clickhouse,
    tune_garbage_collection,
)
from streams.settings import Settings

__all__ = ["run_worker", "wait_until_ready"]

logger = logging.getLogger(__name__)


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Poll a worker's ``/readyz`` at ``url`` until it is ready; returns the seconds it took.

    Raises DampakError when the process exits first or the timeout passes.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            raise DampakError(f"the worker exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                if json.loads(resp.read()).get("ready"):
                    return time.monotonic() - started
        except (OSError, ValueError):
            pass  # not listening yet, or 503 while recovering
        time.sleep(0.1)
    raise DampakError(f"the worker was not ready within {timeout_s:.0f}s")


def run_worker(settings: Settings) -> int:
    """Run the worker until SIGTERM/SIGINT. Migrations are applied first; topics are created.

    Raises DampakError when Kafka does not answer or another worker holds the embedded ClickHouse.
    """
    import asyncio

    import uvloop

    from sinks.connection import Connection, ConnectionPool, connect
    from streams.engine.aiokafka.connections import treat_closed_transports_as_broken
    from streams.ops.admin import carry_over_input_offsets, check_kafka, ensure_topics
    from streams.runtime.app import ClickHouseConnections, create_app

    check_secrets(settings)
    check_port_free(settings)
    check_kafka(settings)
    ensure_topics(settings)
    carry_over_input_offsets(settings)
    # uvloop's event loop: a worker spends about a third of its time in the loop itself.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    treat_closed_transports_as_broken()
    if settings.role == "compute":
        _check_key_with_writer(settings)
        app, tables = create_app(settings, None)
        return _execute(settings, app, tables)
    with held_clickhouse(settings) as (target, client):
        clickhouse = ClickHouseConnections(
            writes=Connection(client, target.database),
            reads=Connection(connect(target), target.database),
            checks=Connection(connect(target), target.database),
            queries=ConnectionPool(
                [
                    Connection(connect(target), target.database)
                    for _ in range(settings.clickhouse.query_concurrency)
                ],
                settings.clickhouse.query_wait_s,
            ),
        )
        app, tables = create_app(settings, clickhouse)
        try:
            return _execute(settings, app, tables)
        finally:
            clickhouse.queries.close()
            clickhouse.checks.close()
            clickhouse.reads.close()
            clickhouse.writes.close()


def _execute(settings: Settings, app: Any, tables: dict[str, Any]) -> int:
    """Check the local tables against their changelogs, restore them in bulk, then run Faust's
    worker until it stops; its exit code (``STALE_STATE_EXIT`` when the tables disagree with their
    changelogs, with one error line that names the command that fixes it)."""
    import faust

    from streams.runtime.restore import STALE_STATE_EXIT, StaleLocalState, bulk_restore, check_local_state

    if settings.tables.rocksdb:
        try:
            check_local_state(settings, tables)
        except StaleLocalState as exc:
            logger.error("%s", exc)
            return STALE_STATE_EXIT
    if settings.tables.bulk_restore and settings.tables.rocksdb:
        bulk_restore(settings, tables)
    worker = faust.Worker(app, loglevel=settings.log_level)
    tune_garbage_collection()
    # Faust's terminal spinner, on at WARNING and above, lowers the root logger to DEBUG so that it
    # spins on every record: every debug call then builds a record. A service has no terminal to spin.
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _check_key_with_writer(settings: Settings) -> None:
    """A compute worker pseudonymises: its key must be the one the stored pseudonyms use (asked of
    the writer, which records it)."""
    import asyncio

    from sinks.reader import ClickHouseReader, RemoteRuns

    token = settings.web.token.get_secret_value() if settings.web.token else None
    reader = ClickHouseReader(
        RemoteRuns(settings.writer_url, settings.clickhouse.database, token, settings.sink.retry)
    )
    check_recorded_key(asyncio.new_event_loop().run_until_complete(reader.key_record()), settings.privacy)

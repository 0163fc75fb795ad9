"""Running the Faust worker: preflight checks, ownership of the embedded engine, clean shutdown."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["check_port_free", "check_secrets", "held_engine", "run_worker", "wait_until_ready"]

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


def check_port_free(settings: Settings) -> None:
    """Raises DampakError when the HTTP port is taken (another worker, most likely): Faust would
    log the bind error and run on without health, metrics or the page."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in settings.web.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.web.host, settings.web.port))
        except OSError as exc:
            raise DampakError(
                f"{settings.web.host}:{settings.web.port} is in use ({exc.strerror}): another worker? "
                "Stop it, or set DAMPAK_WEB__PORT"
            ) from exc


def check_secrets(settings: Settings) -> None:
    """Refuse to run with the built-in pseudonym key outside local development (anyone who knows
    it can reverse NIK pseudonyms by enumeration), and to serve queries beyond loopback without a
    token. Raises DampakError."""
    if settings.privacy.uses_default_key and not settings.dev_mode:
        raise DampakError(
            "the pseudonym key is the built-in development key: set DAMPAK_PRIVACY__HMAC_KEY (and "
            "__KEY_ID), or DAMPAK_DEV_MODE=true for local development"
        )
    if not settings.web.loopback and settings.web.token is None:
        raise DampakError(
            f"the worker would serve /query on {settings.web.host} without a token: set DAMPAK_WEB__TOKEN"
        )


def run_worker(settings: Settings) -> int:
    """Run the worker until SIGTERM/SIGINT. Migrations are applied first; topics are created.

    Raises DampakError when Kafka does not answer or another worker holds the embedded engine.
    """
    import asyncio

    import uvloop

    from sinks.connection import Connection, ConnectionPool, connect
    from streams.admin import carry_over_input_offsets, check_kafka, ensure_topics
    from streams.app import Engines, create_app
    from streams.engine.connections import treat_closed_transports_as_broken

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
    with held_engine(settings) as (target, client):
        engines = Engines(
            writes=Connection(client, target.database),
            reads=Connection(connect(target), target.database),
            checks=Connection(connect(target), target.database),
            queries=ConnectionPool(
                [
                    Connection(connect(target), target.database)
                    for _ in range(settings.clickhouse.query_concurrency)
                ]
            ),
        )
        app, tables = create_app(settings, engines)
        try:
            return _execute(settings, app, tables)
        finally:
            engines.queries.close()
            engines.checks.close()
            engines.reads.close()
            engines.writes.close()


@contextlib.contextmanager
def held_engine(settings: Settings) -> Iterator[tuple[Any, Any]]:
    """Hold the ClickHouse engine for this process (the worker, or the writer): the embedded
    engine's lock, migrations applied, no key rotation pending, and this process recorded as the
    holder that ``dampak query`` goes through. Yields the target and a client. Raises DampakError
    when another process holds the embedded engine."""
    from sinks.connection import connect, engine_lock, forget_holder, record_holder
    from sinks.migrations import init_db
    from streams.rotation import check_no_rotation_pending

    target = settings.clickhouse_target
    with engine_lock(target, blocking=False) as free:
        if target.embedded and not free:
            raise DampakError(f"another process holds the embedded ClickHouse engine in {settings.data_dir}")
        client = connect(target)
        init_db(client, target.database, server=not target.embedded)
        check_no_rotation_pending(client, target.database, settings.privacy.key_id)
        record_holder(target, os.getpid(), f"http://{settings.web.host}:{settings.web.port}")
        try:
            yield target, client
        finally:
            forget_holder(target)


def tune_garbage_collection() -> None:
    """Set the garbage collector for a process that streams, once it has started.

    What start-up built (modules, the app, its settings: some 200,000 objects) lives as long as the
    process: frozen out of the collector's sight, a full collection walks only what the stream made
    since. And a stream allocates many short-lived objects per message: a young generation of
    20,000 (CPython's default is 700) collects a tenth as often, for about 6% more households/s in
    a registry load (2026-12-03, 16,408 vs 15,486 households/s, one run each).
    """
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def _execute(settings: Settings, app: Any, tables: dict[str, Any]) -> int:
    """Restore the tables in bulk, then run Faust's worker until it stops; its exit code."""
    import faust

    from streams.restore import bulk_restore

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
    recorded = asyncio.new_event_loop().run_until_complete(reader.key_id())
    if recorded is not None and recorded != settings.privacy.key_id:
        raise DampakError(
            f"ClickHouse holds pseudonyms of key {recorded!r}, and this worker's key is "
            f"{settings.privacy.key_id!r}: run `dampak rotate-key` first"
        )

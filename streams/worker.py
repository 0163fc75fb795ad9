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

__all__ = [
    "check_port_free",
    "check_secrets",
    "held_engine",
    "open_engine",
    "run_worker",
    "wait_until_ready",
]

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
    """Refuse to run with the built-in pseudonym key, or a placeholder key or web token, outside
    local development (anyone who knows the key can reverse NIK pseudonyms by enumeration), and to
    serve queries beyond loopback without a token. Raises DampakError."""
    if settings.privacy.uses_placeholder_key and not settings.dev_mode:
        which = "the built-in development key" if settings.privacy.uses_default_key else "a placeholder"
        raise DampakError(
            f"the pseudonym key is {which}: set DAMPAK_PRIVACY__HMAC_KEY to a secret (and "
            "__KEY_ID), or DAMPAK_DEV_MODE=true for local development"
        )
    if settings.web.token_is_placeholder and not settings.dev_mode:
        raise DampakError(
            "DAMPAK_WEB__TOKEN is a placeholder: set it to a secret (e.g. `openssl rand -hex 32`)"
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
                ],
                settings.clickhouse.query_wait_s,
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
    from sinks.connection import engine_lock, forget_holder, record_holder

    target = settings.clickhouse_target
    with engine_lock(target, blocking=False) as free:
        if target.embedded and not free:
            raise DampakError(f"another process holds the embedded ClickHouse engine in {settings.data_dir}")
        client = open_engine(settings, target)
        record_holder(target, os.getpid(), f"http://{settings.web.host}:{settings.web.port}")
        try:
            yield target, client
        finally:
            forget_holder(target)


def open_engine(settings: Settings, target: Any) -> Any:
    """Open ClickHouse, apply the migrations and check the pseudonym key; returns the client.

    An infrastructure fault on the way (ClickHouse unreachable, its disk full: what the write path
    retries mid-stream) is retried in place along ``sink.retry``, with one warning per retry, so
    that a worker started during the fault waits for it to pass instead of dying at its first
    insert. Anything else is raised: a DampakError (a rotation pending, another key) as it is,
    ClickHouse refusing the statement itself as RowsRejected.
    """
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from sinks.connection import connect
    from sinks.errors import SinkUnavailable
    from sinks.migrations import init_db
    from sinks.writer import classify
    from streams.rotation import check_no_rotation_pending

    delays = settings.sink.retry.delays()
    client = None
    while True:
        try:
            if client is None:
                client = connect(target)
            init_db(client, target.database, server=not target.embedded)
            check_no_rotation_pending(client, target.database, settings.privacy)
            return client
        except (ClickHouseError, OSError) as exc:
            error = classify("migrations and key check", exc)
            if not isinstance(error, SinkUnavailable):
                raise error from exc
            delay = next(delays)
            logger.warning(
                "ClickHouse cannot take the worker's start-up yet (%s); retrying in %.1fs", error, delay
            )
            time.sleep(delay)


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
    """Check the local tables against their changelogs, restore them in bulk, then run Faust's
    worker until it stops; its exit code (``STALE_STATE_EXIT`` when the tables disagree with their
    changelogs, with one error line that names the command that fixes it)."""
    import faust

    from streams.restore import STALE_STATE_EXIT, StaleLocalState, bulk_restore, check_local_state

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
    from streams.rotation import check_recorded_key

    check_recorded_key(asyncio.new_event_loop().run_until_complete(reader.key_record()), settings.privacy)

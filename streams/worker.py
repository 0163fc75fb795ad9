"""Running the Faust worker: preflight checks, ownership of the embedded engine, clean shutdown."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import urllib.request

from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["check_secrets", "run_worker", "wait_until_ready"]

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

    import faust
    import uvloop

    from sinks.connection import (
        Connection,
        ConnectionPool,
        connect,
        engine_lock,
        forget_holder,
        record_holder,
    )
    from sinks.migrations import init_db
    from streams.admin import check_kafka, ensure_topics
    from streams.app import create_app
    from streams.restore import bulk_restore
    from streams.rotation import check_no_rotation_pending

    check_secrets(settings)
    check_kafka(settings)
    ensure_topics(settings)
    # uvloop's event loop: a worker spends about a third of its time in the loop itself.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    target = settings.clickhouse_target
    with engine_lock(target, blocking=False) as free:
        if target.embedded and not free:
            raise DampakError(f"another process holds the embedded ClickHouse engine in {settings.data_dir}")
        client = connect(target)
        init_db(client, target.database, server=not target.embedded)
        check_no_rotation_pending(client, target.database, settings.privacy.key_id)
        writes = Connection(client, target.database)
        reads = Connection(connect(target), target.database)
        queries = ConnectionPool(
            [
                Connection(connect(target), target.database)
                for _ in range(settings.clickhouse.query_concurrency)
            ]
        )
        app, tables = create_app(settings, writes, reads, queries)
        if settings.tables.bulk_restore and settings.tables.rocksdb:
            bulk_restore(settings, tables)
        record_holder(target, os.getpid(), f"http://{settings.web.host}:{settings.web.port}")
        worker = faust.Worker(app, loglevel=settings.log_level)
        # Faust's terminal spinner, on at WARNING and above, lowers the root logger to DEBUG so
        # that it spins on every record: every debug call then builds a record. A service has
        # no terminal to spin.
        worker.spinner = None
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
        finally:
            forget_holder(target)
            queries.close()
            reads.close()
            writes.close()
    return 0

"""Running the Faust worker: preflight checks, ownership of the embedded engine, clean shutdown."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["engine_lock", "run_worker", "wait_until_ready", "worker_file"]

logger = logging.getLogger(__name__)


def worker_file(settings: Settings) -> Path:
    """Where a running worker records its pid and HTTP address."""
    return settings.data_dir / "worker.json"


@contextmanager
def engine_lock(settings: Settings, blocking: bool) -> Iterator[bool]:
    """Hold the embedded engine's lock file; yields False if another process holds it.

    chDB admits one process per data directory; the lock says which one (the worker, or a CLI
    command that opens the engine directly).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "clickhouse.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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

    Raises DampakError when Kafka does not answer or another worker holds the embedded engine.
    """
    import asyncio

    import faust
    import uvloop

    from sinks.clickhouse import ClickHouseSink, connect, init_db
    from streams.admin import ensure_topics
    from streams.app import create_app
    from streams.localstack import broker_answers
    from streams.restore import bulk_restore

    if not broker_answers(settings.kafka.bootstrap_servers, **settings.kafka.client_options()):
        hint = " (run `dampak up`)" if settings.uses_local_kafka else ""
        raise DampakError(f"no Kafka broker answers at {settings.kafka.bootstrap_servers}{hint}")
    ensure_topics(settings)
    # uvloop's event loop: a worker spends about a third of its time in the loop itself.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with engine_lock(settings, blocking=False) as free:
        if settings.embedded_clickhouse and not free:
            raise DampakError(f"another process holds the embedded ClickHouse engine in {settings.data_dir}")
        client = connect(settings)
        init_db(settings, client)
        sink = ClickHouseSink(client, settings.clickhouse.database, settings.sink)
        app, pipeline = create_app(settings, sink)
        if settings.tables.bulk_restore and settings.tables.rocksdb:
            bulk_restore(settings, pipeline.tables)
        url = f"http://{settings.web.host}:{settings.web.port}"
        worker_file(settings).write_text(json.dumps({"pid": os.getpid(), "url": url}))
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
            worker_file(settings).unlink(missing_ok=True)
            sink.close()
    return 0

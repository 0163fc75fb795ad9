"""The start-up the worker and the writer share: the checks before a process serves (its HTTP
port free, no placeholder secrets, the pseudonym key the one the stored pseudonyms use) and the
hold on ClickHouse (its lock, migrations, this process recorded as the holder), then the garbage
collector set for streaming. ``dampak rotate-key`` records the key these checks compare against."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.keys import record_key_id, recorded_key
from streams.errors import DampakError
from streams.settings import PrivacySettings, Settings

__all__ = [
    "check_no_rotation_pending",
    "check_port_free",
    "check_recorded_key",
    "check_secrets",
    "held_clickhouse",
    "key_fingerprint",
    "open_clickhouse",
    "tune_garbage_collection",
]

logger = logging.getLogger(__name__)

# What a key's fingerprint is the HMAC of. Every pseudonym's input is ``<field>:<value>``, with a
# colon; this label has none, so no fingerprint is ever a pseudonym and no pseudonym a fingerprint.
_FINGERPRINT_LABEL = b"dampak pseudonym key fingerprint v1"


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


@contextlib.contextmanager
def held_clickhouse(settings: Settings) -> Iterator[tuple[Any, Any]]:
    """Hold ClickHouse for this process (the worker, or the writer): the embedded ClickHouse's
    lock, migrations applied, no key rotation pending, and this process recorded as the holder
    that ``dampak query`` goes through. Yields the target and a client. Raises DampakError when
    another process holds the embedded ClickHouse."""
    from sinks.connection import clickhouse_lock, forget_holder, record_holder

    target = settings.clickhouse_target
    with clickhouse_lock(target, blocking=False) as free:
        if target.embedded and not free:
            raise DampakError(f"another process holds the embedded ClickHouse engine in {settings.data_dir}")
        client = open_clickhouse(settings, target)
        record_holder(target, os.getpid(), f"http://{settings.web.host}:{settings.web.port}")
        try:
            yield target, client
        finally:
            forget_holder(target)


def open_clickhouse(settings: Settings, target: Any) -> Any:
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

    delays = settings.sink.retry.delays()
    client = None
    while True:
        try:
            if client is None:
                client = connect(target)
            init_db(client, target.database, server=not target.embedded, rates=settings.entitlements.rates())
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


def key_fingerprint(privacy: PrivacySettings) -> str:
    """The fingerprint of the pseudonym key: HMAC-SHA256 of a fixed label under the key (32 hex).
    It tells two keys apart without revealing either."""
    key = privacy.hmac_key.get_secret_value().encode()
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:32]


def check_recorded_key(recorded: tuple[str, str] | None, privacy: PrivacySettings) -> bool:
    """Check the key recorded with the stored pseudonyms (key id, fingerprint) against
    ``privacy``; returns whether ``privacy``'s key is still to be recorded (none is, or it was
    recorded before fingerprints were).

    Raises DampakError when the pseudonyms were made with another key id, or with another key
    under the same id (its fingerprint differs): a worker must not mix keys."""
    if recorded is None:
        return True
    key_id, fingerprint = recorded
    if key_id != privacy.key_id:
        raise DampakError(
            f"ClickHouse holds pseudonyms of key {key_id!r}, and this worker's key is {privacy.key_id!r}: "
            "stop every worker and run `dampak rotate-key` first (README: rotating the pseudonym key)"
        )
    if fingerprint and fingerprint != key_fingerprint(privacy):
        raise DampakError(
            f"DAMPAK_PRIVACY__HMAC_KEY is not the key that ClickHouse's pseudonyms of key id {key_id!r} "
            "were made with (its fingerprint differs): the key changed but DAMPAK_PRIVACY__KEY_ID did "
            "not. Set the key back, or give the new key a new id and run `dampak rotate-key` "
            "(README: rotating the pseudonym key)"
        )
    return not fingerprint


def check_no_rotation_pending(client: Client, database: str, privacy: PrivacySettings) -> None:
    """Raise DampakError when ClickHouse holds pseudonyms of another key, or of another key under
    the same id (``check_recorded_key``); record the key's id and fingerprint when they are not
    recorded yet."""
    if check_recorded_key(recorded_key(client, database), privacy):
        record_key_id(client, database, privacy.key_id, key_fingerprint(privacy))
        logger.info("recorded pseudonym key %s with its fingerprint", privacy.key_id)

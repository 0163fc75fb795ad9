"""Which pseudonym key the pseudonyms stored in ClickHouse were made with (``privacy_keys``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sinks.tables import PRIVACY_KEYS

__all__ = ["current_key_id", "record_key_id", "recorded_key"]

logger = logging.getLogger(__name__)


def recorded_key(client: Client, database: str) -> tuple[str, str] | None:
    """The key recorded last, as (key id, fingerprint; '' when recorded before fingerprints
    were), or None when none is recorded yet."""
    table = PRIVACY_KEYS.qualified(database)
    result = client.query(f"SELECT key_id, fingerprint FROM {table} ORDER BY recorded_at DESC LIMIT 1")
    if not result.result_rows:
        return None
    key_id, fingerprint = result.result_rows[0]
    return str(key_id), str(fingerprint)


def current_key_id(client: Client, database: str) -> str | None:
    """The key id recorded last, or None when none is recorded yet."""
    recorded = recorded_key(client, database)
    return recorded[0] if recorded else None


def record_key_id(client: Client, database: str, key_id: str, fingerprint: str = "") -> None:
    """Record ``key_id`` (and the key's ``fingerprint``, never the key) as the key in use."""
    client.insert(
        PRIVACY_KEYS.qualified(database),
        [[key_id, datetime.now(UTC), fingerprint]],
        column_names=list(PRIVACY_KEYS.column_names),
    )

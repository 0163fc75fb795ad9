"""Which pseudonym key the pseudonyms stored in ClickHouse were made with (``privacy_keys``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sinks.tables import PRIVACY_KEYS

__all__ = ["current_key_id", "record_key_id"]

logger = logging.getLogger(__name__)


def current_key_id(client: Client, database: str) -> str | None:
    """The key id recorded last, or None when none is recorded yet."""
    result = client.query(
        f"SELECT key_id FROM {PRIVACY_KEYS.qualified(database)} ORDER BY recorded_at DESC LIMIT 1"
    )
    return str(result.result_rows[0][0]) if result.result_rows else None


def record_key_id(client: Client, database: str, key_id: str) -> None:
    client.insert(
        PRIVACY_KEYS.qualified(database),
        [[key_id, datetime.now(UTC)]],
        column_names=list(PRIVACY_KEYS.column_names),
    )

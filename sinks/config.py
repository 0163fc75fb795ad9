"""What the ClickHouse layer needs from settings, passed in by the caller (sinks never read the
environment nor import ``streams``): where ClickHouse is, query limits, and the retry backoff."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

__all__ = ["Backoff", "ClickHouseSettings", "ClickHouseTarget"]

logger = logging.getLogger(__name__)

#: A database name is spliced into DDL as an identifier, so it is restricted to a plain one.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class ClickHouseSettings(BaseModel):
    """Where impact tables live (``DAMPAK_CLICKHOUSE__*``). No DSN means the embedded ClickHouse (chDB)
    under the data directory."""

    dsn: str | None = None
    database: Identifier = "dampak"
    #: Limits of analysts' read-only queries (``dampak query`` and the worker's ``/query``).
    query_timeout_s: float = Field(30.0, gt=0)
    query_max_rows: int = Field(10_000, ge=1)
    query_max_memory_bytes: int = Field(2 * 1024**3, ge=16 * 1024**2)
    #: Bytes of one analyst query's result, as ClickHouse counts them (uncompressed blocks).
    query_max_result_bytes: int = Field(32 * 1024**2, ge=1024**2)
    #: Analyst queries a worker runs at once, each on its own connection (never the writer's).
    query_concurrency: int = Field(2, ge=1, le=16)
    #: How long a query waits for a free connection before the worker answers 503 (busy).
    query_wait_s: float = Field(5.0, ge=0)


class Backoff(BaseModel):
    """Capped exponential backoff of everything retried in place (ClickHouse, Kafka deliveries)."""

    initial_s: float = Field(0.1, gt=0)
    max_s: float = Field(10.0, gt=0)

    def delays(self) -> Iterator[float]:
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


@dataclass(frozen=True)
class ClickHouseTarget:
    """The resolved ClickHouse: effective DSN, database, limits, and the directory that holds the
    embedded ClickHouse's lock and the address of the worker that holds it."""

    dsn: str
    database: str
    state_dir: Path
    query_timeout_s: float = 30.0
    query_max_rows: int = 10_000
    query_max_memory_bytes: int = 2 * 1024**3
    query_max_result_bytes: int = 32 * 1024**2
    query_wait_s: float = 5.0

    @classmethod
    def of(cls, settings: ClickHouseSettings, data_dir: Path) -> ClickHouseTarget:
        return cls(
            dsn=settings.dsn or f"chdb://{data_dir / 'clickhouse'}",
            database=settings.database,
            state_dir=data_dir,
            query_timeout_s=settings.query_timeout_s,
            query_max_rows=settings.query_max_rows,
            query_max_memory_bytes=settings.query_max_memory_bytes,
            query_max_result_bytes=settings.query_max_result_bytes,
            query_wait_s=settings.query_wait_s,
        )

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "clickhouse.lock"

    @property
    def worker_file(self) -> Path:
        """Where a running worker records its pid and HTTP address."""
        return self.state_dir / "worker.json"

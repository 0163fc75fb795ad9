"""The exception hierarchy of dampak. Errors carry context and are re-raised with ``from``."""

from __future__ import annotations

import logging

__all__ = ["DampakError", "InvalidMessage", "LocalStackError", "QueryRejected", "SinkError"]

logger = logging.getLogger(__name__)


class DampakError(Exception):
    """Base of every error dampak raises on purpose."""


class InvalidMessage(DampakError):
    """A message that breaks its topic contract. It is dead-lettered, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SinkError(DampakError):
    """A ClickHouse write that failed; retried in place by the writer, never dead-lettered."""

    def __init__(self, table: str, cause: BaseException) -> None:
        code = getattr(cause, "code", None)
        super().__init__(f"writing {table} failed (ClickHouse code {code}): {cause}")
        self.table = table
        self.code = code


class QueryRejected(DampakError):
    """A query that ``dampak query`` refuses: not read-only, or the engine said no."""


class LocalStackError(DampakError):
    """The local Kafka broker could not be prepared, started or stopped."""

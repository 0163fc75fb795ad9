"""The base of dampak's exception hierarchy and the errors of the ClickHouse layer.

The base lives here because ``sinks`` never imports ``streams``; ``streams.errors`` re-exports it
with the rest of the hierarchy. Errors carry context and are re-raised with ``from``.
"""

from __future__ import annotations

import logging

__all__ = ["DampakError", "QueryBusy", "QueryRejected", "RowsRejected", "SinkError", "SinkUnavailable"]

logger = logging.getLogger(__name__)


class DampakError(Exception):
    """Base of every error dampak raises on purpose."""


class SinkError(DampakError):
    """A ClickHouse call that failed, with the table (or ``(query)``) and ClickHouse's error code."""

    def __init__(self, table: str, cause: BaseException) -> None:
        code = getattr(cause, "code", None)
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause)
        super().__init__(f"{table}: ClickHouse code {code}: {first[:500]}")
        self.table = table
        self.code = code


class SinkUnavailable(SinkError):
    """ClickHouse could not take the call (unreachable, out of space, missing table): retried in
    place with capped backoff, never dead-lettered or skipped."""


class RowsRejected(SinkError):
    """ClickHouse refused the rows themselves (a value out of range, a constraint). Retrying the
    same rows cannot succeed: the engine finds the offending message and dead-letters it."""


class QueryRejected(DampakError):
    """An analyst query that dampak refuses: not read-only, over the limits, or ClickHouse said no."""


class QueryBusy(QueryRejected):
    """Every analyst connection stayed busy for the configured wait: the query was not run (the
    worker answers 503; the caller may try again)."""

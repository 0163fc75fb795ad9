"""The exception hierarchy of dampak. Errors carry context and are re-raised with ``from``.

``DampakError`` and the ClickHouse layer's errors are defined in ``sinks.errors`` (``sinks`` never
imports ``streams``) and re-exported here, so this module names every error dampak raises:

- ``DampakError``
  - ``InvalidMessage``: a message that breaks its topic contract; dead-lettered, never retried.
  - ``SinkError``: ``SinkUnavailable`` (retried in place), ``RowsRejected`` (its message is found
    and dead-lettered).
  - ``QueryRejected``: an analyst query refused.
  - ``LocalStackError``: the local development broker could not be prepared, started or stopped.
"""

from __future__ import annotations

import logging

from sinks.errors import DampakError, QueryRejected, RowsRejected, SinkError, SinkUnavailable

__all__ = [
    "DampakError",
    "InvalidMessage",
    "LocalStackError",
    "QueryRejected",
    "RowsRejected",
    "SinkError",
    "SinkUnavailable",
]

logger = logging.getLogger(__name__)


class InvalidMessage(DampakError):
    """A message that breaks its topic contract. A handler raises it; the engine dead-letters the
    message with ``reason`` (which never contains an input value) and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalStackError(DampakError):
    """The local Kafka broker could not be prepared, started or stopped."""

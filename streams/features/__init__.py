"""The features: one module per domain flow, each a set of module-level handlers with their
dependencies passed in. ``streams.runtime.app`` wires them onto the engine as Faust agents and timers."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """The default clock of handlers (tests pass their own)."""
    return datetime.now(UTC)

"""Decoding at the edge: raw bytes to a contract model, or ``InvalidMessage`` with a reason that
names fields and never quotes an input value."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.common import describe_validation_error
from streams.errors import InvalidMessage

__all__ = ["decode", "describe_validation_error"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def decode(
    model: type[M],
    value: bytes | None,
    empty_reason: str = "empty message",
    context: dict[str, Any] | None = None,
) -> M:
    """Validate ``value`` as ``model`` (``context``: the contracts' validation context); raises
    InvalidMessage."""
    if value is None:
        raise InvalidMessage(empty_reason)
    try:
        return model.model_validate_json(value, context=context)
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc)) from exc

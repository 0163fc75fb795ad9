"""Decoding at the edge: raw bytes to a contract model, or ``InvalidMessage`` with a reason that
names fields and never quotes an input value."""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from streams.errors import InvalidMessage

__all__ = ["decode", "describe_validation_error"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line reason built from locations and messages only: input values (which may hold a NIK)
    never reach logs or dead letters."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:1000]


def decode(model: type[M], value: bytes | None, empty_reason: str = "empty message") -> M:
    """Validate ``value`` as ``model``; raises InvalidMessage."""
    if value is None:
        raise InvalidMessage(empty_reason)
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc)) from exc

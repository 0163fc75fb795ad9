"""Shared test configuration: CI turns a skipped integration test into a failure."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip locally when a service is missing; fail under CI=true, where a skip would hide it."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: integration services must be running)")
    pytest.skip(reason)

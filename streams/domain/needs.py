"""Minimum needs of displaced people, BNPB standard (Perka BNPB 7/2008).

The constants live in ``schemas.reference``, the single source for both this function
(unit-tested) and the ClickHouse view ``minimum_needs``.
"""

from __future__ import annotations

import logging

from schemas.reference import NEEDS_PER_PERSON, PREGNANT_EXTRA_RICE_KG_WEEK

__all__ = ["minimum_needs"]

logger = logging.getLogger(__name__)


def minimum_needs(displaced: float, pregnant: float = 0.0) -> dict[str, float]:
    """Needs of ``displaced`` persons, of whom ``pregnant`` are pregnant or lactating women."""
    needs = {name: displaced * per_person for name, per_person in NEEDS_PER_PERSON.items()}
    needs["rice_kg_week"] += pregnant * PREGNANT_EXTRA_RICE_KG_WEEK
    return needs

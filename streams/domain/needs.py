"""Minimum needs of displaced people, BNPB standard (Perka BNPB 7/2008).

The constants are the single source for both this function (unit-tested) and the ClickHouse view
``minimum_needs`` (built from ``NEEDS_PER_PERSON``).
"""

from __future__ import annotations

import logging

__all__ = ["NEEDS_PER_PERSON", "PREGNANT_EXTRA_RICE_KG_WEEK", "minimum_needs"]

logger = logging.getLogger(__name__)

#: Per displaced person: weekly rations, and one-off items (toilets: one per 20 persons).
NEEDS_PER_PERSON: dict[str, float] = {
    "rice_kg_week": 2.8,
    "drinking_water_l_week": 17.5,
    "clean_water_l_week": 67.0,
    "family_kits_week": 0.2,  # one per family of five
    "toilets": 0.05,
}
#: Extra rice per week for each pregnant or lactating woman among the displaced.
PREGNANT_EXTRA_RICE_KG_WEEK = 2.7


def minimum_needs(displaced: float, pregnant: float = 0.0) -> dict[str, float]:
    """Needs of ``displaced`` persons, of whom ``pregnant`` are pregnant or lactating women."""
    needs = {name: displaced * per_person for name, per_person in NEEDS_PER_PERSON.items()}
    needs["rice_kg_week"] += pregnant * PREGNANT_EXTRA_RICE_KG_WEEK
    return needs

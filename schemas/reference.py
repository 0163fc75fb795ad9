"""Public reference figures shared by the domain code and the analyst views.

Minimum needs of displaced people: Peraturan Kepala BNPB No. 7/2008 (Pedoman Tata Cara Pemberian
Bantuan Pemenuhan Kebutuhan Dasar), per displaced person.
"""

from __future__ import annotations

import logging

__all__ = ["NEEDS_PER_PERSON", "PREGNANT_EXTRA_RICE_KG_WEEK"]

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

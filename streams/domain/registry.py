"""The household registry as stream state: what the Faust table keeps per household.

State is a JSON-able typed dict, so that it round-trips through the table's changelog unchanged.
``offset`` is the position of the households message that produced the state: all messages of one
household live in one partition, so it orders every change of that household, tombstones included.
"""

from __future__ import annotations

import logging
from typing import TypedDict

from schemas.households import Household

__all__ = ["HouseholdState", "household_state", "should_apply", "tombstone_state", "vulnerable_persons"]

logger = logging.getLogger(__name__)


class HouseholdState(TypedDict):
    village_code: str
    updated_ms: int
    members: int
    desil: int | None
    programs: list[str]
    elderly: int
    disabled: int
    under5: int
    pregnant: int
    lat: float | None
    lon: float | None
    nik_head: str | None
    kk_number: str | None
    offset: int
    deleted: bool


def household_state(household: Household, offset: int) -> HouseholdState:
    h = household
    return {
        "village_code": h.village_code,
        "updated_ms": int(h.updated_at.timestamp() * 1000),
        "members": h.members,
        "desil": h.desil,
        "programs": sorted(h.programs),
        "elderly": h.elderly,
        "disabled": h.disabled,
        "under5": h.under5,
        "pregnant": h.pregnant,
        "lat": h.lat,
        "lon": h.lon,
        "nik_head": h.nik_head,
        "kk_number": h.kk_number,
        "offset": offset,
        "deleted": False,
    }


def tombstone_state(offset: int) -> HouseholdState:
    """State of a removed household: every figure empty, so enrichment reads it as unregistered."""
    return {
        "village_code": "",
        "updated_ms": 0,
        "members": 0,
        "desil": None,
        "programs": [],
        "elderly": 0,
        "disabled": 0,
        "under5": 0,
        "pregnant": 0,
        "lat": None,
        "lon": None,
        "nik_head": None,
        "kk_number": None,
        "offset": offset,
        "deleted": True,
    }


def should_apply(stored: HouseholdState | None, household: Household) -> bool:
    """An update applies unless it is strictly older than the live stored record.

    Equal ``updated_at`` re-applies: a message replayed after a crash must reproduce its writes.
    After a tombstone any update recreates the household.
    """
    if stored is None or stored["deleted"]:
        return True
    return int(household.updated_at.timestamp() * 1000) >= int(stored["updated_ms"])


def vulnerable_persons(state: HouseholdState) -> int:
    return state["elderly"] + state["disabled"] + state["under5"] + state["pregnant"]

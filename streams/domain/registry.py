"""The household registry as stream state: what the Faust table keeps per household, and its rows.

State is a plain JSON-able dict so that it round-trips through the table's changelog unchanged.
``offset`` is the position of the households message that produced the state: all messages of one
household live in one partition, so it orders every change of that household, tombstones included.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from schemas.households import Household
from streams.privacy import Pseudonymizer

__all__ = ["HouseholdState", "household_state", "registry_row", "should_apply", "tombstone_state"]

logger = logging.getLogger(__name__)

HouseholdState = dict[str, Any]

_EMPTY: HouseholdState = {
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
}


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
    return {**_EMPTY, "offset": offset, "deleted": True}


def should_apply(stored: HouseholdState | None, household: Household) -> bool:
    """An update applies unless it is strictly older than the live stored record.

    Equal ``updated_at`` re-applies: a message replayed after a crash must reproduce its writes.
    After a tombstone any update recreates the household.
    """
    if stored is None or stored["deleted"]:
        return True
    return int(household.updated_at.timestamp() * 1000) >= int(stored["updated_ms"])


def registry_row(household_id: str, state: HouseholdState, pseudo: Pseudonymizer) -> dict[str, Any]:
    """The ``registry_state`` row for one household (tombstones become ``deleted`` rows)."""
    return {
        "household_ref": pseudo.ref("household_id", household_id),
        "version": state["offset"] + 1,
        "deleted": state["deleted"],
        "village_code": state["village_code"],
        "updated_at": datetime.fromtimestamp(state["updated_ms"] / 1000, UTC),
        "members": state["members"],
        "desil": state["desil"],
        "programs": state["programs"],
        "kpm": bool(state["programs"]),
        "elderly": state["elderly"],
        "disabled": state["disabled"],
        "under5": state["under5"],
        "pregnant": state["pregnant"],
        "lat": state["lat"],
        "lon": state["lon"],
        "nik_ref": pseudo.ref("nik_head", state["nik_head"]),
        "kk_ref": pseudo.ref("kk_number", state["kk_number"]),
    }

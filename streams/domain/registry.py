"""The household registry as stream state: what the Faust table keeps per household.

State is a JSON-able typed dict, so that it round-trips through the table's changelog unchanged.
``position`` is where the message that produced the state lies on ``households-by-id`` (offset,
then index in its bundle), where dampak itself puts every message of one household on one
partition: it orders the changes of a household, tombstones included, and tells a replay after a
crash from a new change. ``seq``
counts the changes applied, and versions the household's rows. ``published_ms`` is the producer
timestamp of the message that produced the state: it orders a tombstone against a record of the
same household that a publisher sent to another partition of ``households`` (random or keyless
partitioning), whose arrival order Kafka does not keep.
"""

from __future__ import annotations

import logging
from typing import NotRequired, TypedDict

from schemas.households import Household
from streams.domain.revision import Revision

__all__ = [
    "HouseholdState",
    "decide_change",
    "household_state",
    "should_apply",
    "tombstone_state",
    "vulnerable_persons",
]

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
    position: int
    deleted: bool
    seq: int
    published_ms: int
    #: When the family left PKH (ms since the epoch), if it did; absent in states from before.
    graduated_ms: NotRequired[int | None]


def household_state(household: Household, position: int, seq: int, published_ms: int = 0) -> HouseholdState:
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
        "position": position,
        "deleted": False,
        "seq": seq,
        "published_ms": published_ms,
        "graduated_ms": int(h.pkh_graduated_at.timestamp() * 1000) if h.pkh_graduated_at else None,
    }


def tombstone_state(position: int, seq: int, published_ms: int = 0) -> HouseholdState:
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
        "position": position,
        "deleted": True,
        "seq": seq,
        "published_ms": published_ms,
    }


def should_apply(stored: HouseholdState | None, updated_ms: int) -> bool:
    """An update applies unless it is strictly older than the live stored record.

    Equal ``updated_at`` re-applies (the later message stands). After a tombstone any update
    recreates the household (``decide_change`` first sets aside one published before the
    tombstone).
    """
    if stored is None or stored["deleted"]:
        return True
    return updated_ms >= int(stored["updated_ms"])


def decide_change(
    stored: HouseholdState | None, updated_ms: int | None, position: int, published_ms: int = 0
) -> Revision:
    """What to do with a change at ``position``: a record updated at ``updated_ms``, or a tombstone
    (None), published at ``published_ms`` (its producer timestamp; 0 when unknown).

    A message at or before the stored state's position is a replay after a crash (the table ran
    ahead of the committed offset): the one that produced the state is DUPLICATE (its rows are
    written again), an earlier one STALE. Otherwise a tombstone and a record are ordered by when
    they were published, when both times are known: a tombstone published before the stored state
    is STALE, and so is a record published before (or at the same millisecond as) a stored
    tombstone, or with the stored record's ``updated_at`` but published before it. A record is
    then NEW unless it is older than the stored one (``should_apply``).
    """
    if stored is not None and position <= stored["position"]:
        return Revision.DUPLICATE if position == stored["position"] else Revision.STALE
    if stored is None:
        return Revision.NEW
    stored_ms = stored.get("published_ms", 0)
    earlier = bool(published_ms) and published_ms < stored_ms
    if updated_ms is None:
        return Revision.STALE if earlier else Revision.NEW
    if stored["deleted"]:
        return Revision.STALE if published_ms and published_ms <= stored_ms else Revision.NEW
    if updated_ms == stored["updated_ms"] and earlier:
        return Revision.STALE
    return Revision.NEW if should_apply(stored, updated_ms) else Revision.STALE


def vulnerable_persons(state: HouseholdState) -> int:
    return state["elderly"] + state["disabled"] + state["under5"] + state["pregnant"]

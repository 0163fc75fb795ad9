"""Incidents (kejadian): which events are one disaster, and where an untagged report belongs (pure).

The store applies these rules in SQL (``sinks.views``): the grouping is recomputed from the stored
alerts and operator decisions whenever they change, and untagged reports are placed at query
time, so that figures follow every new alert and every decision exactly and a replay gives the
same incidents. This module is the rules' reference implementation, which the tests hold the SQL
to.

The windows are Gardner and Knopoff's (1974), as fitted by van Stiphout et al. (2012); their
constants and sources are in ``schemas.reference``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.reference import GK_DISTANCE, GK_TIME_LARGE, GK_TIME_LARGE_FROM, GK_TIME_SMALL

__all__ = [
    "Quake",
    "damage_level",
    "decluster",
    "gardner_knopoff_window",
]

logger = logging.getLogger(__name__)


def gardner_knopoff_window(magnitude: float) -> tuple[float, float]:
    """(distance in km, time in days) of the aftershock window of a main shock of ``magnitude``."""
    distance = 10 ** (GK_DISTANCE[0] * magnitude + GK_DISTANCE[1])
    slope, intercept = GK_TIME_LARGE if magnitude >= GK_TIME_LARGE_FROM else GK_TIME_SMALL
    return distance, 10 ** (slope * magnitude + intercept)


def damage_level(hazard: str, mmi: float | None, hazard_class: str) -> int:
    """How hard an event struck a village, on one scale for every hazard (0 to 3): an
    earthquake by its PAGER intensity bin (below VI 0, felt without damage; VI 1; VII 2; VIII and
    more 3), an area hazard by its class (low 1, medium 2, high 3). Chooses between incidents
    that both cover a report's village."""
    if hazard == "earthquake":
        if mmi is None:
            return 0
        return max(0, min(3, math.floor(mmi + 0.5) - 5))
    severity = hazard_class.split(":")[1] if hazard_class.count(":") else ""
    return {"low": 1, "medium": 2, "high": 3}.get(severity, 0)


@dataclass(frozen=True)
class Quake:
    event_id: str
    time: datetime
    lat: float
    lon: float
    magnitude: float


def _distance_km(a: Quake, b: Quake) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dlon = math.radians(b.lon - a.lon)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))


def _rank(q: Quake) -> tuple[float, datetime, str]:
    """Main shocks first: the larger, then the earlier, then the smaller event id."""
    return (-q.magnitude, q.time, q.event_id)


def _covers(main: Quake, other: Quake) -> bool:
    """Whether ``other`` falls in ``main``'s aftershock window (and ranks after it)."""
    if other is main or _rank(other) <= _rank(main):
        return False
    km, days = gardner_knopoff_window(main.magnitude)
    after = other.time - main.time
    return timedelta(0) <= after <= timedelta(days=days) and _distance_km(main, other) <= km


def decluster(quakes: Sequence[Quake]) -> dict[str, str]:
    """Each earthquake's main shock (its incident), by the windows above, as the views apply them:
    a quake that no other quake's window covers is a main shock; any other joins the first-ranked
    main shock whose window covers it, or, when only aftershocks cover it, stands as a main shock
    itself. (Gardner and Knopoff's own procedure, which removes the largest event's aftershocks
    and repeats, gives the same result unless an aftershock's own aftershocks reach beyond its
    main shock's window: a chain of three windows.)"""
    mains = {q.event_id for q in quakes if not any(_covers(s, q) for s in quakes)}
    out = {}
    for q in quakes:
        covering = sorted((s for s in quakes if s.event_id in mains and _covers(s, q)), key=_rank)
        out[q.event_id] = covering[0].event_id if covering else q.event_id
    return out

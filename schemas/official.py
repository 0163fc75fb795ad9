"""BNPB's published figures for past events, shown beside dampak's reported and estimated figures
(the command-center page, ``dampak report``), so that a reader can see how close they are.

An event matches an entry when it is of the same hazard and began within ``MATCH_SECONDS`` of it,
with a magnitude within ``MATCH_MAGNITUDE`` where both have one: BMKG names events by their origin
time, and a later bulletin may revise the magnitude by a tenth or two. Live events have no entry;
BNPB's figures for them are not an input of the pipeline (yet).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["MATCH_MAGNITUDE", "MATCH_SECONDS", "OFFICIAL", "OfficialFigures", "official_figures"]

MATCH_SECONDS = 120
MATCH_MAGNITUDE = 0.3


@dataclass(frozen=True, slots=True)
class OfficialFigures:
    """One published update of an event's toll and damage (None: not published in it)."""

    hazard: str
    event_time: datetime
    magnitude: float | None
    source: str
    as_of: str
    dead: int | None
    missing: int | None
    injured: int | None
    displaced: int | None
    houses_heavy: int | None
    houses_moderate: int | None
    houses_light: int | None

    def published(self) -> dict[str, Any]:
        """The figures and their source, without the matching fields, for the page."""
        out = asdict(self)
        for key in ("hazard", "event_time", "magnitude"):
            out.pop(key)
        return out


OFFICIAL: tuple[OfficialFigures, ...] = (
    # The Cianjur earthquake (BMKG: 21 Nov 2022 13:21:10 WIB, M5.6): BNPB's update of 26 Nov 2022,
    # the figures the demo's field reports add up to.
    OfficialFigures(
        hazard="earthquake",
        event_time=datetime(2022, 11, 21, 6, 21, 10, tzinfo=UTC),
        magnitude=5.6,
        source="BNPB, pembaruan 26 Nov 2022 (Antara: https://en.antaranews.com/news/262521/"
        "death-toll-from-cianjur-quake-rises-to-318)",
        as_of="2022-11-26",
        dead=318,
        missing=14,
        injured=7_729,
        displaced=73_693,
        houses_heavy=25_186,
        houses_moderate=12_496,
        houses_light=20_367,
    ),
)


def official_figures(hazard: str, event_time: datetime, magnitude: float | None) -> OfficialFigures | None:
    """The published figures of the event that began at ``event_time`` (timezone-aware), or None."""
    for entry in OFFICIAL:
        if entry.hazard != hazard or abs((entry.event_time - event_time).total_seconds()) > MATCH_SECONDS:
            continue
        if (
            magnitude is not None
            and entry.magnitude is not None
            and abs(entry.magnitude - magnitude) > MATCH_MAGNITUDE
        ):
            continue
        return entry
    return None

"""Which notifications an estimate or the reported figures call for (pure).

Each notice has a stable id, so a crossing is notified once however often it is checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["Notice", "alert_level_notice", "displaced_notices", "unreported_notices"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notice:
    notification_id: str
    event_id: str
    kind: str
    regency_code: str
    level: str
    message: str


def displaced_notices(rows: list[tuple[str, str, str, int]], thresholds: tuple[int, ...]) -> list[Notice]:
    """Notices for every (event, regency) whose reported displaced persons reached a threshold.

    ``rows`` are (event_id, regency_code, regency_name, displaced).
    """
    return [
        Notice(
            notification_id=f"{event_id}:{regency}:displaced>={t}",
            event_id=event_id,
            kind="reported_displaced",
            regency_code=regency,
            level=str(t),
            message=f"{name or regency}: {displaced} persons reported displaced (≥ {t})",
        )
        for event_id, regency, name, displaced in rows
        for t in thresholds
        if displaced >= t
    ]


def alert_level_notice(
    event_id: str, headline: str, magnitude: float | None, level: str, deaths: str, displaced: float
) -> Notice:
    """The notice of an earthquake estimate at PAGER ``level``: ``deaths`` is the most likely
    fatality range's label, and ``displaced`` InaSAFE's nominal figure, an upper bound: no estimate
    goes out as a bare number."""
    return Notice(
        notification_id=f"{event_id}:pager:{level}",
        event_id=event_id,
        kind="alert_level",
        regency_code="",
        level=level,
        message=f"{headline or event_id}: M{magnitude}, PAGER {level}; {deaths}; "
        f"displaced at most {displaced:,.0f} (InaSAFE's nominal rate, an upper bound)",
    )


def unreported_notices(rows: list[tuple[str, str, str, str, int, int]], after_h: float) -> list[Notice]:
    """One notice per highly exposed village still unreported ``after_h`` hours after its
    exposure, for dispatching TKSK and Tagana there. ``rows`` are (incident_id, village_code,
    village name, district name, level, hours exposed)."""
    return [
        Notice(
            notification_id=f"{incident}:{village}:unreported>={after_h:g}h",
            event_id=incident,
            kind="unreported_village",
            regency_code=village[:5],
            level=str(level),
            message=f"{name or village}, {district or village[:8]}: struck (level {level} of 3), "
            f"no report for {hours} h",
        )
        for incident, village, name, district, level, hours in rows
    ]

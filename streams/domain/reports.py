"""Field reports in transit and their enrichment with the registry (pure).

A report travels as a ``ReportDoc``: the validated report, a digest of its content, and (from
``field-reports-by-id`` on) the number of the copy that stands (see ``streams.domain.revision``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import orjson

from schemas.field_reports import FieldReport
from streams.domain.registry import HouseholdState, vulnerable_persons

__all__ = ["Enrichment", "ReportDoc", "enrich", "report_doc"]

logger = logging.getLogger(__name__)


class ReportDoc(TypedDict):
    """A validated report in transit (internal topics, Faust tables): datetimes as ISO strings."""

    schema_version: int
    report_id: str
    revision: int
    retracted: bool
    event_id: str | None
    #: The hazard the report names (``None``: not named; absent in docs from before it existed).
    hazard: NotRequired[str | None]
    reported_at: str
    reporter_id: str
    reporter_role: str
    village_code: str
    household_id: str | None
    houses_light: int
    houses_moderate: int
    houses_heavy: int
    displaced: int
    dead: int
    injured: int
    missing: int
    #: The fields below came later: absent at their defaults (``_LATER_FIELDS``).
    injured_severe: NotRequired[int]
    affected_persons: NotRequired[int]
    affected_families: NotRequired[int]
    houses_submerged: NotRequired[int]
    facilities: NotRequired[dict[str, int]]
    shelter: NotRequired[dict[str, Any] | None]
    needs: list[str]
    lat: float | None
    lon: float | None
    notes: str
    #: A hash of the content above: tells a re-sent copy from a changed one.
    digest: str
    #: The number of this copy of the report (set where the copy is decided).
    copy: NotRequired[int]
    #: Where the copy arrived for its household (its position on ``field-reports-by-household``):
    #: orders the reports of one household by arrival.
    arrival: NotRequired[int]


#: Fields added to the contract after its first version, with their defaults.
_LATER_FIELDS: dict[str, object] = {
    "hazard": None,
    "injured_severe": 0,
    "affected_persons": 0,
    "affected_families": 0,
    "houses_submerged": 0,
    "facilities": {"education": 0, "health": 0, "worship": 0, "office": 0, "bridge": 0},
    "shelter": None,
}


def report_doc(report: FieldReport) -> ReportDoc:
    doc = _as_json(report)
    for name, default in _LATER_FIELDS.items():
        if doc[name] == default:
            # Left out at their defaults: a report's digest stays what it was before these fields
            # existed, so a copy re-sent across an upgrade is still a copy.
            del doc[name]
    doc["digest"] = hashlib.blake2b(
        orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=12
    ).hexdigest()
    return doc  # type: ignore[return-value]


def _as_json(report: FieldReport) -> dict[str, Any]:
    """``report.model_dump(mode="json")``, in a fifth of its time (its fields are JSON values
    already, but for the datetime, the nested models and the tuple), and the same values: the
    datetime is in UTC (``UtcDatetime``), which pydantic writes as ISO 8601 with a ``Z``."""
    doc = dict(report.__dict__)
    # As pydantic writes it (microseconds only when there are some), five times faster than
    # ``isoformat``; an offset other than UTC's never passes validation.
    at = orjson.dumps(report.reported_at, option=orjson.OPT_UTC_Z)
    if not at.endswith(b'Z"'):
        return report.model_dump(mode="json")
    doc["reported_at"] = at[1:-1].decode()
    doc["facilities"] = dict(report.facilities.__dict__)
    doc["shelter"] = None if report.shelter is None else dict(report.shelter.__dict__)
    doc["needs"] = list(report.needs)
    return doc


@dataclass(frozen=True, slots=True)
class Enrichment:
    """What the registry says about a report's household (empty for a village summary or a
    household the registry does not hold)."""

    registered: bool = False
    desil: int | None = None
    programs: tuple[str, ...] = ()
    members: int = 0
    vulnerable_persons: int = 0
    kk_number: str | None = None
    #: The household's registry change counter (versions re-enriched rows).
    seq: int = 0
    #: The family left PKH (graduasi) and receives it no more.
    graduated: bool = False

    @property
    def kpm(self) -> bool:
        """A KPM family receives a family programme: PKH or Sembako (BPNT, its earlier name)."""
        return bool(_FAMILY_PROGRAMS.intersection(self.programs))


#: Family programmes (``schemas.households.FAMILY_PROGRAMS``), with BPNT as older states name Sembako.
_FAMILY_PROGRAMS = frozenset({"PKH", "SEMBAKO", "BPNT"})


def enrich(household: HouseholdState | None) -> Enrichment:
    """The enrichment of a household-level report from its household's registry state."""
    if household is None:
        return Enrichment()
    seq = household.get("seq", 0)
    if household["deleted"]:
        return Enrichment(seq=seq)
    return Enrichment(
        registered=True,
        desil=household["desil"],
        programs=tuple(household["programs"]),
        members=household["members"],
        vulnerable_persons=vulnerable_persons(household),
        kk_number=household["kk_number"],
        seq=seq,
        graduated=household.get("graduated_ms") is not None and "PKH" not in household["programs"],
    )

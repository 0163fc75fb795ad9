"""Field-report revisions and enrichment with the registry, as pure functions.

A report's ClickHouse row carries ``version = revision * 2**40 + order + 1``: the highest revision
wins; within a revision, ``order`` is the registry offset of the household's state for a
household-level report (the latest registry state wins) and the report's own source offset for a
village summary (the copy received last wins). Rows are state, not deltas, so writing one twice
changes nothing (ReplacingMergeTree keeps one per report).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

import orjson

from schemas.field_reports import FieldReport
from streams.domain.registry import HouseholdState, vulnerable_persons

__all__ = [
    "REGISTRY_OFFSET_BITS",
    "Enrichment",
    "ReportDoc",
    "Revision",
    "decide_revision",
    "enrich",
    "report_doc",
    "row_version",
]

logger = logging.getLogger(__name__)

REGISTRY_OFFSET_BITS = 40


class ReportDoc(TypedDict):
    """A validated report in transit (repartition topic, Faust table): datetimes as ISO strings,
    plus ``digest``, a hash of its content."""

    schema_version: int
    report_id: str
    revision: int
    retracted: bool
    event_id: str | None
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
    needs: list[str]
    lat: float | None
    lon: float | None
    notes: str
    digest: str


def report_doc(report: FieldReport) -> ReportDoc:
    doc = report.model_dump(mode="json")
    doc["digest"] = hashlib.blake2b(
        orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=12
    ).hexdigest()
    return doc  # type: ignore[return-value]


class Revision(StrEnum):
    """What to do with an incoming copy of a report, against the latest one seen."""

    NEW = "new"  # first copy, higher revision, or same revision with other content: it stands
    DUPLICATE = "duplicate"  # same revision, same content: written again (the first write may be lost)
    STALE = "stale"  # lower revision: ignored


def decide_revision(stored: tuple[int, str] | None, revision: int, digest: str) -> Revision:
    """Compare an incoming revision with the latest one seen for the report (revision, digest).

    Higher: NEW (replaces). Lower: STALE (ignored). Equal with the same content: DUPLICATE, which
    callers still write, because after a crash the first copy's write may be lost. Equal with
    different content: NEW, the copy received last stands (as for village summaries, whose rows are
    ordered by their source offset).
    """
    if stored is None or revision > stored[0]:
        return Revision.NEW
    if revision < stored[0]:
        return Revision.STALE
    return Revision.DUPLICATE if digest == stored[1] else Revision.NEW


def row_version(revision: int, order: int) -> int:
    return (revision << REGISTRY_OFFSET_BITS) + order + 1


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

    @property
    def kpm(self) -> bool:
        return bool(self.programs)


def enrich(household: HouseholdState | None) -> Enrichment:
    """The enrichment of a household-level report from its household's registry state."""
    if household is None or household["deleted"]:
        return Enrichment()
    return Enrichment(
        registered=True,
        desil=household["desil"],
        programs=tuple(household["programs"]),
        members=household["members"],
        vulnerable_persons=vulnerable_persons(household),
        kk_number=household["kk_number"],
    )

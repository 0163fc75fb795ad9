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
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from schemas.common import district_of, province_of, regency_of
from schemas.field_reports import FieldReport
from streams.domain.registry import HouseholdState
from streams.privacy import Pseudonymizer

__all__ = [
    "REGISTRY_OFFSET_BITS",
    "Outcome",
    "ReportDoc",
    "decide_revision",
    "report_doc",
    "report_row",
    "row_version",
]

logger = logging.getLogger(__name__)

REGISTRY_OFFSET_BITS = 40
_NIK_LIKE = re.compile(r"\d{12,}")

#: A validated report in transit (repartition topic, Faust table): JSON-able, datetimes as ISO strings.
ReportDoc = dict[str, Any]


class Outcome(StrEnum):
    """What processing did with a message; also the ``outcome`` label of ``dampak_events_total``."""

    OK = "ok"
    DUPLICATE = "duplicate"
    STALE = "stale"
    DEAD_LETTER = "dead_letter"


def report_doc(report: FieldReport) -> ReportDoc:
    doc = report.model_dump(mode="json")
    doc["digest"] = hashlib.blake2b(
        orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=12
    ).hexdigest()
    return doc


def decide_revision(stored: tuple[int, str] | None, revision: int, digest: str) -> Outcome:
    """Compare an incoming revision with the latest one seen for the report.

    Higher: OK (replaces). Lower: STALE (ignored). Equal with the same content: DUPLICATE, which
    callers still write, because after a crash the first copy's write may be lost. Equal with
    different content: OK, the copy received last stands (as for village summaries, whose rows are
    ordered by their source offset).
    """
    if stored is None or revision > stored[0]:
        return Outcome.OK
    if revision < stored[0]:
        return Outcome.STALE
    return Outcome.DUPLICATE if digest == stored[1] else Outcome.OK


def row_version(revision: int, order: int) -> int:
    return (revision << REGISTRY_OFFSET_BITS) + order + 1


def report_row(
    doc: ReportDoc,
    household: HouseholdState | None,
    pseudo: Pseudonymizer,
    ingested_at: datetime,
    source_offset: int = -1,
) -> dict[str, Any]:
    """The ``report_state`` row of a report, enriched with its household's registry state.

    ``household`` is None for a village-level report or a household unknown to the registry;
    ``source_offset`` orders same-revision copies of a village summary.
    """
    hid = doc["household_id"]
    live = household is not None and not household["deleted"]
    h = household if live else None
    vulnerable = h["elderly"] + h["disabled"] + h["under5"] + h["pregnant"] if h else 0
    village = doc["village_code"]
    return {
        "report_id": doc["report_id"],
        "revision": doc["revision"],
        "version": row_version(doc["revision"], household["offset"] if household else source_offset),
        "retracted": doc["retracted"],
        "reported_event_id": doc["event_id"] or "",
        "reported_at": datetime.fromisoformat(doc["reported_at"]),
        "reporter_id": doc["reporter_id"],
        "reporter_role": doc["reporter_role"],
        "province_code": province_of(village),
        "regency_code": regency_of(village),
        "district_code": district_of(village),
        "village_code": village,
        "household_ref": pseudo.ref("household_id", hid),
        "houses_light": doc["houses_light"],
        "houses_moderate": doc["houses_moderate"],
        "houses_heavy": doc["houses_heavy"],
        "displaced": doc["displaced"],
        "dead": doc["dead"],
        "injured": doc["injured"],
        "missing": doc["missing"],
        "needs": doc["needs"],
        "lat": doc["lat"],
        "lon": doc["lon"],
        # Free text may carry an identity number typed by a worker: mask long digit runs.
        "notes": _NIK_LIKE.sub("<redacted>", doc["notes"]),
        "registered": live,
        "desil": h["desil"] if h else None,
        "programs": h["programs"] if h else [],
        "kpm": bool(h["programs"]) if h else False,
        "members": h["members"] if h else 0,
        "vulnerable_persons": vulnerable,
        "kk_ref": pseudo.ref("kk_number", h["kk_number"]) if h else "",
        "ingested_at": ingested_at.astimezone(UTC),
    }

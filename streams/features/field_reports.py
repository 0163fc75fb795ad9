"""``field-reports``: validate, then enrich household-level reports with the registry.

``route_report`` reads ``field-reports`` (keyed by report_id) and keeps no state. Village
summaries are written at once; ClickHouse keeps their highest revision (row version = revision,
then source offset). Household-level reports are re-keyed by household_id onto
``field-reports-by-household``, co-partitioned with the registry, where ``enrich_report`` decides
revisions against the household's stored reports and joins them with the household.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from schemas.field_reports import FieldReport
from sinks.tables import REPORT_STATE
from streams.domain.registry import HouseholdState
from streams.domain.reports import (
    Enrichment,
    ReportDoc,
    Revision,
    decide_revision,
    enrich,
    report_doc,
    row_version,
)
from streams.engine import Message, Outcome, Output
from streams.features import utcnow
from streams.features.decode import decode
from streams.privacy import Pseudonymizer
from streams.rows import report_row

__all__ = ["ReportDeps", "enrich_report", "route_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportDeps:
    registry: MutableMapping[str, HouseholdState]
    household_reports: MutableMapping[str, dict[str, ReportDoc]]
    pseudo: Pseudonymizer
    #: Physical name of ``field-reports-by-household``.
    by_household: str
    now: Callable[[], datetime] = field(default=utcnow)


def route_report(deps: ReportDeps, msg: Message, out: Output) -> Outcome:
    """Validate a report; write a village summary, forward a household-level report.

    Raises InvalidMessage for a report that breaks the contract (or a tombstone).
    """
    report = decode(FieldReport, msg.value, "empty message (tombstones are not part of this contract)")
    doc = report_doc(report)
    if report.household_id is not None:
        out.forward(deps.by_household, report.household_id.encode(), orjson.dumps(doc))
    else:
        version = row_version(doc["revision"], msg.offset)
        out.add(REPORT_STATE, report_row(doc, Enrichment(), version, deps.pseudo, deps.now()))
    return Outcome.OK


_OUTCOMES = {Revision.NEW: Outcome.OK, Revision.DUPLICATE: Outcome.DUPLICATE}


def enrich_report(deps: ReportDeps, msg: Message, out: Output) -> Outcome:
    """Decide a household-level report's revision and write it enriched with its household.

    The input is dampak's own internal topic, written by ``route_report`` from a validated report.
    """
    doc: ReportDoc = orjson.loads(msg.value or b"")
    household_id = doc["household_id"] or ""
    reports = deps.household_reports.get(household_id) or {}
    previous = reports.get(doc["report_id"])
    stored = (previous["revision"], previous["digest"]) if previous is not None else None
    decision = decide_revision(stored, doc["revision"], doc["digest"])
    if decision is Revision.STALE:
        return Outcome.STALE
    if decision is Revision.NEW:
        reports[doc["report_id"]] = doc
        deps.household_reports[household_id] = reports
    # A duplicate is written again: its first copy's write may have been lost in a crash.
    household = deps.registry.get(household_id)
    version = row_version(doc["revision"], household["offset"] if household else -1)
    out.add(REPORT_STATE, report_row(doc, enrich(household), version, deps.pseudo, deps.now()))
    return _OUTCOMES[decision]

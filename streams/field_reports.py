"""Agents for field reports: validate, then enrich household-level reports with the registry.

``route_reports`` reads ``field-reports`` (keyed by report_id) and keeps no state. Village
summaries are written at once; ClickHouse keeps their highest revision (row version = revision,
then source offset). Household-level reports are re-keyed by household_id onto
``field-reports-by-household``, co-partitioned with the registry, where ``enrich_reports`` decides
revisions against the household's stored reports and joins them with the household.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.field_reports import FieldReport
from streams.domain.reports import Outcome, decide_revision, report_doc, report_row
from streams.pipeline import Batch, Pipeline, describe_validation_error, run_batches
from streams.topics import Topic

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(p: Pipeline) -> None:
    registry = p.tables["registry"]
    household_reports = p.tables["household_reports"]
    by_household = p.topics[Topic.REPORTS_BY_HOUSEHOLD]

    async def route(batch: Batch, event: Any) -> Outcome:
        msg = event.message
        if msg.value is None:
            return p.dead_letter(batch, event, "empty message (tombstones are not part of this contract)")
        try:
            report = FieldReport.model_validate_json(msg.value)
        except ValidationError as exc:
            return p.dead_letter(batch, event, describe_validation_error(exc))
        doc = report_doc(report)
        if report.household_id is not None:
            batch.deliveries.append(
                await by_household.send(key=report.household_id.encode(), value=orjson.dumps(doc))
            )
        else:
            batch.add("report_state", report_row(doc, None, p.pseudo, datetime.now(UTC), msg.offset))
        return Outcome.OK

    async def enrich(batch: Batch, event: Any) -> Outcome:
        doc = orjson.loads(event.message.value)
        household_id = doc["household_id"]
        reports = household_reports.get(household_id) or {}
        previous = reports.get(doc["report_id"])
        stored = (previous["revision"], previous["digest"]) if previous is not None else None
        outcome = decide_revision(stored, doc["revision"], doc["digest"])
        if outcome is Outcome.STALE:
            return outcome
        if outcome is Outcome.OK:
            reports[doc["report_id"]] = doc
            household_reports[household_id] = reports
        # A duplicate is written again: its first copy's write may have been lost in a crash.
        batch.add("report_state", report_row(doc, registry.get(household_id), p.pseudo, datetime.now(UTC)))
        return outcome

    @p.app.agent(p.topics[Topic.FIELD_REPORTS], name="route_reports")
    async def route_reports(stream: Any) -> None:
        await run_batches(p, stream, route)

    @p.app.agent(by_household, name="enrich_reports")
    async def enrich_reports(stream: Any) -> None:
        await run_batches(p, stream, enrich)

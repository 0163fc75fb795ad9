"""Agent for the ``households`` topic: keeps the registry table and re-enriches affected reports."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.households import Household
from streams.domain.registry import household_state, registry_row, should_apply, tombstone_state
from streams.domain.reports import Outcome, report_row
from streams.pipeline import Batch, Pipeline, describe_validation_error, run_batches
from streams.topics import Topic

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(p: Pipeline) -> None:
    registry = p.tables["registry"]
    household_reports = p.tables["household_reports"]

    async def handle(batch: Batch, event: Any) -> Outcome:
        msg = event.message
        key = msg.key.decode("utf-8", "replace") if msg.key else None
        if msg.value is None:
            if not key:
                return p.dead_letter(batch, event, "tombstone without a key")
            household_id, state = key, tombstone_state(msg.offset)
        else:
            try:
                household = Household.model_validate_json(msg.value)
            except ValidationError as exc:
                return p.dead_letter(batch, event, describe_validation_error(exc), personal_key=True)
            household_id = household.household_id
            if key is not None and key != household_id:
                return p.dead_letter(
                    batch, event, "message key does not match household_id", personal_key=True
                )
            if not should_apply(registry.get(household_id), household):
                return Outcome.STALE
            state = household_state(household, msg.offset)
        registry[household_id] = state
        batch.add("registry_state", registry_row(household_id, state, p.pseudo))
        # The join is table-table: a registry change re-emits its household's reports.
        now = datetime.now(UTC)
        for doc in (household_reports.get(household_id) or {}).values():
            batch.add("report_state", report_row(doc, state, p.pseudo, now))
        return Outcome.OK

    @p.app.agent(p.topics[Topic.HOUSEHOLDS], name="apply_household_changes")
    async def apply_household_changes(stream: Any) -> None:
        await run_batches(p, stream, handle)

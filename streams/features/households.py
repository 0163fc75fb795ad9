"""``households``: keep the registry table, and re-enrich the household's reports on each change.

The join is table-table: a registry change re-emits its household's reports, so enrichment
converges to the latest registry state whatever order the two streams arrive in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime

from schemas.households import Household
from sinks.tables import REGISTRY_STATE, REPORT_STATE
from streams.domain.registry import HouseholdState, household_state, should_apply, tombstone_state
from streams.domain.reports import ReportDoc, enrich, row_version
from streams.engine import Message, Outcome, Output
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.decode import decode
from streams.privacy import Pseudonymizer
from streams.rows import registry_row, report_row

__all__ = ["RegistryDeps", "apply_household_change"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistryDeps:
    #: household_id -> registry state (a Faust table in the worker, a dict in tests).
    registry: MutableMapping[str, HouseholdState]
    #: household_id -> {report_id: latest report} (a Faust table in the worker).
    household_reports: MutableMapping[str, dict[str, ReportDoc]]
    pseudo: Pseudonymizer
    now: Callable[[], datetime] = field(default=utcnow)


def apply_household_change(deps: RegistryDeps, msg: Message, out: Output) -> Outcome:
    """Apply one ``households`` message (a record or a tombstone) to the registry.

    Raises InvalidMessage for an invalid record, a tombstone without a key, or a key that differs
    from ``household_id``. An update older than the stored record is STALE (ignored).
    """
    key = msg.key.decode("utf-8", "replace") if msg.key else None
    if msg.value is None:
        if not key:
            raise InvalidMessage("tombstone without a key")
        household_id, state = key, tombstone_state(msg.offset)
    else:
        household = decode(Household, msg.value)
        household_id = household.household_id
        if key is not None and key != household_id:
            raise InvalidMessage("message key does not match household_id")
        if not should_apply(deps.registry.get(household_id), household):
            return Outcome.STALE
        state = household_state(household, msg.offset)
    deps.registry[household_id] = state
    out.add(REGISTRY_STATE, registry_row(household_id, state, deps.pseudo))
    now, enrichment = deps.now(), enrich(state)
    for doc in (deps.household_reports.get(household_id) or {}).values():
        version = row_version(doc["revision"], state["offset"])
        out.add(REPORT_STATE, report_row(doc, enrichment, version, deps.pseudo, now))
    return Outcome.OK

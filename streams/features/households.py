"""``households``: validate and re-key, then keep the registry table and re-enrich the household's
reports on each change.

``route_household`` reads ``households`` as published (any partitioner, keyed or not) and forwards
each valid change to ``households-by-id``, keyed by ``household_id`` with dampak's own
partitioner; ``apply_household_change`` keeps the registry there, co-partitioned with the
household-level reports it enriches. The join is table-table: a registry change re-emits the
household's current reports, so enrichment converges to the latest registry state whatever order
the two streams arrive in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from schemas.common import ID_MAX_LENGTH, is_id
from schemas.households import Household
from sinks.tables import REGISTRY_STATE, REPORT_STATE
from streams.domain.registry import HouseholdState, decide_change, household_state, tombstone_state
from streams.domain.reports import enrich
from streams.domain.revision import Revision, report_version
from streams.engine import Message, Outcome, Output
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.decode import decode
from streams.features.household_reports import HouseholdReports
from streams.privacy import Pseudonymizer
from streams.rows import registry_row, report_row

__all__ = ["RegistryDeps", "apply_household_change", "route_household"]

logger = logging.getLogger(__name__)

_OUTCOMES = {Revision.NEW: Outcome.OK, Revision.DUPLICATE: Outcome.DUPLICATE, Revision.STALE: Outcome.STALE}


@dataclass(frozen=True)
class RegistryDeps:
    #: household_id -> registry state (a Faust table in the worker, a dict in tests).
    registry: MutableMapping[str, HouseholdState]
    #: The current reports of each household (a Faust table in the worker).
    household_reports: MutableMapping[str, Any]
    pseudo: Pseudonymizer
    #: Physical name of ``households-by-id``.
    by_id: str = "households-by-id"
    #: Validation context of the contracts (datetime bounds).
    context: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = field(default=utcnow)


def route_household(deps: RegistryDeps, msg: Message, out: Output) -> Outcome:
    """Validate one ``households`` message and forward it, keyed by its ``household_id``.

    A key that is present must equal ``household_id``; a missing key is accepted (the id decides).
    A tombstone (null value) needs a key that is a household id. Raises InvalidMessage otherwise.
    """
    key = msg.key.decode("utf-8", "replace") if msg.key else None
    if msg.value is None:
        if not key:
            raise InvalidMessage("tombstone without a key")
        if not is_id(key):
            # Ids are printable ASCII (schemas.common): a key that is none names no household, and
            # applied it would keep a tombstone of its own.
            raise InvalidMessage(
                f"tombstone key is not a household_id (1-{ID_MAX_LENGTH} printable ASCII characters)"
            )
        out.forward(deps.by_id, key.encode(), None)
        return Outcome.OK
    household = decode(Household, msg.value, context=deps.context)
    if key is not None and key != household.household_id:
        raise InvalidMessage("message key does not match household_id")
    # The record travels as registry state (offset and seq are set where it is applied).
    state = household_state(household, position=-1, seq=0)
    out.forward(deps.by_id, household.household_id.encode(), orjson.dumps(state))
    return Outcome.OK


def apply_household_change(deps: RegistryDeps, msg: Message, out: Output) -> Outcome:
    """Apply one change (a record or a tombstone) from ``households-by-id`` to the registry, and
    write the household's current reports enriched with it.

    The input is dampak's own internal topic, written by ``route_household`` from a validated
    record. An update older than the stored record is STALE (ignored), and so is a tombstone or a
    record published before the stored state changed the household's existence (``decide_change``).

    A replay (DUPLICATE) writes the stored state again, as a new change does. After a crash the
    local store can hold changes whose changelog records were never published (the worker died
    before its batch was flushed), and the restore can put back older values of other keys from
    records published but not yet recorded as such; a replay that wrote nothing would leave the
    changelog without the first and the store without the second. Writing again is what Kafka
    Streams' processors do on a replay under at-least-once: a record twice in a compacted
    changelog changes nothing.
    """
    household_id = (msg.key or b"").decode()
    record: HouseholdState | None = orjson.loads(msg.value) if msg.value is not None else None
    stored = deps.registry.get(household_id)
    published_ms = round((msg.timestamp or 0) * 1000)  # the producer timestamp, exact to the ms
    decision = decide_change(stored, record["updated_ms"] if record else None, msg.position, published_ms)
    if decision is Revision.STALE:
        return Outcome.STALE
    if decision is Revision.DUPLICATE:
        assert stored is not None
        state = stored
    else:
        seq = (stored.get("seq", 0) if stored else 0) + 1
        state = (
            {**record, "position": msg.position, "seq": seq, "published_ms": published_ms}
            if record
            else tombstone_state(msg.position, seq, published_ms)
        )
    # Written again on a replay too: the local store may hold it without its changelog (below).
    deps.registry[household_id] = state
    out.add(REGISTRY_STATE, registry_row(household_id, state, deps.pseudo))
    docs = HouseholdReports(deps.household_reports).current(household_id)
    if not docs:  # most changes (a registry load): no report to enrich again
        return _OUTCOMES[decision]
    now, enrichment = deps.now(), enrich(state)
    for doc in docs:
        version = report_version(doc["revision"], doc.get("copy", 0), enrichment.seq)
        out.add(REPORT_STATE, report_row(doc, enrichment, version, deps.pseudo, now, doc.get("arrival", 0)))
    return _OUTCOMES[decision]

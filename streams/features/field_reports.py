"""``field-reports``: validate, decide which copy of each report stands, enrich household-level
reports with the registry.

1. ``route_report`` reads ``field-reports`` as published (any partitioner), validates, and
   forwards every report to ``field-reports-by-id``, keyed by ``report_id``.
2. ``decide_report`` sees every copy of a report on one partition, in the order dampak received
   them, and decides which copy stands (table ``report_copies``): a copy seen before is a
   duplicate, even at a new position (a replay of step 1). A village summary is written
   there; a household-level report goes on to ``field-reports-by-household``, and when a copy
   moves a report away from a household, that household is told to drop it.
3. ``enrich_report`` keeps each household's current reports (table ``household_reports``) and
   writes them joined with the registry; a registry change re-emits them (``households``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, TypedDict

import orjson

from schemas.field_reports import FieldReport
from sinks.tables import REPORT_STATE
from streams.domain.registry import HouseholdState
from streams.domain.reports import Enrichment, ReportDoc, enrich, report_doc
from streams.domain.revision import MAX_COPIES_PER_REVISION, Revision, decide_copy, report_version
from streams.engine import Message, Outcome, Output
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.decode import decode
from streams.features.household_reports import MAX_REPORTS, HouseholdReports
from streams.privacy import Pseudonymizer
from streams.rows import report_row

__all__ = ["CopyState", "ReportDeps", "decide_report", "enrich_report", "route_report"]

logger = logging.getLogger(__name__)

_OUTCOMES = {
    Revision.NEW: Outcome.OK,
    Revision.DUPLICATE: Outcome.DUPLICATE,
    Revision.SEEN: Outcome.DUPLICATE,
    Revision.STALE: Outcome.STALE,
}


class CopyState(TypedDict):
    """The copy of a report that stands (table ``report_copies``, keyed by report_id)."""

    revision: int
    digest: str
    copy: int
    #: Its position on ``field-reports-by-id``.
    position: int
    household_id: str | None
    #: The household this copy moved the report away from (told to drop it), if any.
    moved_from: NotRequired[str | None]
    #: The event this copy names ('' for none). Absent in state written before it was kept.
    event_id: NotRequired[str]
    #: The event this copy moved the report away from, whose row is retracted, if any.
    moved_from_event: NotRequired[str | None]
    #: The digests of the copies accepted at this revision, oldest first, this one last (at most
    #: ``MAX_COPIES_PER_REVISION``): an earlier copy received again is a duplicate. Absent in
    #: state written before it was kept: the copy that stands only.
    seen: NotRequired[list[str]]


@dataclass(frozen=True)
class ReportDeps:
    registry: MutableMapping[str, HouseholdState]
    household_reports: MutableMapping[str, Any]
    report_copies: MutableMapping[str, CopyState]
    pseudo: Pseudonymizer
    #: Physical names of ``field-reports-by-id`` and ``field-reports-by-household``.
    by_id: str = "field-reports-by-id"
    by_household: str = "field-reports-by-household"
    #: Validation context of the contracts (datetime bounds).
    context: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = field(default=utcnow)


def route_report(deps: ReportDeps, msg: Message, out: Output) -> Outcome:
    """Validate a report and forward it, keyed by ``report_id``.

    A key that is present must equal ``report_id``; a missing key is accepted. Raises
    InvalidMessage for a report that breaks the contract (or a tombstone).
    """
    report = decode(FieldReport, msg.value, "empty message (tombstones are not part of this contract)",
                    context=deps.context)  # fmt: skip
    if msg.key is not None and msg.key != report.report_id.encode():
        raise InvalidMessage("message key does not match report_id")
    out.forward(deps.by_id, report.report_id.encode(), orjson.dumps(report_doc(report)))
    return Outcome.OK


def decide_report(deps: ReportDeps, msg: Message, out: Output) -> Outcome:
    """Decide whether this copy stands; write a village summary, forward a household-level report,
    and tell the household a report moved away from that it must drop it.

    Raises InvalidMessage (dead-lettered) for a new copy beyond ``MAX_COPIES_PER_REVISION``
    distinct copies of one revision; nothing changes for the report then.
    """
    doc: ReportDoc = orjson.loads(msg.value or b"")
    report_id = doc["report_id"]
    stored = deps.report_copies.get(report_id)
    seen = (stored.get("seen") or [stored["digest"]]) if stored else []
    decision = decide_copy(
        (stored["revision"], stored["digest"], stored["position"]) if stored else None,
        doc["revision"],
        doc["digest"],
        msg.position,
        seen,
    )
    if decision is Revision.STALE:
        return Outcome.STALE
    if decision is Revision.NEW:
        same_revision = stored is not None and stored["revision"] == doc["revision"]
        if same_revision and len(seen) >= MAX_COPIES_PER_REVISION:
            raise InvalidMessage(
                f"the report already has {MAX_COPIES_PER_REVISION} different copies at revision "
                f"{doc['revision']} (the limit): publish a correction as a higher revision"
            )
        copy = (stored["copy"] if stored else 0) + 1
        previous = stored["household_id"] if stored else None
        event = doc["event_id"] or ""
        previous_event = _previous_event(report_id, stored)
        state: CopyState = {
            "revision": doc["revision"],
            "digest": doc["digest"],
            "copy": copy,
            "position": msg.position,
            "household_id": doc["household_id"],
            "moved_from": previous if previous != doc["household_id"] else None,
            "event_id": event,
            "moved_from_event": previous_event if previous_event not in (None, event) else None,
            "seen": [*seen, doc["digest"]] if same_revision else [doc["digest"]],
        }
    else:
        assert stored is not None
        state = stored
    # A replay writes the state, and tells the household the report left, again: the first time
    # may have reached neither the changelog nor the topic (see ``apply_household_change``).
    deps.report_copies[report_id] = state
    copy = state["copy"]
    if moved_from := state.get("moved_from"):
        removal = {"remove": report_id, "copy": copy}
        out.forward(deps.by_household, moved_from.encode(), orjson.dumps(removal))
    if (moved_from_event := state.get("moved_from_event")) is not None:
        # ``report_state`` is sorted by event, so a row is one report under one event: the row
        # under the event the report left is retracted, at this copy's version with no household
        # sequence: above every row of an earlier copy, below every row of a later one. It names
        # no household, so a key rotation (which deletes the old key's pseudonyms) keeps it.
        gone: ReportDoc = {
            **doc,
            "event_id": moved_from_event or None,
            "household_id": None,
            "retracted": True,
        }
        version = report_version(state["revision"], copy)
        out.add(
            REPORT_STATE, report_row(gone, Enrichment(), version, deps.pseudo, deps.now(), state["position"])
        )
    if decision is Revision.SEEN:
        # An earlier copy: the one that stands stays, and nothing of this one is written.
        return _OUTCOMES[decision]
    doc["copy"] = copy
    if doc["household_id"] is None:
        version = report_version(doc["revision"], copy)
        out.add(REPORT_STATE, report_row(doc, Enrichment(), version, deps.pseudo, deps.now(), msg.position))
    else:
        out.forward(deps.by_household, doc["household_id"].encode(), orjson.dumps(doc))
    return _OUTCOMES[decision]


def _previous_event(report_id: str, stored: CopyState | None) -> str | None:
    """The event the standing copy names ('' for none); None for a first copy, or for state
    written before the event was kept (see docs/national-queries.md, *Fourth step*)."""
    if stored is None:
        return None
    if "event_id" not in stored:
        logger.warning(
            "report %s: its standing copy predates the event in the worker's state; a move "
            "to another event leaves its earlier row",
            report_id,
        )
        return None
    return stored["event_id"]


def enrich_report(deps: ReportDeps, msg: Message, out: Output) -> Outcome:
    """Keep a household's current copy of a report and write it joined with the registry.

    The input is dampak's own internal topic: copies decided by ``decide_report``, and removals of
    reports that moved to another household or a village summary. Raises InvalidMessage
    (dead-lettered) for a report that would make a household's current reports more than
    ``MAX_REPORTS``: the household's state and its rows stay as they were.
    """
    household_id = (msg.key or b"").decode()
    body: dict[str, Any] = orjson.loads(msg.value or b"")
    reports = HouseholdReports(deps.household_reports)
    if "remove" in body:
        kept = reports.get(household_id, body["remove"])
        if kept is not None and kept.get("copy", 0) < body["copy"]:
            reports.drop(household_id, body["remove"])
        return Outcome.OK
    doc: ReportDoc = body  # type: ignore[assignment]
    kept = reports.get(household_id, doc["report_id"])
    ours = (doc["revision"], doc.get("copy", 0))
    theirs = (kept["revision"], kept.get("copy", 0)) if kept else None
    if theirs is not None and theirs > ours:
        return Outcome.STALE
    if theirs is not None and theirs == ours:
        doc, decision = kept, Revision.DUPLICATE  # type: ignore[assignment]
        # Kept again, index included: after a crash the store can hold the report without its
        # changelog record, and the restore can have put back an index from before it.
        reports.put(household_id, doc)
    else:
        doc["arrival"], decision = msg.position, Revision.NEW
        if doc["retracted"]:
            reports.drop(household_id, doc["report_id"])  # nothing left to re-enrich
        elif reports.full(household_id, doc["report_id"]):
            raise InvalidMessage(
                f"the household already has {MAX_REPORTS:,} current reports (the limit per household): "
                "retract one, or correct it to another household, first"
            )
        else:
            reports.put(household_id, doc)
    enrichment = enrich(deps.registry.get(household_id))
    version = report_version(doc["revision"], doc.get("copy", 0), enrichment.seq)
    out.add(REPORT_STATE, report_row(doc, enrichment, version, deps.pseudo, deps.now(), doc["arrival"]))
    return _OUTCOMES[decision]

"""The current reports of each household, kept in a Faust table one report per key.

A change rewrites one report's key (not the household's whole list), an index key per household
lists its reports, retracted and superseded copies are dropped, and a household holds at most
``MAX_REPORTS`` current reports, so no changelog record grows without bound.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from streams.domain.reports import ReportDoc
from streams.topics import INDEX_KEY_PREFIX, REPORT_KEY_PREFIX

__all__ = ["MAX_REPORTS", "HouseholdReports"]

logger = logging.getLogger(__name__)

#: Current (not retracted, not moved away) reports one household may hold.
MAX_REPORTS = 1000


def _index_key(household_id: str) -> str:
    return f"{INDEX_KEY_PREFIX}{household_id}"


def _doc_key(household_id: str, report_id: str) -> str:
    # Length-prefixed, so no pair of ids can make the same key.
    return f"{REPORT_KEY_PREFIX}{len(household_id)}|{household_id}{report_id}"


class HouseholdReports:
    """A view of the table for the household of the current event, for one handler call (it
    remembers the index keys it read or wrote)."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self._table = table
        self._ids: dict[str, list[str]] = {}

    def ids(self, household_id: str) -> list[str]:
        ids = self._ids.get(household_id)
        if ids is None:
            ids = self._ids[household_id] = self._table.get(_index_key(household_id)) or []
        return ids

    def get(self, household_id: str, report_id: str) -> ReportDoc | None:
        doc: ReportDoc | None = self._table.get(_doc_key(household_id, report_id))
        return doc

    def current(self, household_id: str) -> list[ReportDoc]:
        return [d for rid in self.ids(household_id) if (d := self.get(household_id, rid)) is not None]

    def full(self, household_id: str, report_id: str) -> bool:
        """True when a new report would exceed ``MAX_REPORTS`` for the household."""
        ids = self.ids(household_id)
        return report_id not in ids and len(ids) >= MAX_REPORTS

    def put(self, household_id: str, doc: ReportDoc) -> None:
        ids = self.ids(household_id)
        if doc["report_id"] not in ids:
            self._table[_index_key(household_id)] = self._ids[household_id] = [*ids, doc["report_id"]]
        self._table[_doc_key(household_id, doc["report_id"])] = doc

    def drop(self, household_id: str, report_id: str) -> None:
        ids = self.ids(household_id)
        if report_id in ids:
            rest = self._ids[household_id] = [r for r in ids if r != report_id]
            if rest:
                self._table[_index_key(household_id)] = rest
            else:
                del self._table[_index_key(household_id)]
        if self.get(household_id, report_id) is not None:
            del self._table[_doc_key(household_id, report_id)]

"""Every incident-scoped view (``<view>_of(incident = ID)``, ``sinks.views.SCOPED_VIEWS``) holds
exactly its view's rows of that incident: checked on the data a test has built."""

from __future__ import annotations

from typing import Any

from sinks.views import SCOPED_VIEWS
from tests.integration.harness import Deployment

__all__ = ["assert_scoped_views_exact"]

#: The rows of a view that belong to incident {incident:String}, by the column its scoped form keeps.
_OF_INCIDENT = {
    "incident_id": "incident_id = {incident:String}",
    "event_id": (
        "event_id IN (SELECT event_id FROM dampak.event_incident WHERE incident_id = {incident:String}) "
        "OR (event_id = {incident:String} AND event_id NOT IN (SELECT event_id FROM dampak.event_incident))"
    ),
}


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    # updated_at-like columns are the same rows' values; compare every column as text, unordered.
    return sorted(repr(sorted(r.items())) for r in rows)


def assert_scoped_views_exact(dep: Deployment, incidents: list[str]) -> int:
    """Compare every scoped view with its view filtered to each incident; returns the rows compared."""
    compared = 0
    for incident in incidents:
        for view, column in SCOPED_VIEWS.items():
            whole = dep.query(f"SELECT * FROM dampak.{view} WHERE {_OF_INCIDENT[column]}", incident=incident)
            scoped = dep.query(
                f"SELECT * FROM dampak.{view}_of(incident = {{incident:String}})", incident=incident
            )
            assert _rows(scoped) == _rows(whole), (view, incident, len(scoped), len(whole))
            compared += len(whole)
    return compared

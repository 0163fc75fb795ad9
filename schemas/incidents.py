"""Contract of the ``incident-links`` topic: an operator's decision that two events are, or are
not, one incident (kejadian), keyed by ``link_id``.

dampak groups the events of one disaster into an incident by itself (aftershocks with their main
shock, secondary hazards with the earthquake whose area and time they fall in; README,
*Incidents*). An operator corrects that grouping with a message here, never by editing a table, so
the figures follow the decision exactly and a replay of the topics gives the same incidents:

- ``link``: ``event_id`` joins the incident of ``other_event_id``;
- ``unlink``: ``event_id`` leaves the incident of ``other_event_id``: a link between the two is
  undone, and an event grouped there by dampak's own rule stands as an incident of its own.

For each (``event_id``, ``other_event_id``) the latest decision stands, by ``decided_at`` then
``link_id``. Every decision is kept: who, when and why (the ``incident_links`` view).
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import StringConstraints, model_validator

from schemas.common import Contract, Id, UtcDatetime

__all__ = ["IncidentLink", "LinkAction"]

logger = logging.getLogger(__name__)

LinkAction = Literal["link", "unlink"]


class IncidentLink(Contract):
    schema_version: Literal[1] = 1
    link_id: Id
    action: LinkAction
    #: The event that joins or leaves an incident.
    event_id: Id
    #: An event of the incident it joins or leaves.
    other_event_id: Id
    #: Who decided: the operator's account at the command center.
    operator: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[ -~]+$")]
    #: Why: required, so that the audit trail explains every change to the figures.
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"\S")]
    decided_at: UtcDatetime

    @model_validator(mode="after")
    def _two_events(self) -> IncidentLink:
        if self.event_id == self.other_event_id:
            raise ValueError("an event cannot be linked to itself")
        return self

"""``incident-links``: record an operator's decision that two events are, or are not, one incident.

The decision is stored as it was made (``incident_link_state``, the audit trail); the analyst views
apply the latest one per pair at query time (``sinks.views``), so the figures follow it exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.incidents import IncidentLink
from sinks.tables import INCIDENT_LINK_STATE
from streams.engine import Message, Outcome, Output
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.decode import decode
from streams.rows import incident_link_row

__all__ = ["IncidentDeps", "record_incident_link"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncidentDeps:
    #: Validation context of the contracts (datetime bounds).
    context: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = field(default=utcnow)


def record_incident_link(deps: IncidentDeps, msg: Message, out: Output) -> Outcome:
    """Validate one ``incident-links`` message and store it. A key that is present must equal
    ``link_id``. Raises InvalidMessage otherwise."""
    link = decode(IncidentLink, msg.value, context=deps.context)
    if msg.key and msg.key.decode("utf-8", "replace") != link.link_id:
        raise InvalidMessage("message key does not match link_id")
    out.add(INCIDENT_LINK_STATE, incident_link_row(link, deps.now()))
    logger.info(
        "incident %s: %s %s -> %s by %s",
        link.link_id, link.action, link.event_id, link.other_event_id, link.operator,
    )  # fmt: skip
    return Outcome.OK

"""``dampak incident``: an operator links two events into one incident, or unlinks them, with a
reason; ``dampak incident list`` shows the incidents with their events.

A decision is a message on ``incident-links`` (``schemas.incidents``), validated here as the worker
will validate it, so that a mistake is refused at the command line and not dead-lettered later.
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.common import describe_validation_error
from schemas.incidents import IncidentLink
from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["cmd_incident"]

logger = logging.getLogger(__name__)

_LIST_SQL = (
    "SELECT incident_id, began_at, hazards, events, event_rules, pager_level, reported_reports, "
    "reported_dead, reported_displaced FROM dampak.incidents ORDER BY began_at DESC LIMIT 50"
)


def cmd_incident(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        from sinks.analyst import query
        from streams.commands.cli_output import print_rows

        print_rows(*query(settings.clickhouse_target, _LIST_SQL), "table", sys.stdout)
        return 0
    from streams.ops.admin import check_kafka, producer
    from streams.topics import Topic, physical_name

    if not (args.event and args.other):
        raise DampakError(f"incident {args.action} needs two event ids: EVENT OTHER")
    try:
        link = IncidentLink.model_validate(
            {
                "link_id": args.link_id or f"link-{uuid.uuid4().hex[:12]}",
                "action": args.action,
                "event_id": args.event,
                "other_event_id": args.other,
                "operator": args.operator,
                "reason": args.reason,
                "decided_at": datetime.now(UTC).isoformat(),
            },
            strict=False,
        )
    except ValidationError as exc:
        raise DampakError(f"not a valid decision: {describe_validation_error(exc)}") from exc
    check_kafka(settings)
    topic = physical_name(Topic.INCIDENT_LINKS, settings)
    prod = producer(settings)
    try:
        prod.send(topic, key=link.link_id.encode(), value=link.model_dump_json().encode()).get(timeout=30)
    finally:
        prod.close()
    verb = "into the incident of" if link.action == "link" else "out of the incident of"
    print(f"{link.link_id}: {link.event_id} {verb} {link.other_event_id}, by {link.operator} ({topic})")
    return 0

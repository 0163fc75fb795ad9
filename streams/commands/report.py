"""``dampak report``: an event's command-center page written as one self-contained HTML file."""

from __future__ import annotations

import argparse
import logging

from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["cmd_report"]

logger = logging.getLogger(__name__)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.analyst import session
    from sinks.center import figures
    from streams.domain.contours import alert_contours
    from streams.ops.center import page

    with session(settings.clickhouse_target) as ask:
        data = figures(ask, args.event, alert_contours)
    if data["event"] is None:
        known = ", ".join(e["event_id"] for e in data["events"][:10]) or "none yet"
        raise DampakError(f"no event {args.event!r} (events: {known})")
    data["pipeline"] = _pipeline_state(settings)
    args.out.write_text(page(settings.web.language, data))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {args.event}")
    return 0


def _pipeline_state(settings: Settings) -> dict[str, object]:
    """One lag sample of the worker's group, when Kafka answers (the report works without it)."""
    from streams.ops.admin import broker_answers
    from streams.ops.lag import LagMonitor

    if not broker_answers(settings.kafka.bootstrap_servers, **settings.kafka.client_options()):
        return {"status": None, "lag": None}
    monitor = LagMonitor(settings)
    try:
        [group] = monitor.sample([settings.app_id])
    finally:
        monitor.close()
    return {"status": group.status, "lag": sum(p.lag for p in group.partitions)}

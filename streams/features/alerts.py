"""``disaster-alerts``: normalize the payload, estimate exposure, notify on severe events.

``route_alert`` parses a message of any of the three forms (one message may hold several alerts)
and forwards each alert to ``disaster-alerts-by-event``, keyed by ``event_id``; there
``estimate_alert_impact`` computes the exposure against the registry's village statistics at the
time the alert arrives. A later bulletin or revision of an event replaces the whole estimate.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from schemas.alerts import Alert, InvalidAlert, parse_alerts
from schemas.common import describe_validation_error
from sinks.tables import ALERT_EXPOSURE_STATE, ALERTS_STATE
from streams.domain.exposure import VillageStats, exposure
from streams.domain.hazard import DisplacementRates
from streams.domain.notifications import Notice, alert_level_notice
from streams.engine import Message, Outcome, Output
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.notifications import Notifier
from streams.rows import alert_row, exposure_row

__all__ = ["ALERT_ORDER_BITS", "AlertDeps", "estimate_alert_impact", "route_alert"]

logger = logging.getLogger(__name__)

#: An alert row's version: revision first, then its offset on ``disaster-alerts-by-event``.
ALERT_ORDER_BITS = 40
_RAW_MAX = 64 * 1024


class StatsReads(Protocol):
    async def village_stats(self) -> dict[str, list[Any]]: ...


@dataclass(frozen=True)
class AlertDeps:
    reader: StatsReads
    rates: DisplacementRates
    #: PAGER levels of an earthquake estimate that notify.
    alert_levels: tuple[str, ...]
    notifier: Notifier
    #: Physical name of ``disaster-alerts-by-event``.
    by_event: str = "disaster-alerts-by-event"
    #: Validation context of the contracts (datetime bounds).
    context: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = field(default=utcnow)


def route_alert(deps: AlertDeps, msg: Message, out: Output) -> Outcome:
    """Parse one message (BMKG bulletin, normalized alert or CAP) and forward each alert it holds.

    Raises InvalidMessage for a payload that is none of the forms or a malformed one.
    """
    if not msg.value:
        raise InvalidMessage("empty message")
    try:
        alerts = parse_alerts(msg.value, deps.context)
    except InvalidAlert as exc:
        raise InvalidMessage(str(exc)) from exc
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc)) from exc
    raw = msg.value[:_RAW_MAX].decode("utf-8", "replace")
    for alert in alerts:
        body = {"alert": alert.model_dump(mode="json"), "raw": raw}
        out.forward(deps.by_event, alert.event_id.encode(), orjson.dumps(body))
    return Outcome.OK


async def estimate_alert_impact(deps: AlertDeps, msg: Message, out: Output) -> Outcome:
    """Estimate the exposure of one alert from ``disaster-alerts-by-event`` and write it; notify
    after the write when an earthquake reaches a configured PAGER level."""
    body = orjson.loads(msg.value or b"")
    alert = Alert.model_validate(body["alert"], strict=False, context=deps.context)
    stats = VillageStats.from_columns(await deps.reader.village_stats())
    version = (alert.revision << ALERT_ORDER_BITS) + msg.offset
    exp = exposure(alert, stats, deps.rates)
    out.add(ALERTS_STATE, alert_row(alert, version, exp, body["raw"], deps.now()))
    for village in exp.villages:
        out.add(ALERT_EXPOSURE_STATE, exposure_row(alert.event_id, version, village))
    logger.info(
        "%s: %s, %d villages exposed, %.0f est. deaths, %.0f est. displaced, PAGER %s",
        alert.event_id, alert.hazard, len(exp.villages), exp.deaths, exp.displaced, exp.pager_level,
    )  # fmt: skip
    if alert.hazard == "earthquake" and exp.pager_level in deps.alert_levels:
        notice: Notice = alert_level_notice(
            alert.event_id, alert.headline, alert.magnitude, exp.pager_level, exp.deaths, exp.displaced
        )
        out.then(functools.partial(deps.notifier.send_new, [notice]))
    return Outcome.OK

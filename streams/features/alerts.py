"""``disaster-alerts``: normalize the payload, estimate exposure, notify on severe events.

Exposure is computed against the registry's village statistics at the time the alert arrives; a
later revision of the alert (same event_id) replaces the whole estimate.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.alerts import InvalidAlert, parse_alerts
from sinks.tables import ALERT_EXPOSURE_STATE, ALERTS_STATE
from streams.domain.exposure import VillageStats, exposure
from streams.domain.hazard import DisplacementRates
from streams.domain.notifications import Notice, alert_level_notice
from streams.domain.reports import REGISTRY_OFFSET_BITS
from streams.engine import Message, Outcome, Output
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.decode import describe_validation_error
from streams.features.notifications import Notifier
from streams.rows import alert_row, exposure_row

__all__ = ["AlertDeps", "estimate_alert_impact"]

logger = logging.getLogger(__name__)


class StatsReads(Protocol):
    async def village_stats(self) -> dict[str, list[Any]]: ...


@dataclass(frozen=True)
class AlertDeps:
    reader: StatsReads
    rates: DisplacementRates
    #: PAGER levels of an earthquake estimate that notify.
    alert_levels: tuple[str, ...]
    notifier: Notifier
    now: Callable[[], datetime] = field(default=utcnow)


async def estimate_alert_impact(deps: AlertDeps, msg: Message, out: Output) -> Outcome:
    """Parse one alert message (any of the three forms) and write its estimate.

    Raises InvalidMessage for a payload that is none of the forms or a malformed one.
    """
    if not msg.value:
        raise InvalidMessage("empty message")
    try:
        alerts = parse_alerts(msg.value)
    except InvalidAlert as exc:
        raise InvalidMessage(str(exc)) from exc
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc)) from exc
    stats = VillageStats.from_columns(await deps.reader.village_stats())
    notices: list[Notice] = []
    now = deps.now()
    for alert in alerts:
        version = (alert.revision << REGISTRY_OFFSET_BITS) + msg.offset
        exp = exposure(alert, stats, deps.rates)
        out.add(ALERTS_STATE, alert_row(alert, version, exp, msg.value, now))
        for village in exp.villages:
            out.add(ALERT_EXPOSURE_STATE, exposure_row(alert.event_id, version, village))
        logger.info(
            "%s: %s, %d villages exposed, %.0f est. deaths, %.0f est. displaced, PAGER %s",
            alert.event_id, alert.hazard, len(exp.villages), exp.deaths, exp.displaced, exp.pager_level,
        )  # fmt: skip
        if alert.hazard == "earthquake" and exp.pager_level in deps.alert_levels:
            notices.append(
                alert_level_notice(alert.event_id, alert.headline, alert.magnitude, exp.pager_level,
                                   exp.deaths, exp.displaced)
            )  # fmt: skip
    if notices:
        out.then(functools.partial(deps.notifier.send_new, notices))
    return Outcome.OK

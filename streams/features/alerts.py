"""``disaster-alerts``: normalize the payload, estimate exposure, notify on severe events.

``route_alert`` parses a message of any of the three forms (one message may hold several alerts)
and forwards each alert to ``disaster-alerts-by-event``, keyed by ``event_id``; there
``estimate_alert_impact`` computes the exposure against the registry's village statistics at the
time the alert arrives. Both run their heavy part in a worker thread, so that the event loop never
waits on one message. A later bulletin or revision of an event replaces the whole estimate.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson
from pydantic import ValidationError

from schemas.alerts import Alert, InvalidAlert, parse_alerts
from schemas.common import describe_validation_error
from sinks.tables import ALERT_EXPOSURE_STATE, ALERTS_STATE, ESTIMATE_STATE, Row
from streams.domain.estimates import (
    INDONESIA_GDP_PER_CAPITA_USD,
    RangeEstimate,
    earthquake_estimates,
    most_likely,
    pager_alert,
)
from streams.domain.exposure import Exposure, VillageStats, exposure
from streams.domain.hazard import DisplacementRates, mmi_bin
from streams.domain.notifications import Notice, alert_level_notice
from streams.engine import Message, Outcome, Output
from streams.engine.bundle import MAX_BUNDLE_BYTES
from streams.errors import InvalidMessage
from streams.features import utcnow
from streams.features.notifications import Notifier
from streams.rows import alert_row, estimate_rows, exposure_rows

__all__ = [
    "ALERT_ORDER_BITS",
    "FORWARD_MAX_BYTES",
    "RAW_PAYLOAD_MAX_BYTES",
    "AlertDeps",
    "alert_version",
    "estimate_alert_impact",
    "route_alert",
]

logger = logging.getLogger(__name__)

#: An alert row's version: revision first (below 2**23, so the version fits UInt64), then the
#: message's position on ``disaster-alerts-by-event`` (offset << 16 | index in its bundle): the
#: items of one bundle share an offset, and a later bulletin of an event must still win.
ALERT_ORDER_BITS = 41
_POSITION_LIMIT = 1 << ALERT_ORDER_BITS
#: Bytes of a message kept as the raw payload of its alerts, stored once per message.
RAW_PAYLOAD_MAX_BYTES = 64 * 1024
#: Bytes of one forward (the normalized alert and the raw payload): what one record may carry.
FORWARD_MAX_BYTES = MAX_BUNDLE_BYTES
_ROWS_PER_TURN = 2_000


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
    #: GDP per capita (US$) of PAGER's economic loss model.
    gdp_per_capita_usd: float = INDONESIA_GDP_PER_CAPITA_USD


async def route_alert(deps: AlertDeps, msg: Message, out: Output) -> Outcome:
    """Parse one message (BMKG bulletin, normalized alert or CAP) and forward each alert it holds.

    Raises InvalidMessage for a payload that is none of the forms, a malformed one, one over the
    limits of ``schemas.alerts``, or one whose alert would not fit a record once normalized.
    """
    if not msg.value:
        raise InvalidMessage("empty message")
    # A CAP document of 32 <info> blocks near the broker's 1 MB takes up to a second to parse and
    # normalize: a worker thread does it, as it does the estimate.
    for key, value in await asyncio.to_thread(_forwards, msg.value, deps.context):
        out.forward(deps.by_event, key, value)
    return Outcome.OK


def _forwards(value: bytes, context: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The (key, value) of each alert's forward to ``disaster-alerts-by-event``."""
    try:
        alerts = parse_alerts(value, context)
    except InvalidAlert as exc:
        raise InvalidMessage(str(exc)) from exc
    except ValidationError as exc:
        raise InvalidMessage(describe_validation_error(exc)) from exc
    # A forward carries what the next stage needs: the alert without its defaults (they are
    # restored by validation there; written out, 12,000 two-letter codes made 1.2 MB), and the raw
    # payload once per message. It goes with the first alert that no later alert of the message
    # supersedes (two bulletins of one event in one list: the later one stands), and the others
    # name that alert.
    raw = _raw_text(value)
    carrier = min({a.event_id: i for i, a in enumerate(alerts)}.values())
    forwards = []
    for i, alert in enumerate(alerts):
        body: dict[str, Any] = {"alert": alert.model_dump(mode="json", exclude_defaults=True)}
        if i == carrier:
            body["raw"] = raw
        else:
            body["payload_event_id"] = alerts[carrier].event_id
        encoded = orjson.dumps(body)
        # Normalized, CAP's "lat,lon" points take a fifth more room: refused here, with its
        # reason, rather than by the producer.
        if len(encoded) > FORWARD_MAX_BYTES:
            raise InvalidMessage(
                f"alert {i + 1} of the message takes {len(encoded)} bytes normalized, over "
                f"{FORWARD_MAX_BYTES}: send its areas in several alerts"
            )
        forwards.append((alert.event_id.encode(), encoded))
    return forwards


def _raw_text(value: bytes) -> str:
    """The start of a message as text whose JSON form (in the forward) takes at most
    ``RAW_PAYLOAD_MAX_BYTES``: escaping can make a byte six (a control character)."""
    text = value[:RAW_PAYLOAD_MAX_BYTES].decode("utf-8", "replace")
    while (size := len(orjson.dumps(text))) > RAW_PAYLOAD_MAX_BYTES:
        text = text[: len(text) * RAW_PAYLOAD_MAX_BYTES // size - 2]
    return text


def alert_version(revision: int, position: int) -> int:
    """The version of an alert's rows: its revision, then its position on its partition. A
    position beyond ``ALERT_ORDER_BITS`` (2**25 records on one partition) is held at the largest
    one, with a warning: later bulletins of one revision then tie, and the last written stands."""
    if position >= _POSITION_LIMIT:
        logger.warning(
            "alert position %d beyond %d bits: versions of one revision tie", position, ALERT_ORDER_BITS
        )
        position = _POSITION_LIMIT - 1
    return (revision << ALERT_ORDER_BITS) | position


async def estimate_alert_impact(deps: AlertDeps, msg: Message, out: Output) -> Outcome:
    """Estimate the exposure of one alert from ``disaster-alerts-by-event`` and write it; notify
    after the write when an earthquake reaches a configured PAGER level."""
    columns = await deps.reader.village_stats()
    # Up to every village of the country, 5,000 areas or a polygon of 10,000 points: a second of
    # numpy and row building on the worst alert allowed. A worker thread does it (numpy's calls
    # are short and let go of the interpreter), so the loop goes on serving the other flows.
    estimate = await asyncio.to_thread(_estimate, deps, msg, columns)
    alert, exp = estimate.alert, estimate.exposure
    # The views show an alert's exposure and estimates at the version of its alerts_state row: the
    # batch writes its tables in the order their first rows came, so the alert row goes last and a
    # reader never sees a new version without its villages.
    # Handing 83,762 rows to the batch takes the loop some 80 ms: in slices, letting it run between.
    rows = estimate.exposure_rows
    for start in range(0, len(rows), _ROWS_PER_TURN):
        for row in rows[start : start + _ROWS_PER_TURN]:
            out.add(ALERT_EXPOSURE_STATE, row)
        await asyncio.sleep(0)
    for row in estimate.estimate_rows:
        out.add(ESTIMATE_STATE, row)
    out.add(ALERTS_STATE, estimate.alert_row)
    level = estimate.pager[0]
    logger.info(
        "%s: %s, %d villages exposed, %.0f est. deaths, %.0f est. displaced, PAGER %s",
        alert.event_id, alert.hazard, exp.count, exp.deaths, exp.displaced, level or "-",
    )  # fmt: skip
    if alert.hazard == "earthquake" and level in deps.alert_levels:
        deaths = most_likely([r for r in estimate.ranges if r.model == "pager_fatality"]).label
        notice: Notice = alert_level_notice(
            alert.event_id, alert.headline, alert.magnitude, level, deaths, exp.displaced
        )
        out.then(functools.partial(deps.notifier.send_new, [notice]))
    return Outcome.OK


@dataclass(frozen=True)
class _Estimate:
    alert: Alert
    exposure: Exposure
    #: PAGER's alerts (overall, fatality, economic); empty for other hazards.
    pager: tuple[str, str, str]
    #: Every estimate with its range (earthquakes only).
    ranges: list[RangeEstimate]
    alert_row: Row
    exposure_rows: list[Row]
    estimate_rows: list[Row]


def _estimate(deps: AlertDeps, msg: Message, columns: dict[str, list[Any]]) -> _Estimate:
    """Decode the forward, estimate its exposure and build its rows (in a worker thread: it reads
    only its arguments and changes nothing). Raises what validation raises."""
    body = orjson.loads(msg.value or b"")
    alert = Alert.model_validate(body["alert"], strict=False, context=deps.context)
    version = alert_version(alert.revision, msg.position)
    exp = exposure(alert, VillageStats.from_columns(columns), deps.rates)
    ranges: list[RangeEstimate] = []
    pager, economic = ("", "", ""), 0.0
    if alert.hazard == "earthquake":
        c = exp.columns
        ranges = earthquake_estimates(
            mmi_bin(np.asarray(c.mmi, dtype=np.float64)),
            np.asarray(c.persons, dtype=np.float64),
            np.asarray(c.households, dtype=np.float64),
            deps.gdp_per_capita_usd,
        )
        economic = next(r.central for r in ranges if r.model == "pager_economic")
        pager = pager_alert(exp.deaths, economic)
    row = alert_row(
        alert,
        version,
        exp,
        body.get("raw", ""),
        deps.now(),
        body.get("payload_event_id", ""),
        pager,
        economic,
    )
    return _Estimate(
        alert, exp, pager, ranges, row, exposure_rows(alert.event_id, version, exp),
        estimate_rows(alert.event_id, version, ranges),
    )  # fmt: skip

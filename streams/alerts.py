"""Agent for ``disaster-alerts``: normalize the payload, estimate exposure, notify on severe events.

Exposure is computed against the registry's village statistics at the time the alert arrives; a
later revision of the alert (same event_id) replaces the whole estimate.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.alerts import Alert, InvalidAlert, parse_alerts
from streams.domain.exposure import Exposure, VillageStats, exposure
from streams.domain.reports import REGISTRY_OFFSET_BITS, Outcome
from streams.notifications import Notice, displaced_notices, send_new
from streams.pipeline import Batch, Pipeline, describe_validation_error, run_batches
from streams.topics import Topic

__all__ = ["alert_row", "register"]

logger = logging.getLogger(__name__)

_RAW_MAX = 64 * 1024


def alert_row(alert: Alert, version: int, exp: Exposure, raw: bytes, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": alert.event_id,
        "version": version,
        "revision": alert.revision,
        "hazard": alert.hazard,
        "issued_at": alert.issued_at,
        "event_time": alert.began_at,
        "source": alert.source,
        "headline": alert.headline,
        "lat": alert.lat,
        "lon": alert.lon,
        "magnitude": alert.magnitude,
        "depth_km": alert.depth_km,
        "tsunami": alert.tsunami,
        "felt": orjson.dumps([f.model_dump() for f in alert.felt]).decode(),
        "areas": orjson.dumps([a.model_dump() for a in alert.areas]).decode(),
        "area_text": list(alert.area_text),
        "pager_level": exp.pager_level if alert.hazard == "earthquake" else "",
        "est_exposed_households": exp.households,
        "est_exposed_persons": exp.persons,
        "est_exposed_kpm_households": exp.kpm_households,
        "est_deaths": exp.deaths,
        "est_displaced": exp.displaced,
        "raw_payload": raw[:_RAW_MAX].decode("utf-8", "replace"),
        "received_at": received_at,
    }


def register(p: Pipeline) -> None:
    db = p.settings.clickhouse.database
    stats_sql = (
        "SELECT village_code, households, persons, kpm_households, vulnerable_persons, pregnant, lat, lon "
        f"FROM {db}.village_stats"
    )

    async def handle(batch: Batch, event: Any) -> Outcome:
        msg = event.message
        if not msg.value:
            return p.dead_letter(batch, event, "empty message")
        try:
            alerts = parse_alerts(msg.value)
        except InvalidAlert as exc:
            return p.dead_letter(batch, event, str(exc))
        except ValidationError as exc:
            return p.dead_letter(batch, event, describe_validation_error(exc))
        stats = VillageStats.from_columns(await p.sink.select_columns(stats_sql))
        notices: list[Notice] = []
        now = datetime.now(UTC)
        for alert in alerts:
            version = (alert.revision << REGISTRY_OFFSET_BITS) + msg.offset
            exp = exposure(alert, version, stats, p.settings.displacement)
            batch.add("alerts_state", alert_row(alert, version, exp, msg.value, now))
            for row in exp.rows:
                batch.add("alert_exposure_state", row)
            logger.info(
                "%s: %s, %d villages exposed, %.0f est. deaths, %.0f est. displaced, PAGER %s",
                alert.event_id, alert.hazard, len(exp.rows), exp.deaths, exp.displaced, exp.pager_level,
            )  # fmt: skip
            if alert.hazard == "earthquake" and exp.pager_level in p.settings.notify.alert_levels:
                notices.append(
                    {
                        "notification_id": f"{alert.event_id}:pager:{exp.pager_level}",
                        "event_id": alert.event_id,
                        "kind": "alert_level",
                        "regency_code": "",
                        "level": exp.pager_level,
                        "message": f"{alert.headline or alert.event_id}: M{alert.magnitude}, PAGER "
                        f"{exp.pager_level}, est. {exp.deaths:.0f} deaths, {exp.displaced:.0f} displaced",
                    }
                )
        if notices:

            async def notify() -> None:
                await send_new(p, notices)

            batch.after_write.append(notify)
        return Outcome.OK

    @p.app.agent(p.topics[Topic.DISASTER_ALERTS], name="estimate_alert_impact")
    async def estimate_alert_impact(stream: Any) -> None:
        await run_batches(p, stream, handle)

    @p.app.timer(p.settings.notify.check_interval_s, on_leader=True, name="notify_reported_displacement")
    async def notify_reported_displacement() -> None:
        # A timer that raises stops the whole worker: report and try again at the next tick.
        try:
            await _notify_reported_displacement()
        except Exception:
            logger.exception("checking reported displacement for notifications failed")

    async def _notify_reported_displacement() -> None:
        low = min(p.settings.notify.displaced_thresholds, default=0)
        if not low:
            return
        rows = await p.sink.select_columns(
            f"SELECT event_id, regency_code, regency_name, displaced FROM {db}.impact_regency "
            f"WHERE displaced >= {int(low)} AND event_id != 'unassigned'"
        )
        table = list(
            zip(rows["event_id"], rows["regency_code"], rows["regency_name"], rows["displaced"], strict=True)
        )
        await send_new(p, displaced_notices(table, p.settings.notify.displaced_thresholds))

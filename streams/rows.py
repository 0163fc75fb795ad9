"""The mapping layer: typed domain values (and dead letters) to rows of the declared tables.

The only place that names ClickHouse columns on the write path; each function builds the row of
one table in ``sinks.tables``, and unit tests check every row against its declaration. Personal
identifiers are pseudonymised here, never in the domain.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from schemas.alerts import Alert
from schemas.common import district_of, province_of, regency_of
from schemas.incidents import IncidentLink
from sinks.tables import Row
from streams.domain.estimates import RangeEstimate
from streams.domain.exposure import Exposure
from streams.domain.lag import GroupLag
from streams.domain.notifications import Notice
from streams.domain.registry import HouseholdState
from streams.domain.reports import Enrichment, ReportDoc, enrich
from streams.privacy import Pseudonymizer, mask_identifiers

if TYPE_CHECKING:
    from streams.engine.batch import Message

__all__ = [
    "alert_row",
    "dead_letter_row",
    "estimate_rows",
    "exposure_rows",
    "incident_link_row",
    "lag_rows",
    "notification_row",
    "registry_row",
    "report_row",
]

logger = logging.getLogger(__name__)


_NO_FACILITIES = {"education": 0, "health": 0, "worship": 0, "office": 0, "bridge": 0}


def registry_row(household_id: str, state: HouseholdState, pseudo: Pseudonymizer) -> Row:
    """``registry_state``: one household (tombstones become ``deleted`` rows)."""
    return {
        "household_ref": pseudo.ref("household_id", household_id),
        "version": state["seq"],
        "deleted": state["deleted"],
        "village_code": state["village_code"],
        "updated_at": datetime.fromtimestamp(state["updated_ms"] / 1000, UTC),
        "members": state["members"],
        "desil": state["desil"],
        "programs": state["programs"],
        "kpm": enrich(state).kpm,
        "elderly": state["elderly"],
        "disabled": state["disabled"],
        "under5": state["under5"],
        "pregnant": state["pregnant"],
        "lat": state["lat"],
        "lon": state["lon"],
        "nik_ref": pseudo.ref("nik_head", state["nik_head"]),
        "kk_ref": pseudo.ref("kk_number", state["kk_number"]),
        "pkh_graduated_at": (
            datetime.fromtimestamp(graduated / 1000, UTC)
            if (graduated := state.get("graduated_ms"))
            else None
        ),
    }


def report_row(
    doc: ReportDoc,
    enrichment: Enrichment,
    version: int,
    pseudo: Pseudonymizer,
    ingested_at: datetime,
    arrival: int,
) -> Row:
    """``report_state``: one report at ``version``, with its household's enrichment; ``arrival``
    orders the reports of one household by arrival."""
    village = doc["village_code"]
    e = enrichment
    return {
        "report_id": doc["report_id"],
        "revision": doc["revision"],
        "version": version,
        "retracted": doc["retracted"],
        "reported_event_id": doc["event_id"] or "",
        "reported_hazard": doc.get("hazard") or "",
        "reported_at": datetime.fromisoformat(doc["reported_at"]),
        # A reporter may be identified by NIK: masked like the notes.
        "reporter_id": mask_identifiers(doc["reporter_id"]),
        "reporter_role": doc["reporter_role"],
        "province_code": province_of(village),
        "regency_code": regency_of(village),
        "district_code": district_of(village),
        "village_code": village,
        "household_ref": pseudo.ref("household_id", doc["household_id"]),
        "houses_light": doc["houses_light"],
        "houses_moderate": doc["houses_moderate"],
        "houses_heavy": doc["houses_heavy"],
        "displaced": doc["displaced"],
        "dead": doc["dead"],
        "injured": doc["injured"],
        "injured_severe": doc.get("injured_severe", 0),
        "missing": doc["missing"],
        "affected_persons": doc.get("affected_persons", 0),
        "affected_families": doc.get("affected_families", 0),
        "houses_submerged": doc.get("houses_submerged", 0),
        **{f"facilities_{k}": v for k, v in (doc.get("facilities") or _NO_FACILITIES).items()},
        "shelter_name": (shelter := doc.get("shelter") or {}).get("name", ""),
        "shelter_village_code": shelter.get("village_code", ""),
        "shelter_displaced": shelter.get("displaced", 0),
        "needs": doc["needs"],
        "lat": doc["lat"],
        "lon": doc["lon"],
        # Free text may carry an identity number typed by a worker: mask it.
        "notes": mask_identifiers(doc["notes"]),
        "registered": e.registered,
        "desil": e.desil,
        "programs": list(e.programs),
        "kpm": e.kpm,
        "members": e.members,
        "vulnerable_persons": e.vulnerable_persons,
        "kk_ref": pseudo.ref("kk_number", e.kk_number),
        "graduated": e.graduated,
        "ingested_at": ingested_at.astimezone(UTC),
        "arrival": arrival,
    }


def dead_letter_row(
    msg: Message, reason: str, pseudo: Pseudonymizer, personal_key: bool, max_bytes: int, now: datetime
) -> Row:
    """``dead_letter_state``: a rejected message, its payload redacted and capped at ``max_bytes``.

    Its key is stored as a pseudonym only (``key_ref``), whatever the topic: a publisher may key
    a report by a NIK or a household id. The namespace is ``household_id``'s, so a dead letter
    keyed by a household joins the registry's ``household_ref``; the raw key stays in the
    dead-letter topic. A message that came in a bundle (dampak's internal topics) is recorded at
    its position (offset << 16 | index), so that each message of a bundle keeps a row of its own."""
    key = msg.key if isinstance(msg.key, bytes) else None
    key_text = (key or b"").decode("utf-8", "replace")
    return {
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.position if msg.in_bundle else msg.offset,
        "reason": reason,
        "key_ref": pseudo.ref("household_id", key_text),
        "payload": pseudo.redact_payload(msg.value, key if personal_key else None, max_bytes),
        "payload_bytes": len(msg.value or b""),
        "message_timestamp": datetime.fromtimestamp(msg.timestamp or 0, UTC),
        "received_at": now,
    }


def alert_row(
    alert: Alert,
    version: int,
    exp: Exposure,
    raw: str,
    received_at: datetime,
    payload_event_id: str = "",
    pager: tuple[str, str, str] = ("", "", ""),
    economic_loss_usd: float = 0.0,
) -> Row:
    """``alerts_state``: one alert (one revision) with its estimated totals and, for an
    earthquake, PAGER's alerts (overall, fatality, economic) and economic loss. A message's raw
    payload is stored once, with one of its alerts; the others hold ``payload_event_id``, that
    alert's event id, and an empty ``raw`` (``streams.features.alerts``)."""
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
        "pager_level": pager[0],
        "est_exposed_households": exp.households,
        "est_exposed_persons": exp.persons,
        "est_exposed_kpm_households": exp.kpm_households,
        "est_deaths": exp.deaths,
        "est_displaced": exp.displaced,
        "raw_payload": raw,
        "received_at": received_at,
        "payload_event_id": payload_event_id,
        "warning": alert.is_warning,
        "felt_used": exp.felt_used,
        "pager_fatality_level": pager[1],
        "pager_economic_level": pager[2],
        "est_economic_loss_usd": economic_loss_usd,
    }


def exposure_rows(event_id: str, version: int, exp: Exposure) -> list[Row]:
    """``alert_exposure_state``: every village of ``exp``, made from its columns (as many as
    83,762 rows: no tuple per village on the way)."""
    c = exp.columns
    return [
        {
            "event_id": event_id,
            "version": version,
            "village_code": code,
            "regency_code": regency_of(code),
            "mmi": mmi,
            "mmi_predicted": mmi_predicted,
            "hazard_class": hazard_class,
            "exposed_households": households,
            "exposed_persons": persons,
            "exposed_kpm_households": kpm,
            "exposed_vulnerable": vulnerable,
            "exposed_pregnant": pregnant,
            "est_displaced": displaced,
            "est_deaths": deaths,
        }
        for (
            code,
            mmi,
            mmi_predicted,
            hazard_class,
            households,
            persons,
            kpm,
            vulnerable,
            pregnant,
            displaced,
            deaths,
        ) in zip(*c, strict=True)
    ]


def estimate_rows(event_id: str, version: int, estimates: list[RangeEstimate]) -> list[Row]:
    """``estimate_state``: each estimate of one alert version with its range."""
    return [
        {
            "event_id": event_id,
            "version": version,
            "model": e.model,
            "outcome": e.outcome,
            "range_low": e.range_low,
            "range_high": e.range_high,
            "probability": e.probability,
            "central": e.central,
            "label": e.label,
        }
        for e in estimates
    ]


def incident_link_row(link: IncidentLink, received_at: datetime) -> Row:
    """``incident_link_state``: one operator decision, as made."""
    return {
        "link_id": link.link_id,
        "action": link.action,
        "event_id": link.event_id,
        "other_event_id": link.other_event_id,
        "operator": link.operator,
        "reason": link.reason,
        "decided_at": link.decided_at,
        "received_at": received_at.astimezone(UTC),
    }


def notification_row(notice: Notice, sent_at: datetime) -> Row:
    """``notification_state``: one notification sent."""
    return {
        "notification_id": notice.notification_id,
        "event_id": notice.event_id,
        "kind": notice.kind,
        "regency_code": notice.regency_code,
        "level": notice.level,
        "message": notice.message,
        "sent_at": sent_at,
    }


def lag_rows(groups: list[GroupLag], at: datetime) -> list[Row]:
    """``consumer_lag``: one sample per group and partition."""
    out: list[dict[str, Any]] = []
    for g in groups:
        for p in g.partitions:
            out.append(
                {
                    "sampled_at": at,
                    "group": g.group,
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed": p.committed,
                    "end_offset": p.end,
                    "lag": p.lag,
                    "lag_seconds": p.lag_seconds,
                    "status": p.status,
                    "group_status": g.status,
                }
            )
    return out

"""The command center's figures: one read of the analyst views for the page (``streams.ops.center``).

``figures(ask, event_id)`` takes any analyst-scope query runner (the worker's query pool, or
``sinks.analyst.query``) and returns plain JSON-able data: the events list, and for one event the
villages on the map, the reported totals over time beside the estimate, every estimate with its
range or label, minimum needs per regency, and the households to re-assess counted by reason and
village. No personal data: the
views it reads hold pseudonyms at most, and it reads none of them.

Times are stored and read in UTC; each event carries the legal time zone of its place
(``schemas.regions.time_zone``, Keputusan Presiden No. 41 Tahun 1987) for the page to show them
in: ``province_code``, ``time_zone`` ("WIB", "WITA" or "WIT") and ``utc_offset_h`` (7, 8 or 9),
or None, "UTC" and 0 for an event with no known place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from schemas.geo import boundaries
from schemas.official import official_figures
from schemas.regions import time_zone

__all__ = ["Ask", "Contours", "figures", "place_zone"]

logger = logging.getLogger(__name__)

#: (sql, parameters) -> (column names, rows)
Ask = Callable[[str, Mapping[str, Any]], tuple[Sequence[str], Sequence[Sequence[Any]]]]
#: an ``alerts`` row -> the GeoJSON FeatureCollection of its intensity contours
Contours = Callable[[Mapping[str, Any]], dict[str, Any]]

EVENTS = """
SELECT event_id, incident_id, hazard, event_time, magnitude, depth_km, headline, warning, pager_level,
       round(est_displaced) AS est_displaced, round(est_deaths, 1) AS est_deaths,
       est_deaths_low, est_deaths_high, round(est_deaths_probability, 3) AS est_deaths_probability,
       est_exposed_households, reported_reports, reported_households_affected, reported_displaced,
       reported_dead, reported_injured, reported_missing, reported_houses_heavy,
       reported_houses_moderate, reported_houses_light, reported_kpm_households_affected
FROM dampak.event_summary
ORDER BY event_id = {event:String} DESC, event_time DESC
LIMIT {most:UInt32} + 1
"""

#: The events the page lists: the most recent, and the one asked for however old it is.
LISTED_EVENTS = 50

# Each event's place, a region code whose province names its time zone: the village with the highest
# estimated intensity (an earthquake's MMI), else the first exposed village (or area, for an alert
# that lists areas) by code, else the village with the most reports (counted on ``field_reports``,
# which costs a fourth of what ``impact_village`` does: only a zone is wanted).
PLACES = """
SELECT event_id, argMin(code, (source, -score, code)) AS place_code
FROM (
    SELECT event_id, if(village_code != '', village_code, regency_code) AS code,
           if(max(mmi) IS NULL, 1, 0) AS source, toFloat64(ifNull(max(mmi), 0)) AS score
    FROM dampak.alert_exposure
    WHERE event_id IN {events:Array(String)}
    GROUP BY event_id, code
    UNION ALL
    SELECT event_id, village_code, 2, toFloat64(count())
    FROM dampak.field_reports
    WHERE event_id IN {events:Array(String)}
    GROUP BY event_id, village_code
)
WHERE code != ''
GROUP BY event_id
"""

# The villages of the event: those with reports, those the estimate reaches (with its MMI or
# class), and the villages its incident struck (``exposed_villages``, level >= 1: MMI VI or more,
# or an area hazard's medium or high class), each with its kecamatan and regency, its shipped
# position (``village_positions``: the village's centroid, or its district's, ``position_source``)
# and its registered households (the denominator of the damage extent the map is coloured by).
VILLAGES = """
SELECT u.code AS code, any(v.name) AS name, substring(u.code, 1, 8) AS district_code,
       any(d.name) AS district_name, substring(u.code, 1, 5) AS regency_code,
       any(g.name) AS regency_name, any(if(p.code = '', NULL, p.lat)) AS lat,
       any(if(p.code = '', NULL, p.lon)) AS lon, any(p.source) AS position_source,
       max(u.reports) AS reports, max(u.households_affected) AS households_affected,
       max(u.houses_heavy) AS houses_heavy, max(u.houses_moderate) AS houses_moderate,
       max(u.houses_light) AS houses_light, max(u.displaced) AS displaced, max(u.dead) AS dead,
       max(u.injured) AS injured, max(u.missing) AS missing, round(max(u.mmi), 2) AS mmi,
       max(u.hazard_class) AS hazard_class, max(u.level) AS exposure_level,
       count() OVER () AS villages_total
FROM (
    SELECT village_code AS code, reports, households_affected, houses_heavy, houses_moderate,
           houses_light, displaced, dead, injured, missing, CAST(NULL, 'Nullable(Float64)') AS mmi,
           '' AS hazard_class, 0 AS level
    FROM dampak.impact_village_of(incident = {incident:String}) WHERE event_id = {event:String}
    UNION ALL
    SELECT village_code, 0, 0, 0, 0, 0, 0, 0, 0, 0, mmi, hazard_class, 0
    FROM dampak.alert_exposure WHERE event_id = {event:String}
    UNION ALL
    SELECT village_code, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, '', level
    FROM dampak.exposed_villages_of(incident = {incident:String})
) AS u
LEFT JOIN dampak.regions AS v ON v.code = u.code
LEFT JOIN dampak.regions AS d ON d.code = substring(u.code, 1, 8)
LEFT JOIN dampak.regions AS g ON g.code = substring(u.code, 1, 5)
LEFT JOIN dampak.village_positions AS p ON p.code = u.code
GROUP BY u.code
ORDER BY reports > 0 DESC, households_affected DESC, exposure_level DESC, mmi DESC NULLS LAST, code
LIMIT {limit:UInt32}
"""

#: The most villages the map draws: an event reaching more (a strong earthquake on Java reaches
#: thousands) draws the reported ones first, then the hardest struck, and says how many it left
#: out (``villages_total``). It keeps the page's data and its map bounded, and the query under
#: the analyst row cap (``DAMPAK_CLICKHOUSE__QUERY_MAX_ROWS``, 10,000 by default).
MAP_VILLAGES = 5_000

# Registered households of the villages on the map (the registry's count, no household).
REGISTERED = """
SELECT village_code AS code, households
FROM dampak.village_stats
WHERE village_code IN {codes:Array(String)}
"""

# The event's alert: its epicentre, and what its intensity contours are drawn from.
ALERT = """
SELECT event_id, hazard, lat, lon, magnitude, depth_km, felt
FROM dampak.alerts
WHERE event_id = {event:String}
"""

# The events of an incident, in time order, with the rule that placed each in it.
INCIDENT = """
SELECT i.event_id AS event_id, i.hazard AS hazard, i.event_time AS event_time, i.rule AS rule,
       i.warning AS warning, a.magnitude AS magnitude, a.headline AS headline
FROM dampak.event_incident AS i
LEFT JOIN dampak.alerts AS a ON a.event_id = i.event_id
WHERE i.incident_id = {incident:String}
ORDER BY i.event_time, i.event_id
"""

# Names of villages and their kecamatan, for tables that list villages by code.
PLACE_NAMES = """
SELECT v.code AS code, v.name AS name, d.name AS district_name
FROM dampak.regions AS v
LEFT JOIN dampak.regions AS d ON d.code = substring(v.code, 1, 8)
WHERE v.code IN {codes:Array(String)}
"""

# The reported totals as the reports arrived: each report counted from the time it was made, at
# its current figures.
TIMELINE = """
SELECT t, sum(h) OVER w AS households_affected, sum(dp) OVER w AS displaced, sum(d) OVER w AS dead,
       sum(i) OVER w AS injured, sum(m) OVER w AS missing
FROM (
    SELECT toStartOfHour(reported_at) AS t, countIf(household_ref != '') AS h, sum(displaced) AS dp,
           sum(dead) AS d, sum(injured) AS i, sum(missing) AS m
    FROM dampak.field_reports_of(incident = {incident:String})
    WHERE event_id = {event:String}
    GROUP BY t
)
WINDOW w AS (ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY t
"""

NEEDS = """
SELECT regency_code, regency_name, round(est_displaced) AS est_displaced, reported_displaced,
       round(est_rice_kg_week) AS est_rice_kg_week, round(reported_rice_kg_week) AS reported_rice_kg_week,
       round(est_drinking_water_l_week) AS est_drinking_water_l_week,
       round(reported_drinking_water_l_week) AS reported_drinking_water_l_week,
       round(est_family_kits_week) AS est_family_kits_week,
       round(reported_family_kits_week) AS reported_family_kits_week,
       round(est_toilets) AS est_toilets, round(reported_toilets) AS reported_toilets
FROM dampak.minimum_needs_of(incident = {incident:String})
WHERE event_id = {event:String}
ORDER BY greatest(est_displaced, toFloat64(reported_displaced)) DESC
"""

REASSESS_BY_REASON = """
SELECT reason, count() AS households
FROM dampak.registry_candidates_of(incident = {incident:String})
WHERE event_id = {event:String}
GROUP BY reason
ORDER BY households DESC
"""

REASSESS_BY_VILLAGE = """
SELECT c.village_code AS code, any(r.name) AS name, any(d.name) AS district_name,
       count() AS households, countIf(c.heavy_damage) AS heavy_damage,
       countIf(c.displacement) AS displacement
FROM dampak.registry_candidates_of(incident = {incident:String}) AS c
LEFT JOIN dampak.regions AS r ON r.code = c.village_code
LEFT JOIN dampak.regions AS d ON d.code = substring(c.village_code, 1, 8)
WHERE c.event_id = {event:String}
GROUP BY c.village_code
ORDER BY households DESC
LIMIT 15
"""

# Every estimate of the event with its range or label (the page never shows a bare estimate).
RANGES = """
SELECT model, outcome, range_low, range_high, round(probability, 4) AS probability, central, label
FROM dampak.estimate_ranges_of(incident = {incident:String})
WHERE event_id = {event:String}
ORDER BY model, range_low
"""

# What Kemensos owes for the event's incident, per regency and kind (Permensos 4/2015).
ENTITLEMENTS = """
SELECT e.regency_code AS regency_code, any(g.name) AS regency_name, e.kind AS kind,
       sum(e.basis_count) AS basis_count, any(e.unit_amount_idr) AS unit_amount_idr,
       sum(e.amount_idr) AS amount_idr
FROM dampak.entitlements_of(incident = {incident:String}) AS e
LEFT JOIN dampak.regions AS g ON g.code = e.regency_code
GROUP BY e.regency_code, e.kind
ORDER BY e.regency_code, e.kind
"""

# The kecamatan of the event's incident with struck villages no one has reported from yet.
COVERAGE = """
SELECT district_code, district_name, exposed_villages, unreported_villages,
       arraySlice(unreported, 1, 10) AS unreported, last_report_at, hours_since_last_report
FROM dampak.coverage_of(incident = {incident:String})
ORDER BY unreported_villages DESC, district_code
LIMIT 20
"""

DEAD_LETTERS_LAST_HOUR = """
SELECT count() AS n FROM dampak.dead_letters WHERE received_at >= now() - INTERVAL 1 HOUR
"""


def _records(ask: Ask, sql: str, **parameters: Any) -> list[dict[str, Any]]:
    columns, rows = ask(sql, parameters)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def place_zone(code: str | None) -> dict[str, Any]:
    """``province_code``, ``time_zone`` and ``utc_offset_h`` of a place: its province's zone, or
    UTC for no place (or a code of no known province, logged)."""
    if code:
        try:
            name, hours = time_zone(code)
        except ValueError:
            logger.warning("no time zone for the place %r: its times are shown in UTC", code)
        else:
            return {"province_code": code.split(".", 1)[0], "time_zone": name, "utc_offset_h": hours}
    return {"province_code": None, "time_zone": "UTC", "utc_offset_h": 0}


def _with_zones(ask: Ask, events: list[dict[str, Any]]) -> None:
    """Each event's place's time zone, set on the event (``place_zone``)."""
    places: dict[str, str] = {}
    if events:
        found = _records(ask, PLACES, events=[e["event_id"] for e in events])
        places = {p["event_id"]: p["place_code"] for p in found}
    for event in events:
        event.update(place_zone(places.get(event["event_id"])))


def _villages(ask: Ask, event: str, incident: str) -> tuple[list[dict[str, Any]], int]:
    """The map's villages (``VILLAGES``, at most ``MAP_VILLAGES``) with their registered
    households, and whether each was struck (``exposed``) and has reports (``reported``); and how
    many villages the event has in all."""
    villages = _records(ask, VILLAGES, event=event, incident=incident, limit=MAP_VILLAGES)
    total = int(villages[0]["villages_total"]) if villages else 0
    registered: dict[str, int] = {}
    if villages:
        found = _records(ask, REGISTERED, codes=[v["code"] for v in villages])
        registered = {r["code"]: int(r["households"]) for r in found}
    for village in villages:
        del village["villages_total"]
        village["registered_households"] = registered.get(village["code"], 0)
        village["exposed"] = bool(village["exposure_level"] and village["exposure_level"] >= 1)
        village["reported"] = bool(village["reports"])
    return villages, total


def _geography(villages: list[dict[str, Any]]) -> dict[str, Any]:
    """The shipped outlines of the map's villages, their kecamatan and their regencies."""
    codes = [v["code"] for v in villages]
    return {
        "villages": boundaries(codes),
        "districts": boundaries(c[:8] for c in codes),
        "regencies": boundaries(c[:5] for c in codes),
    }


def _village_labels(ask: Ask, codes: Sequence[str]) -> dict[str, str]:
    """Each village code as "Name (Kec. District)", in one query; a code of no known name stays."""
    if not codes:
        return {}
    found = {r["code"]: r for r in _records(ask, PLACE_NAMES, codes=sorted(set(codes)))}

    def label(code: str) -> str:
        row = found.get(code)
        if row is None or not row["name"]:
            return code
        return f"{row['name']} (Kec. {row['district_name']})" if row["district_name"] else row["name"]

    return {code: label(code) for code in codes}


def _official(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """BNPB's published figures for the event, where ``schemas.official`` holds them."""
    at = event.get("event_time")
    if isinstance(at, str):  # through the worker's /query, times arrive as text
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return None
    if not isinstance(at, datetime):
        return None
    found = official_figures(
        event["hazard"], at if at.tzinfo else at.replace(tzinfo=UTC), event.get("magnitude")
    )
    return None if found is None else found.published()


def figures(ask: Ask, event_id: str | None = None, contours: Contours | None = None) -> dict[str, Any]:
    """Everything the page shows, for ``event_id`` (default: the most recent event). ``contours``
    draws an earthquake's intensity contours from its ``alerts`` row (the stream layer's
    ``streams.domain.contours.alert_contours``); without it the page has none. ``as_of``: when
    the read began (UTC, ISO 8601)."""
    as_of = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # The event asked for comes first whatever its age, then the most recent; listed newest first.
    events = _records(ask, EVENTS, event=event_id or "", most=LISTED_EVENTS)
    events.sort(key=lambda e: (e["event_time"] is not None, str(e["event_time"] or "")), reverse=True)
    if len(events) > LISTED_EVENTS:
        events.remove(next(e for e in reversed(events) if e["event_id"] != event_id))
    _with_zones(ask, events)
    chosen = next((e for e in events if e["event_id"] == event_id), None) if event_id else None
    if chosen is None and not event_id and events:
        chosen = events[0]
    no_lines: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    out: dict[str, Any] = {
        "as_of": as_of,
        "events": events,
        "event": chosen,
        "dead_letters_last_hour": _records(ask, DEAD_LETTERS_LAST_HOUR)[0]["n"],
    }
    if chosen is None:
        empty: dict[str, list[Any]] = {"by_reason": [], "by_village": []}
        out.update(
            villages=[], villages_total=0, timeline=[], needs=[], ranges=[], entitlements=[], coverage=[],
            reassess=empty, incident=None, geo=_geography([]), contours=no_lines,
        )  # fmt: skip
        return out
    event = chosen["event_id"]
    incident = chosen.get("incident_id") or event
    out["villages"], out["villages_total"] = _villages(ask, event, incident)
    out["geo"] = _geography(out["villages"])
    alert = next(iter(_records(ask, ALERT, event=event)), None)
    chosen["epicentre"] = (
        {"lat": alert["lat"], "lon": alert["lon"]}
        if alert is not None and alert["lat"] is not None and alert["lon"] is not None
        else None
    )
    chosen["official"] = _official(chosen)
    out["contours"] = contours(alert) if alert is not None and contours is not None else no_lines
    out["incident"] = {"incident_id": incident, "events": _records(ask, INCIDENT, incident=incident)}
    out["timeline"] = _records(ask, TIMELINE, event=event, incident=incident)
    out["needs"] = _records(ask, NEEDS, event=event, incident=incident)
    out["ranges"] = _records(ask, RANGES, event=event, incident=incident)
    out["entitlements"] = _records(ask, ENTITLEMENTS, incident=incident)
    out["coverage"] = _records(ask, COVERAGE, incident=incident)
    labels = _village_labels(ask, [code for d in out["coverage"] for code in d["unreported"]])
    for district in out["coverage"]:
        district["unreported"] = [labels[code] for code in district["unreported"]]
    out["reassess"] = {
        "by_reason": _records(ask, REASSESS_BY_REASON, event=event, incident=incident),
        "by_village": _records(ask, REASSESS_BY_VILLAGE, event=event, incident=incident),
    }
    return out

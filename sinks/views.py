"""Analyst views over the storage tables: repeatable DDL, re-created whenever it changes.

Views apply ``FINAL`` and filter retractions and superseded revisions, so a plain SELECT returns
the current, exact figures; analysts never need to know about versions or merges. They run with
their definer's rights (``SQL SECURITY DEFINER``), so on a ClickHouse server the analyst role
reads them without any right on the ``*_state`` tables.
"""

from __future__ import annotations

import logging
import re

from schemas.reference import (
    ATTRIBUTION_DAYS,
    GK_DISTANCE,
    GK_TIME_LARGE,
    GK_TIME_LARGE_FROM,
    GK_TIME_SMALL,
    NEEDS_PER_PERSON,
    PREGNANT_EXTRA_RICE_KG_WEEK,
    SECONDARY_MIN_MMI,
)

__all__ = [
    "ANALYST_OBJECTS",
    "INCIDENT_COVERAGE_SQL",
    "INCIDENT_DECISIONS_SQL",
    "INCIDENT_GROUPING_INPUTS",
    "INCIDENT_GROUPING_SQL",
    "PARAMETERIZED_VIEWS",
    "SCOPED_VIEWS",
    "VIEWS",
    "VILLAGE_REGISTRY_SQL",
    "impact_view_sql",
    "incident_refresh_statements",
    "scoped_view_sql",
    "view_statements",
]

logger = logging.getLogger(__name__)


# The latest version of each alert; BMKG bulletins carry no revision, so a later bulletin for the
# same event (same origin time) supersedes the earlier one by its position in the topic.
_ALERTS = """
CREATE OR REPLACE VIEW {db}.alerts SQL SECURITY DEFINER AS
SELECT * EXCEPT (version) FROM {db}.alerts_state FINAL
"""

_ALERT_EXPOSURE = """
CREATE OR REPLACE VIEW {db}.alert_exposure SQL SECURITY DEFINER AS
SELECT
    e.event_id AS event_id, e.village_code AS village_code, e.regency_code AS regency_code,
    e.mmi AS mmi, e.mmi_predicted AS mmi_predicted, e.hazard_class AS hazard_class,
    e.exposed_households AS exposed_households, e.exposed_persons AS exposed_persons,
    e.exposed_kpm_households AS exposed_kpm_households, e.exposed_vulnerable AS exposed_vulnerable,
    e.exposed_pregnant AS exposed_pregnant,
    e.est_displaced AS est_displaced, e.est_deaths AS est_deaths
FROM {db}.alert_exposure_state AS e FINAL
WHERE (e.event_id, e.version) IN (SELECT event_id, version FROM {db}.alerts_state FINAL)
"""

# Where an event is known to have struck, and since when:
# - an alert covers the villages with estimated MMI >= IV, or the areas it lists;
# - an event named by field reports (with no alert) begins with its earliest report and covers
#   the regencies reported under it.
_EVENT_COVERAGE = """
CREATE OR REPLACE VIEW {db}.event_coverage SQL SECURITY DEFINER AS
SELECT e.event_id AS event_id, e.village_code AS village_code, a.event_time AS began_at
FROM {db}.alert_exposure AS e
INNER JOIN (SELECT event_id, event_time FROM {db}.alerts_state FINAL) AS a ON a.event_id = e.event_id
"""

_REPORTED_EVENT_COVERAGE = """
CREATE OR REPLACE VIEW {db}.reported_event_coverage SQL SECURITY DEFINER AS
SELECT event_id, regency_code, began_at
FROM (
    SELECT reported_event_id AS event_id, min(reported_at) AS began_at,
           groupUniqArray(regency_code) AS regencies
    FROM {db}.report_state FINAL
    WHERE reported_event_id != '' AND NOT retracted
      AND reported_event_id NOT IN (SELECT event_id FROM {db}.alerts_state)
    GROUP BY reported_event_id
)
ARRAY JOIN regencies AS regency_code
"""


def _gk_sql(m: str) -> tuple[str, str]:
    """Gardner-Knopoff windows of magnitude column ``m`` in SQL: (km, days) (``schemas.reference``)."""
    km = f"pow(10, {GK_DISTANCE[0]} * {m} + {GK_DISTANCE[1]})"
    days = (
        f"if({m} >= {GK_TIME_LARGE_FROM}, pow(10, {GK_TIME_LARGE[0]} * {m} + {GK_TIME_LARGE[1]}), "
        f"pow(10, {GK_TIME_SMALL[0]} * {m} + {GK_TIME_SMALL[1]}))"
    )
    return km, days


def _km_sql(a: str, b: str) -> str:
    """Great-circle (haversine) distance in km between the ``lat``/``lon`` of aliases a and b."""
    return (
        f"2 * 6371.0088 * asin(sqrt(least(1, pow(sin(radians({b}.lat - {a}.lat) / 2), 2) + "
        f"cos(radians({a}.lat)) * cos(radians({b}.lat)) * pow(sin(radians({b}.lon - {a}.lon) / 2), 2))))"
    )


def _within_time(main: str, other: str) -> str:
    """``other`` begins in ``main``'s aftershock time window."""
    days = _gk_sql(f"{main}.m")[1]
    return f"{other}.t >= {main}.t AND dateDiff('millisecond', {main}.t, {other}.t) <= {days} * 86400000"


def _within_window(main: str, other: str) -> str:
    """``other`` falls in ``main``'s aftershock window (time after it, and distance)."""
    return f"{_within_time(main, other)} AND {_km_sql(main, other)} <= {_gk_sql(f'{main}.m')[0]}"


#: A quake's village shaken enough for a secondary hazard there to be its (a constant, not a value).
_SHOOK_TO_DAMAGE = f"x.mmi >= {float(SECONDARY_MIN_MMI)}"


# Every event (alerts, and events named only by reports) with its incident and the rule that put
# it there (README, *Incidents*):
# - earthquakes are declustered by Gardner-Knopoff windows: a quake no other quake's window covers
#   is a main shock; another joins the first-ranked main shock (larger, then earlier) covering it;
# - an area hazard that begins in a main shock's time window and reaches a village it shook at
#   MMI VI or more joins the main shock's incident ('secondary');
# - a warning (CAP Met, extreme weather) and any other event stand alone;
# - an operator's latest decision per (event_id, other_event_id) on incident-links overrides: a
#   link puts event_id in other_event_id's incident, an unlink takes it out of an incident dampak
#   grouped it in. A decision on a main shock moves its aftershocks with it.
#
# The grouping is computed when its inputs change, not at every query (it is read by every
# figure): the writer runs INCIDENT_GROUPING_SQL into ``incident_state`` after each insert into
# the tables in INCIDENT_GROUPING_INPUTS (``sinks.writer``), and ``event_incident`` reads the
# latest grouping. An event with no row there (named only by reports) is an incident of its own.
# It reads the exposure rows of each alert's version without FINAL: it needs only which villages
# each reached, and a row written twice is the same village.
INCIDENT_GROUPING_SQL = f"""
WITH
    events AS (
        SELECT event_id, toString(hazard) AS hazard, event_time, lat, lon, magnitude,
               warning OR hazard = 'extreme_weather' AS warning
        FROM {{db}}.alerts
        UNION ALL
        SELECT e, '', min(decided_at), NULL, NULL, NULL, false
        FROM {{db}}.incident_link_state FINAL
        ARRAY JOIN [event_id, other_event_id] AS e
        WHERE e NOT IN (SELECT event_id FROM {{db}}.alerts_state)
        GROUP BY e
    ),
    quakes AS (
        SELECT event_id, event_time AS t, assumeNotNull(lat) AS lat, assumeNotNull(lon) AS lon,
               assumeNotNull(magnitude) AS m
        FROM events WHERE hazard = 'earthquake' AND NOT warning
    ),
    covered AS (
        SELECT e.event_id AS event_id, s.event_id AS main_id, s.m AS main_m, s.t AS main_t
        FROM quakes AS e CROSS JOIN quakes AS s
        WHERE e.event_id != s.event_id
          AND (s.m > e.m OR (s.m = e.m AND (s.t < e.t OR (s.t = e.t AND s.event_id < e.event_id))))
          AND {_within_window("s", "e")}
    ),
    quake_main AS (
        SELECT q.event_id AS event_id, if(c.chosen = '', q.event_id, c.chosen) AS incident_id,
               if(c.chosen = '', 'main', 'aftershock') AS rule
        FROM quakes AS q
        LEFT JOIN (
            SELECT event_id, argMin(main_id, (-main_m, main_t, main_id)) AS chosen
            FROM covered
            WHERE main_id NOT IN (SELECT event_id FROM covered)
            GROUP BY event_id
        ) AS c ON c.event_id = q.event_id
    ),
    secondary AS (
        SELECT a.event_id AS event_id, argMin(s.event_id, (-s.m, s.t, s.event_id)) AS incident_id
        FROM (
            SELECT DISTINCT x.event_id AS event_id, x.village_code AS village_code, ev.event_time AS t
            FROM {{db}}.alert_exposure_state AS x INNER JOIN events AS ev ON ev.event_id = x.event_id
            WHERE x.event_id IN (
                SELECT event_id FROM events WHERE hazard NOT IN ('earthquake', '') AND NOT warning
            )
              AND (x.event_id, x.version) IN (SELECT event_id, version FROM {{db}}.alerts_state FINAL)
        ) AS a
        INNER JOIN (
            SELECT DISTINCT x.village_code AS village_code, q.event_id AS event_id, q.t AS t, q.m AS m
            FROM {{db}}.alert_exposure_state AS x
            INNER JOIN quakes AS q ON q.event_id = x.event_id
            WHERE {_SHOOK_TO_DAMAGE}
              AND x.event_id IN (SELECT event_id FROM quake_main WHERE rule = 'main')
              AND (x.event_id, x.version) IN (SELECT event_id, version FROM {{db}}.alerts_state FINAL)
        ) AS s ON s.village_code = a.village_code
        WHERE {_within_time("s", "a")}
        GROUP BY a.event_id
    ),
    auto AS (
        SELECT ev.event_id AS event_id,
               multiIf(qm.incident_id != '', qm.incident_id, sc.incident_id != '', sc.incident_id,
                       ev.event_id) AS incident_id,
               multiIf(ev.warning, 'warning', qm.incident_id != '', qm.rule, sc.incident_id != '',
                       'secondary', ev.hazard = '', 'reported', 'main') AS rule,
               ev.hazard AS hazard, ev.event_time AS event_time, ev.warning AS warning
        FROM events AS ev
        LEFT JOIN quake_main AS qm ON qm.event_id = ev.event_id
        LEFT JOIN secondary AS sc ON sc.event_id = ev.event_id
    )
SELECT event_id, incident_id, rule, hazard, event_time, warning FROM auto
SETTINGS join_use_nulls = 0
"""

# The operators' decisions over the grouping by the rules (``incident_auto_state``): a second
# statement, over a table, so that the grouping's own query is planned once, not in every join.
INCIDENT_DECISIONS_SQL = """
WITH
    auto AS (
        SELECT event_id, incident_id, rule, hazard, event_time, warning
        FROM {db}.incident_auto_state FINAL
    ),
    decisions AS (
        SELECT event_id, other_event_id, argMax(action, (decided_at, link_id)) AS last_action,
               max(decided_at) AS last_at
        FROM {db}.incident_link_state FINAL
        GROUP BY event_id, other_event_id
    ),
    links AS (
        SELECT event_id, argMax(other_event_id, (last_at, other_event_id)) AS other
        FROM decisions WHERE last_action = 'link' GROUP BY event_id
    ),
    unlinked AS (
        SELECT DISTINCT d.event_id AS event_id
        FROM decisions AS d
        INNER JOIN auto AS x ON x.event_id = d.event_id
        INNER JOIN auto AS y ON y.event_id = d.other_event_id
        WHERE d.last_action = 'unlink' AND x.incident_id = y.incident_id
    ),
    base AS (
        SELECT a.event_id AS event_id,
               multiIf(l.other != '', if(o.incident_id != '', o.incident_id, l.other),
                       u.event_id != '', a.event_id, a.incident_id) AS incident_id,
               multiIf(l.other != '', 'operator_link', u.event_id != '', 'operator_unlink', a.rule) AS rule,
               a.hazard AS hazard, a.event_time AS event_time, a.warning AS warning
        FROM auto AS a
        LEFT JOIN links AS l ON l.event_id = a.event_id
        LEFT JOIN auto AS o ON o.event_id = l.other
        LEFT JOIN unlinked AS u ON u.event_id = a.event_id
    )
SELECT b.event_id AS event_id,
       if(b2.event_id != '' AND b.incident_id != b.event_id, b2.incident_id, b.incident_id) AS incident_id,
       if(b2.event_id != '' AND b.incident_id != b.event_id AND b2.incident_id != b.incident_id,
          'operator_link', b.rule) AS rule,
       b.hazard AS hazard, b.event_time AS event_time, b.warning AS warning
FROM base AS b
LEFT JOIN base AS b2 ON b2.event_id = b.incident_id
SETTINGS join_use_nulls = 0
"""

#: The tables whose inserts change the grouping (the writer refreshes ``incident_state`` after them).
#: An alert's exposure is written before its alerts_state row (``streams.features.alerts``), so the
#: alert's row is the one to follow.
INCIDENT_GROUPING_INPUTS = frozenset({"alerts_state", "incident_link_state"})


def incident_refresh_statements(database: str) -> list[str]:
    """The statements that store the grouping of every event as of now (a new version): by the
    rules into ``incident_auto_state``, then with the operators' decisions into
    ``incident_state``, then the villages each incident covers into ``incident_coverage_state``
    (``INCIDENT_COVERAGE_SQL``; an (incident, village) no longer covered is marked removed)."""
    version = "toUInt64(toUnixTimestamp64Micro(now64(6)))"
    columns = "(event_id, version, incident_id, rule, hazard, event_time, warning)"
    select = f"SELECT event_id, {version}, incident_id, rule, hazard, "
    covered = INCIDENT_COVERAGE_SQL.format(db=database)
    coverage = f"{database}.incident_coverage_state"
    return [
        f"INSERT INTO {database}.incident_auto_state {columns} {select}"
        f"event_time, warning FROM ({INCIDENT_GROUPING_SQL.format(db=database)})",
        f"INSERT INTO {database}.incident_state {columns} {select}"
        f"event_time, warning FROM ({INCIDENT_DECISIONS_SQL.format(db=database)})",
        f"INSERT INTO {coverage} (incident_id, village_code, version, removed, began_at, last_event_at, "
        f"level, hazards) SELECT incident_id, village_code, {version}, false, began_at, last_event_at, "
        f"level, hazards FROM ({covered}) UNION ALL SELECT incident_id, village_code, {version}, true, "
        f"began_at, last_event_at, level, hazards FROM {coverage} FINAL WHERE NOT removed "
        f"AND (incident_id, village_code) NOT IN (SELECT incident_id, village_code FROM ({covered}))",
    ]


_EVENT_INCIDENT = """
CREATE OR REPLACE VIEW {db}.event_incident SQL SECURITY DEFINER AS
SELECT event_id, incident_id, rule, hazard, event_time, warning
FROM {db}.incident_state FINAL
"""

# Every operator decision on incident-links: the audit trail (who, when, why).
_INCIDENT_LINKS = """
CREATE OR REPLACE VIEW {db}.incident_links SQL SECURITY DEFINER AS
SELECT link_id, action, event_id, other_event_id, operator, reason, decided_at, received_at
FROM {db}.incident_link_state FINAL
"""

# The villages each incident covers (warnings excepted), since its first event there, with how
# hard it struck them (``streams.domain.incidents.damage_level``) and by which hazards.
#
# Like the grouping it follows, it is computed when its inputs change, not at every query: every
# report's placement reads it. Its inputs are the alerts' exposure (read only for the alert
# versions in ``alerts_state``, written after their exposure) and the grouping, so the writer
# stores it after each regrouping (``incident_refresh_statements``) into
# ``incident_coverage_state``: each (incident, village) at a new version, and those no longer
# covered marked removed; ``incident_coverage`` reads the latest version of each.
INCIDENT_COVERAGE_SQL = """
SELECT i.incident_id AS incident_id, x.village_code AS village_code,
       min(i.event_time) AS began_at, max(i.event_time) AS last_event_at,
       max(if(i.hazard = 'earthquake',
              greatest(0, least(3, toInt32(floor(ifNull(x.mmi, 0) + 0.5)) - 5)),
              transform(splitByChar(':', toString(x.hazard_class))[2],
                        ['low', 'medium', 'high'], [1, 2, 3], 0)
       )) AS level,
       groupUniqArray(i.hazard) AS hazards
FROM {db}.alert_exposure AS x
INNER JOIN {db}.event_incident AS i ON i.event_id = x.event_id
WHERE NOT i.warning
GROUP BY i.incident_id, x.village_code
"""

_INCIDENT_COVERAGE = """
CREATE OR REPLACE VIEW {db}.incident_coverage SQL SECURITY DEFINER AS
SELECT incident_id, village_code, began_at, last_event_at, level, hazards
FROM {db}.incident_coverage_state FINAL
WHERE NOT removed
"""

# Where a report stands (README, *Attribution of untagged reports*):
# - a report with event_id: that event, in that event's incident ('event_id');
# - without: the incident that covers its village at its time (from its first event there to
#   ATTRIBUTION_DAYS after its latest), preferring one of the hazard the report names ('hazard'),
#   then the hardest struck there, then the most recent ('coverage');
# - else an event named by other reports in its regency within ATTRIBUTION_DAYS ('reported_area');
# - else 'unassigned'.
# Computed at query time: a late alert or an operator's decision re-places earlier reports.
_PLACED_REPORTS = f"""
CREATE OR REPLACE VIEW {{db}}.report_placement SQL SECURITY DEFINER AS
SELECT r.report_id AS report_id,
       argMax(c.incident_id, (r.reported_hazard != '' AND has(c.hazards, toString(r.reported_hazard)),
                              c.level, c.began_at, c.incident_id)) AS incident_id,
       max(r.reported_hazard != '' AND has(c.hazards, toString(r.reported_hazard))) AS by_hazard
FROM (
    SELECT report_id, village_code, reported_at, reported_hazard
    FROM {{db}}.report_state FINAL
    WHERE NOT retracted AND reported_event_id = ''
) AS r
INNER JOIN {{db}}.incident_coverage AS c ON c.village_code = r.village_code
WHERE r.reported_at >= c.began_at AND r.reported_at <= c.last_event_at + INTERVAL {ATTRIBUTION_DAYS} DAY
GROUP BY r.report_id
"""

#: Family programmes (a KPM family): PKH and Sembako, with BPNT, Sembako's name before 2020, as older
#: rows hold it (a constant: ``schemas.households.FAMILY_PROGRAMS``). PBI-JK covers persons.
_FAMILY_PROGRAMS = "['PKH', 'SEMBAKO', 'BPNT']"

#: Every column of a report as it stands, after its placement (``r``: its report_state row).
_REPORT_COLUMNS = f"""
    r.reported_hazard AS reported_hazard,
    r.reported_at AS reported_at,
    r.reporter_id AS reporter_id,
    r.reporter_role AS reporter_role,
    r.province_code AS province_code,
    r.regency_code AS regency_code,
    r.district_code AS district_code,
    r.village_code AS village_code,
    r.household_ref AS household_ref,
    r.houses_light AS houses_light,
    r.houses_moderate AS houses_moderate,
    r.houses_heavy AS houses_heavy,
    r.displaced AS displaced,
    r.dead AS dead,
    r.injured AS injured,
    r.injured_severe AS injured_severe,
    r.missing AS missing,
    r.affected_persons AS affected_persons,
    r.affected_families AS affected_families,
    r.houses_submerged AS houses_submerged,
    r.facilities_education AS facilities_education,
    r.facilities_health AS facilities_health,
    r.facilities_worship AS facilities_worship,
    r.facilities_office AS facilities_office,
    r.facilities_bridge AS facilities_bridge,
    r.shelter_name AS shelter_name,
    r.shelter_village_code AS shelter_village_code,
    r.shelter_displaced AS shelter_displaced,
    r.needs AS needs,
    r.lat AS lat,
    r.lon AS lon,
    r.notes AS notes,
    r.registered AS registered,
    r.desil AS desil,
    r.programs AS programs,
    hasAny(r.programs, {_FAMILY_PROGRAMS}) AS kpm,
    r.members AS members,
    if(has(r.programs, 'PBI'), r.members, 0) AS pbi_persons,
    r.vulnerable_persons AS vulnerable_persons,
    r.kk_ref AS kk_ref,
    r.graduated AS graduated,
    r.ingested_at AS updated_at,
    r.arrival AS arrival
"""

#: The parameter of the incident-scoped views (``scoped_view_sql``), as it reads once ``{db}`` is
#: formatted: ``{incident:String}``.
_INCIDENT = "{{incident:String}}"
#: The events of that incident (an event in no incident is its own: ``field_reports``).
_INCIDENT_EVENTS = "(SELECT event_id FROM {db}.event_incident WHERE incident_id = " + _INCIDENT + ")"


# A report with event_id is placed by it alone: only the untagged ones (reported_event_id = '')
# go through the placement joins, so the joins are built and probed for those rows, not for every
# report (the figures are the same: each branch keeps exactly the rows the other does not).
# ``tagged`` narrows the tagged reports read (``report_state`` is sorted by event, so a filter on
# the event reaches its primary key).
def _field_reports(tagged: str = "") -> str:
    return f"""
CREATE OR REPLACE VIEW {{db}}.field_reports SQL SECURITY DEFINER AS
SELECT
    r.report_id AS report_id,
    r.revision AS revision,
    r.reported_event_id AS event_id,
    if(ti.incident_id != '', ti.incident_id, r.reported_event_id) AS incident_id,
    'event_id' AS attribution,
    r.reported_event_id = '' AS event_inferred,{_REPORT_COLUMNS}
FROM (SELECT * FROM {{db}}.report_state FINAL WHERE NOT retracted AND reported_event_id != '' {tagged}) AS r
LEFT JOIN {{db}}.event_incident AS ti ON ti.event_id = r.reported_event_id
SETTINGS join_use_nulls = 0
UNION ALL
SELECT
    r.report_id AS report_id,
    r.revision AS revision,
    multiIf(
        r.reported_event_id != '', r.reported_event_id,
        p.incident_id != '', p.incident_id,
        rc.event_id != '' AND rc.began_at >= r.reported_at - INTERVAL {ATTRIBUTION_DAYS} DAY, rc.event_id,
        'unassigned') AS event_id,
    multiIf(
        r.reported_event_id != '', if(ti.incident_id != '', ti.incident_id, r.reported_event_id),
        p.incident_id != '', p.incident_id,
        rc.event_id != '' AND rc.began_at >= r.reported_at - INTERVAL {ATTRIBUTION_DAYS} DAY,
            if(rci.incident_id != '', rci.incident_id, rc.event_id),
        'unassigned') AS incident_id,
    multiIf(
        r.reported_event_id != '', 'event_id',
        p.incident_id != '' AND p.by_hazard, 'hazard',
        p.incident_id != '', 'coverage',
        rc.event_id != '' AND rc.began_at >= r.reported_at - INTERVAL {ATTRIBUTION_DAYS} DAY, 'reported_area',
        'unassigned') AS attribution,
    r.reported_event_id = '' AS event_inferred,{_REPORT_COLUMNS}
FROM (SELECT * FROM {{db}}.report_state FINAL WHERE NOT retracted AND reported_event_id = '') AS r
LEFT JOIN {{db}}.report_placement AS p ON p.report_id = r.report_id
LEFT JOIN {{db}}.event_incident AS ti ON ti.event_id = r.reported_event_id
ASOF LEFT JOIN {{db}}.reported_event_coverage AS rc
    ON r.regency_code = rc.regency_code AND r.reported_at >= rc.began_at
LEFT JOIN {{db}}.event_incident AS rci ON rci.event_id = rc.event_id
SETTINGS join_use_nulls = 0
"""


_FIELD_REPORTS = _field_reports()

_AREA_LEVELS = {
    "village": "village_code",
    "district": "district_code",
    "regency": "regency_code",
    "province": "province_code",
}


# One row per incident and household: the household's most recent current report in the incident
# (by reported_at, then by arrival), and how many current reports name it. Every figure counts a
# household once per incident, from this report: when two officers report the same house (under
# the main shock and under an aftershock, say), the later report stands, with its event.
# (argMax over a tuple also keeps a NULL desil, which plain argMax would skip.)
_LATEST = "(reported_at, arrival)"
_HOUSEHOLD_COLUMNS = (
    "event_id", "province_code", "regency_code", "district_code", "village_code",
    "houses_light", "houses_moderate", "houses_heavy", "displaced", "dead", "injured", "missing",
    "registered", "desil", "kpm", "vulnerable_persons", "kk_ref",
    "injured_severe", "affected_persons", "houses_submerged", "programs", "members", "pbi_persons",
    "graduated",
)  # fmt: skip
_HOUSEHOLD_IMPACT = f"""
CREATE OR REPLACE VIEW {{db}}.household_impact SQL SECURITY DEFINER AS
SELECT
    incident_id,
    household_ref,
    n AS reports,
    {", ".join(f"latest.{i} AS {c}" for i, c in enumerate(_HOUSEHOLD_COLUMNS, start=1))},
    last_update AS updated_at
FROM (
    SELECT incident_id, household_ref, count() AS n,
           argMax(tuple({", ".join(_HOUSEHOLD_COLUMNS)}), {_LATEST}) AS latest,
           max(updated_at) AS last_update
    FROM {{db}}.field_reports
    WHERE household_ref != ''
    GROUP BY incident_id, household_ref
)
"""


#: The columns of a report that the impact figures sum (``impact_view_sql``), besides its area.
_IMPACT_COLUMNS = (
    "event_id", "houses_light", "houses_moderate", "houses_heavy", "displaced", "dead", "injured",
    "missing", "kpm", "vulnerable_persons", "registered", "injured_severe", "affected_persons",
    "affected_families", "houses_submerged", "pbi_persons", "facilities_education",
    "facilities_health", "facilities_worship", "facilities_office", "facilities_bridge",
)  # fmt: skip


def impact_view_sql(level: str) -> str:
    """Impact figures per incident, event and area: each household once per incident, from its
    latest report (as ``household_impact``), plus every village summary. An incident's figure is
    the sum over its events' rows.

    ``field_reports`` is read once: a household's reports are grouped by (incident, household)
    and a village summary (no ``household_ref``) is a group of its own, keyed by its report_id,
    so its "latest report" is itself. Reading it twice (``household_impact`` and the summaries)
    would plan and run the placement of every report twice."""
    code = _AREA_LEVELS[level]
    columns = (*_IMPACT_COLUMNS, code)
    latest = ",\n               ".join(f"latest.{i} AS {c}" for i, c in enumerate(columns, start=1))
    return f"""
CREATE OR REPLACE VIEW {{db}}.impact_{level} SQL SECURITY DEFINER AS
SELECT
    a.incident_id AS incident_id,
    a.event_id AS event_id,
    a.{code} AS {code},
    g.name AS {level}_name,
    a.reports AS reports,
    a.households_affected AS households_affected,
    a.houses_light AS houses_light,
    a.houses_moderate AS houses_moderate,
    a.houses_heavy AS houses_heavy,
    a.displaced AS displaced,
    a.dead AS dead,
    a.injured AS injured,
    a.missing AS missing,
    a.kpm_households_affected AS kpm_households_affected,
    a.vulnerable_persons_affected AS vulnerable_persons_affected,
    a.unregistered_households_affected AS unregistered_households_affected,
    a.injured_severe AS injured_severe,
    a.affected_persons AS affected_persons,
    a.families_affected AS families_affected,
    a.houses_submerged AS houses_submerged,
    a.pbi_persons_affected AS pbi_persons_affected,
    a.facilities_education AS facilities_education,
    a.facilities_health AS facilities_health,
    a.facilities_worship AS facilities_worship,
    a.facilities_office AS facilities_office,
    a.facilities_bridge AS facilities_bridge,
    a.updated_at AS updated_at
FROM (
    SELECT
        incident_id, event_id, {code},
        sum(n) AS reports,
        countIf(household) AS households_affected,
        sum(houses_light) AS houses_light, sum(houses_moderate) AS houses_moderate,
        sum(houses_heavy) AS houses_heavy, sum(displaced) AS displaced, sum(dead) AS dead,
        sum(injured) AS injured, sum(missing) AS missing,
        countIf(household AND kpm) AS kpm_households_affected,
        sumIf(vulnerable_persons, household) AS vulnerable_persons_affected,
        countIf(household AND NOT registered) AS unregistered_households_affected,
        sum(injured_severe) AS injured_severe,
        sum(affected_persons) AS affected_persons,
        countIf(household) + sumIf(affected_families, NOT household) AS families_affected,
        sum(houses_submerged) AS houses_submerged,
        sumIf(pbi_persons, household) AS pbi_persons_affected,
        sumIf(facilities_education, NOT household) AS facilities_education,
        sumIf(facilities_health, NOT household) AS facilities_health,
        sumIf(facilities_worship, NOT household) AS facilities_worship,
        sumIf(facilities_office, NOT household) AS facilities_office,
        sumIf(facilities_bridge, NOT household) AS facilities_bridge,
        max(updated_at) AS updated_at
    FROM (
        SELECT incident_id, household_ref != '' AS household, n,
               {latest},
               last_update AS updated_at
        FROM (
            SELECT incident_id, household_ref, count() AS n,
                   argMax(tuple({", ".join(columns)}), {_LATEST}) AS latest,
                   max(updated_at) AS last_update
            FROM {{db}}.field_reports
            GROUP BY incident_id, household_ref, if(household_ref = '', report_id, '')
        )
    )
    GROUP BY incident_id, event_id, {code}
) AS a
LEFT JOIN {{db}}.regions AS g ON g.code = a.{code}
"""


# Households that a disaster may have pushed into poverty, or whom the registry misses: hit hard
# (heavy damage or displaced) and unregistered, graduated from PKH (and not back in it), unranked,
# above desil 5, or in desil 1-5 with no programme at all (an exclusion error the disaster makes
# urgent); judged on the same report that counts the household in the impact figures. Welfare
# staff re-assess them (``dampak export reassessment`` names them, from the office's own file).
_REGISTRY_CANDIDATES = """
CREATE OR REPLACE VIEW {db}.registry_candidates SQL SECURITY DEFINER AS
SELECT
    incident_id,
    event_id,
    household_ref,
    village_code,
    desil,
    kk_ref,
    multiIf(NOT registered, 'unregistered', graduated, 'graduated', desil IS NULL, 'unranked',
            desil > 5, 'above_desil_5', 'no_programme') AS reason,
    houses_heavy > 0 AS heavy_damage,
    displaced > 0 AS displacement,
    updated_at
FROM {db}.household_impact
WHERE (houses_heavy > 0 OR displaced > 0)
  AND (NOT registered OR graduated OR desil IS NULL OR desil > 5 OR empty(programs))
"""

#: Registry statistics per village with its position: the shipped centroid of the village, or of
#: its district where the village has none (``position_source``; ``village_positions``, loaded
#: from ``schemas/geo/`` by ``sinks.migrations``). Read by the alert estimate (``ClickHouseReader``)
#: and published as ``village_stats``. No position comes from a household: a mean over a village's
#: households could be one household's home.
VILLAGE_REGISTRY_SQL = """
SELECT
    s.village_code AS village_code, s.households AS households, s.persons AS persons,
    s.kpm_households AS kpm_households, s.pbi_persons AS pbi_persons,
    s.vulnerable_persons AS vulnerable_persons, s.pregnant AS pregnant,
    p.lat AS lat, p.lon AS lon, p.source AS position_source
FROM (
    SELECT
        h.village_code AS village_code,
        count() AS households,
        sum(h.members) AS persons,
        countIf(hasAny(h.programs, ['PKH', 'SEMBAKO', 'BPNT'])) AS kpm_households,
        sumIf(h.members, has(h.programs, 'PBI')) AS pbi_persons,
        sum(h.elderly + h.disabled + h.under5 + h.pregnant) AS vulnerable_persons,
        sum(h.pregnant) AS pregnant
    FROM {db}.registry_state AS h FINAL
    WHERE NOT h.deleted
    GROUP BY h.village_code
) AS s
LEFT JOIN {db}.village_positions AS p ON p.code = s.village_code
SETTINGS join_use_nulls = 1
"""

_VILLAGE_STATS = f"""
CREATE OR REPLACE VIEW {{db}}.village_stats SQL SECURITY DEFINER AS
{VILLAGE_REGISTRY_SQL}"""

_DEAD_LETTERS = """
CREATE OR REPLACE VIEW {db}.dead_letters SQL SECURITY DEFINER AS
SELECT topic, partition, offset, reason, key_ref, payload, payload_bytes, message_timestamp, received_at
FROM {db}.dead_letter_state FINAL
"""

# Every estimate with its range (``streams.domain.estimates``): PAGER's fatality and economic
# ranges with their probabilities, ITB's fatality estimate, InaSAFE's nominal displacement (an
# upper bound) and the displacement expected from the intensity's house damage, from the alert's
# latest version; and, once reports arrive, the displacement their damaged houses imply: persons
# of the houses reported heavily damaged (not habitable, BNPB) up to those of the heavily and
# moderately damaged, at the exposed villages' persons per household (the registry's where the
# event has no exposure).
_ESTIMATE_RANGES = """
CREATE OR REPLACE VIEW {db}.estimate_ranges SQL SECURITY DEFINER AS
SELECT e.event_id AS event_id, if(i.incident_id != '', i.incident_id, e.event_id) AS incident_id,
       e.model AS model, e.outcome AS outcome, e.range_low AS range_low, e.range_high AS range_high,
       e.probability AS probability, e.central AS central, e.label AS label
FROM (
    SELECT event_id, toString(model) AS model, toString(outcome) AS outcome, range_low, range_high,
           probability, central, label
    FROM {db}.estimate_state FINAL
    WHERE (event_id, version) IN (SELECT event_id, version FROM {db}.alerts_state FINAL)
    UNION ALL
    SELECT d.event_id, 'reported_damage', 'displaced', d.heavy * d.per_household,
           CAST((d.heavy + d.moderate) * d.per_household, 'Nullable(Float64)'), NULL,
           d.heavy * d.per_household,
           concat('dari rumah rusak yang dilaporkan: rusak berat hingga rusak berat dan sedang, ',
                  toString(round(d.per_household, 2)), ' jiwa per KK')
    FROM (
        SELECT r.event_id AS event_id, toFloat64(r.heavy) AS heavy, toFloat64(r.moderate) AS moderate,
               if(x.households > 0, x.persons / x.households,
                  (SELECT sum(persons) / greatest(sum(households), 1) FROM {db}.village_stats))
                   AS per_household
        FROM (
            SELECT event_id, sum(houses_heavy) AS heavy, sum(houses_moderate) AS moderate
            FROM {db}.impact_province GROUP BY event_id
        ) AS r
        LEFT JOIN (
            SELECT event_id, toFloat64(sum(exposed_persons)) AS persons,
                   toFloat64(sum(exposed_households)) AS households
            FROM {db}.alert_exposure GROUP BY event_id
        ) AS x ON x.event_id = r.event_id
        WHERE r.heavy + r.moderate > 0
    ) AS d
) AS e
LEFT JOIN {db}.event_incident AS i ON i.event_id = e.event_id
SETTINGS join_use_nulls = 0
"""

#: The reported figures every summary shows beside its estimate, summed from ``impact_province``.
_REPORTED = (
    "reports", "households_affected", "houses_light", "houses_moderate", "houses_heavy", "displaced",
    "dead", "injured", "missing", "kpm_households_affected", "injured_severe", "families_affected",
    "affected_persons", "houses_submerged", "pbi_persons_affected",
)  # fmt: skip
#: Their columns in a summary, from the subquery ``r`` (``_reported_totals``).
_REPORTED_COLUMNS = ",\n    ".join(f"r.{name} AS reported_{name}" for name in _REPORTED)


def _reported_totals(key: str) -> str:
    """The reported figures summed per ``key`` (``event_id`` or ``incident_id``), each household
    once per incident (``impact_province``)."""
    figures = ", ".join(f"sum({name}) AS {name}" for name in _REPORTED)
    return f"    SELECT {key}, {figures}\n    FROM {{db}}.impact_province GROUP BY {key}"


# Estimated (from the latest alert) beside reported (from field reports), per event. PAGER's
# alert is the higher of its fatality and economic alerts; est_deaths is PAGER's median, shown
# with its most likely range (est_deaths_low to est_deaths_high, open-ended when NULL, with its
# probability): estimate_ranges has every range. The range is read from the alert's latest
# estimates (``estimate_state``), as estimate_ranges has them, not through estimate_ranges: its
# displacement from reports would sum every report and the whole registry again.
_EVENT_SUMMARY = f"""
CREATE OR REPLACE VIEW {{db}}.event_summary SQL SECURITY DEFINER AS
SELECT
    a.event_id AS event_id, if(i.incident_id != '', i.incident_id, a.event_id) AS incident_id,
    i.rule AS incident_rule,
    a.hazard AS hazard, a.event_time AS event_time, a.issued_at AS issued_at,
    a.revision AS revision, a.source AS source, a.headline AS headline, a.warning AS warning,
    a.magnitude AS magnitude, a.depth_km AS depth_km, a.lat AS lat, a.lon AS lon, a.tsunami AS tsunami,
    a.areas AS areas, a.pager_level AS pager_level, a.pager_fatality_level AS pager_fatality_level,
    a.pager_economic_level AS pager_economic_level, a.felt_used AS felt_used,
    a.est_exposed_households AS est_exposed_households, a.est_exposed_persons AS est_exposed_persons,
    a.est_exposed_kpm_households AS est_exposed_kpm_households,
    a.est_deaths AS est_deaths, f.low AS est_deaths_low, f.high AS est_deaths_high,
    f.p AS est_deaths_probability,
    a.est_economic_loss_usd AS est_economic_loss_usd, a.est_displaced AS est_displaced,
    {_REPORTED_COLUMNS}
FROM {{db}}.alerts AS a
LEFT JOIN {{db}}.event_incident AS i ON i.event_id = a.event_id
LEFT JOIN (
    SELECT event_id, argMax(range_low, probability) AS low, argMax(range_high, probability) AS high,
           max(probability) AS p
    FROM {{db}}.estimate_state FINAL
    WHERE model = 'pager_fatality'
      AND (event_id, version) IN (SELECT event_id, version FROM {{db}}.alerts_state FINAL)
    GROUP BY event_id
) AS f ON f.event_id = a.event_id
LEFT JOIN (
{_reported_totals("event_id")}
) AS r ON r.event_id = a.event_id
"""

# One row per incident: its events and hazards, its main event's estimate (with its most likely
# fatality range) and the reported figures of all its events, each household counted once.
_INCIDENTS = f"""
CREATE OR REPLACE VIEW {{db}}.incidents SQL SECURITY DEFINER AS
SELECT
    g.incident_id AS incident_id,
    g.began_at AS began_at, g.last_event_at AS last_event_at,
    g.events AS events, g.event_rules AS event_rules, g.hazards AS hazards,
    m.hazard AS hazard, m.headline AS headline, m.magnitude AS magnitude,
    m.lat AS lat, m.lon AS lon,
    m.pager_level AS pager_level, m.est_deaths AS est_deaths, m.est_deaths_low AS est_deaths_low,
    m.est_deaths_high AS est_deaths_high, m.est_deaths_probability AS est_deaths_probability,
    m.est_economic_loss_usd AS est_economic_loss_usd, m.est_displaced AS est_displaced,
    m.est_exposed_households AS est_exposed_households,
    {_REPORTED_COLUMNS}
FROM (
    SELECT incident_id, min(event_time) AS began_at, max(event_time) AS last_event_at,
           arrayMap(x -> x.2, arraySort(groupArray((event_time, event_id)))) AS events,
           arrayMap(x -> x.2, arraySort(groupArray((event_time, rule)))) AS event_rules,
           arrayFilter(h -> h != '', groupUniqArray(hazard)) AS hazards
    FROM {{db}}.event_incident GROUP BY incident_id
) AS g
LEFT JOIN {{db}}.event_summary AS m ON m.event_id = g.incident_id
LEFT JOIN (
{_reported_totals("incident_id")}
) AS r ON r.incident_id = g.incident_id
"""


def _needs_columns(prefix: str, displaced: str, pregnant: str) -> str:
    cols = []
    for name, per_person in NEEDS_PER_PERSON.items():
        expr = f"{displaced} * {per_person}"
        if name == "rice_kg_week":
            expr += f" + {pregnant} * {PREGNANT_EXTRA_RICE_KG_WEEK}"
        cols.append(f"{expr} AS {prefix}_{name}")
    return ",\n    ".join(cols)


# BNPB minimum needs per event and regency, from estimated and from reported displaced persons.
_MINIMUM_NEEDS = f"""
CREATE OR REPLACE VIEW {{db}}.minimum_needs SQL SECURITY DEFINER AS
SELECT
    event_id, regency_code, any(g.name) AS regency_name,
    sum(est_disp) AS est_displaced, sum(rep_disp) AS reported_displaced,
    {_needs_columns("est", "sum(est_disp)", "sum(est_preg)")},
    {_needs_columns("reported", "sum(rep_disp)", "0")}
FROM (
    SELECT event_id, regency_code, est_displaced AS est_disp,
           exposed_pregnant * est_displaced / greatest(exposed_persons, 1) AS est_preg, 0 AS rep_disp
    FROM {{db}}.alert_exposure
    UNION ALL
    SELECT event_id, regency_code, 0, 0, displaced FROM {{db}}.impact_regency
) AS n
LEFT JOIN {{db}}.regions AS g ON g.code = n.regency_code
GROUP BY event_id, regency_code
"""

# What Kemensos owes under Permensos No. 4 of 2015 (direct cash assistance to disaster victims),
# per incident, event, regency and village, from the reported figures and the rates in force
# (``entitlement_rates``, written from DAMPAK_ENTITLEMENTS__* when a worker starts):
# - santunan to the heirs of each person who died;
# - a payment for each severely injured person;
# - jaminan hidup, per displaced person per day for the days set for the event (person-days);
# - isi hunian, per family whose house was heavily damaged (one family per house).
_ENTITLEMENTS = """
CREATE OR REPLACE VIEW {db}.entitlements SQL SECURITY DEFINER AS
SELECT incident_id, event_id, regency_code, village_code, kind, basis_count, unit_amount_idr,
       basis_count * unit_amount_idr AS amount_idr, basis, legal_basis
FROM (
    SELECT v.incident_id AS incident_id, v.event_id AS event_id,
           substring(v.village_code, 1, 5) AS regency_code, v.village_code AS village_code,
           r.kind AS kind,
           toUInt64(multiIf(r.kind = 'santunan_ahli_waris', v.dead,
                            r.kind = 'bantuan_luka_berat', v.injured_severe,
                            r.kind = 'jaminan_hidup', v.displaced * r.days,
                            r.kind = 'isi_hunian', v.houses_heavy, 0)) AS basis_count,
           r.unit_amount_idr AS unit_amount_idr, r.basis AS basis, r.legal_basis AS legal_basis
    FROM {db}.impact_village AS v
    CROSS JOIN (
        SELECT kind, argMax(unit_amount_idr, recorded_at) AS unit_amount_idr,
               argMax(days, recorded_at) AS days, argMax(basis, recorded_at) AS basis,
               argMax(legal_basis, recorded_at) AS legal_basis
        FROM {db}.entitlement_rates GROUP BY kind
    ) AS r
)
WHERE basis_count > 0
"""

# Evacuation sites (pos pengungsian) as reports name them: per incident and site, the displaced
# persons of the latest report of each reporter there, summed.
_SHELTERS = """
CREATE OR REPLACE VIEW {db}.shelters SQL SECURITY DEFINER AS
SELECT incident_id, shelter_village_code AS village_code, shelter_name AS name,
       sum(site_displaced) AS displaced, count() AS reports, max(last_at) AS last_report_at
FROM (
    SELECT incident_id, shelter_village_code, shelter_name, reporter_id,
           argMax(shelter_displaced, (reported_at, arrival)) AS site_displaced, max(reported_at) AS last_at
    FROM {db}.field_reports
    WHERE shelter_name != ''
    GROUP BY incident_id, shelter_village_code, shelter_name, reporter_id
)
GROUP BY incident_id, shelter_village_code, shelter_name
"""

# The villages each incident exposed (estimated MMI VI or more, or an area hazard's medium or high
# class; warnings excepted) and what has been reported from each: for dispatching TKSK and Tagana
# to the villages no one has reported from yet.
_EXPOSED_VILLAGES = """
CREATE OR REPLACE VIEW {db}.exposed_villages SQL SECURITY DEFINER AS
SELECT c.incident_id AS incident_id, c.village_code AS village_code,
       substring(c.village_code, 1, 8) AS district_code, c.level AS level, c.began_at AS exposed_since,
       ifNull(x.households, 0) AS exposed_households,
       ifNull(r.reports, 0) AS reports, r.last_report_at AS last_report_at,
       ifNull(r.tagana, 0) AS reports_tagana, ifNull(r.tksk, 0) AS reports_tksk,
       ifNull(r.pkh, 0) AS reports_pkh, ifNull(r.others, 0) AS reports_other
FROM {db}.incident_coverage AS c
LEFT JOIN (
    SELECT i.incident_id AS incident_id, e.village_code AS village_code,
           max(e.exposed_households) AS households
    FROM {db}.alert_exposure AS e INNER JOIN {db}.event_incident AS i ON i.event_id = e.event_id
    GROUP BY i.incident_id, e.village_code
) AS x ON x.incident_id = c.incident_id AND x.village_code = c.village_code
LEFT JOIN (
    SELECT incident_id, village_code, count() AS reports, max(reported_at) AS last_report_at,
           countIf(reporter_role = 'tagana') AS tagana, countIf(reporter_role = 'tksk') AS tksk,
           countIf(reporter_role = 'pkh') AS pkh,
           countIf(reporter_role NOT IN ('tagana', 'tksk', 'pkh')) AS others
    FROM {db}.field_reports GROUP BY incident_id, village_code
) AS r ON r.incident_id = c.incident_id AND r.village_code = c.village_code
WHERE c.level >= 1
SETTINGS join_use_nulls = 1
"""

# Per incident and district (kecamatan): exposed villages, those with no report yet (and which),
# the time since the district's last report, and reports by pillar role.
_COVERAGE = """
CREATE OR REPLACE VIEW {db}.coverage SQL SECURITY DEFINER AS
SELECT v.incident_id AS incident_id, v.district_code AS district_code, any(d.name) AS district_name,
       count() AS exposed_villages, countIf(v.reports > 0) AS reported_villages,
       countIf(v.reports = 0) AS unreported_villages,
       arraySort(groupArrayIf(v.village_code, v.reports = 0)) AS unreported,
       max(v.last_report_at) AS last_report_at,
       if(max(v.last_report_at) IS NULL, NULL, dateDiff('hour', max(v.last_report_at), now64(3)))
           AS hours_since_last_report,
       sum(v.reports_tagana) AS reports_tagana, sum(v.reports_tksk) AS reports_tksk,
       sum(v.reports_pkh) AS reports_pkh, sum(v.reports_other) AS reports_other
FROM {db}.exposed_villages AS v
LEFT JOIN {db}.regions AS d ON d.code = v.district_code
GROUP BY v.incident_id, v.district_code
"""

_NOTIFICATIONS = """
CREATE OR REPLACE VIEW {db}.notifications SQL SECURITY DEFINER AS
SELECT notification_id, event_id, kind, regency_code, level, message, sent_at
FROM {db}.notification_state FINAL
"""

#: Repeatable view DDL; ``{db}`` is the database (an identifier, never a value).
_VIEWS: tuple[str, ...] = (
    _ALERTS,
    _ALERT_EXPOSURE,
    _EVENT_COVERAGE,
    _REPORTED_EVENT_COVERAGE,
    _EVENT_INCIDENT,
    _INCIDENT_LINKS,
    _INCIDENT_COVERAGE,
    _PLACED_REPORTS,
    _FIELD_REPORTS,
    _HOUSEHOLD_IMPACT,
    *(impact_view_sql(level) for level in _AREA_LEVELS),
    _REGISTRY_CANDIDATES,
    _VILLAGE_STATS,
    _DEAD_LETTERS,
    _ESTIMATE_RANGES,
    _EVENT_SUMMARY,
    _INCIDENTS,
    _MINIMUM_NEEDS,
    _ENTITLEMENTS,
    _SHELTERS,
    _EXPOSED_VILLAGES,
    _COVERAGE,
    _NOTIFICATIONS,
)


# Every view computed from the reports has an incident-scoped form, ``<view>_of(incident = ID)``:
# the view's rows of that incident (of its events, for a view without ``incident_id``), computed
# from that incident's reports only. A household counts once per incident, so an incident's
# figures need its own reports and no other; the tagged ones are read through the primary key of
# ``report_state`` (sorted by event), and the untagged ones are all placed, as in the view, and
# those placed in the incident kept. The page and ``dampak report`` read these; so may analysts.
def _view_name(statement: str) -> str:
    """The name of the view a statement creates."""
    return re.search(r"VIEW \{db\}\.(\w+)", statement).group(1)  # type: ignore[union-attr]


def _computed_from_reports(views: tuple[str, ...]) -> list[str]:
    """``field_reports`` and every view that reads one of them (``views`` in creation order: a
    view after those it reads)."""
    names = ["field_reports"]
    for statement in views:
        if set(re.findall(r"\{db\}\.(\w+)", statement)) & set(names) and _view_name(statement) not in names:
            names.append(_view_name(statement))
    return names


#: Views without ``incident_id``: their scoped form keeps the rows of the incident's events.
_BY_EVENT = frozenset({"minimum_needs"})
#: The views computed from the reports, each with the column its scoped form selects the
#: incident's rows by.
SCOPED_VIEWS: dict[str, str] = {
    name: "event_id" if name in _BY_EVENT else "incident_id" for name in _computed_from_reports(_VIEWS)
}
_SCOPED_NAME = re.compile(r"\{db\}\.(" + "|".join(SCOPED_VIEWS) + r")\b")


def scoped_view_sql(statement: str) -> str:
    """The incident-scoped form of a view computed from the reports: its body reads the scoped
    form of every such view it reads (``field_reports``'s reads the incident's tagged reports
    only), and keeps the incident's rows."""
    head, body = statement.strip().split(" AS\n", 1)
    name = _view_name(head)
    if name == "field_reports":
        events = "reported_event_id IN " + _INCIDENT_EVENTS + " OR reported_event_id = " + _INCIDENT
        body = _field_reports("AND (" + events + ")").strip().split(" AS\n", 1)[1]
    body = _SCOPED_NAME.sub(lambda m: "{db}." + m.group(1) + "_of(incident = " + _INCIDENT + ")", body)
    if SCOPED_VIEWS[name] == "incident_id":
        keep = "incident_id = " + _INCIDENT
    else:
        keep = (
            "event_id IN " + _INCIDENT_EVENTS + " OR (event_id = " + _INCIDENT
            + " AND event_id NOT IN (SELECT event_id FROM {db}.event_incident))"
        )  # fmt: skip
    return f"\n{head.replace(f'.{name} ', f'.{name}_of ', 1)} AS\nSELECT * FROM (\n{body}\n)\nWHERE {keep}\n"


VIEWS: tuple[str, ...] = (*_VIEWS, *(scoped_view_sql(v) for v in _VIEWS if _view_name(v) in SCOPED_VIEWS))


#: The views called with a parameter (``<view>_of(incident = ID)``).
PARAMETERIZED_VIEWS: frozenset[str] = frozenset(f"{name}_of" for name in SCOPED_VIEWS)

#: What analysts read: the views above and the region names (``*_state`` tables are internal).
ANALYST_OBJECTS: tuple[str, ...] = (
    *(_view_name(v) for v in VIEWS),
    "regions",
    "village_positions",
)


def view_statements(database: str) -> list[str]:
    return [v.format(db=database) for v in VIEWS]

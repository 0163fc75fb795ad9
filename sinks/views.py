"""Analyst views over the storage tables: repeatable DDL, re-created whenever it changes.

Views apply ``FINAL`` and filter retractions and superseded revisions, so a plain SELECT returns
the current, exact figures; analysts never need to know about versions or merges. They run with
their definer's rights (``SQL SECURITY DEFINER``), so on a ClickHouse server the analyst role
reads them without any right on the ``*_state`` tables.
"""

from __future__ import annotations

import logging
import re

from schemas.reference import NEEDS_PER_PERSON, PREGNANT_EXTRA_RICE_KG_WEEK

__all__ = [
    "ANALYST_OBJECTS",
    "MIN_HOUSEHOLDS_FOR_POSITION",
    "VIEWS",
    "VILLAGE_REGISTRY_SQL",
    "impact_view_sql",
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
    e.mmi AS mmi, e.hazard_class AS hazard_class,
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

# A report without event_id joins the most recent covering event that began at most 14 days
# before it; computed at query time, so a late alert re-attaches earlier reports.
_FIELD_REPORTS = """
CREATE OR REPLACE VIEW {db}.field_reports SQL SECURITY DEFINER AS
SELECT
    r.report_id AS report_id,
    r.revision AS revision,
    multiIf(
        r.reported_event_id != '', r.reported_event_id,
        c.event_id != '' AND c.began_at >= r.reported_at - INTERVAL 14 DAY
            AND NOT (g.event_id != '' AND g.began_at >= r.reported_at - INTERVAL 14 DAY
                     AND g.began_at > c.began_at), c.event_id,
        g.event_id != '' AND g.began_at >= r.reported_at - INTERVAL 14 DAY, g.event_id,
        'unassigned') AS event_id,
    r.reported_event_id = '' AS event_inferred,
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
    r.missing AS missing,
    r.needs AS needs,
    r.lat AS lat,
    r.lon AS lon,
    r.notes AS notes,
    r.registered AS registered,
    r.desil AS desil,
    r.programs AS programs,
    r.kpm AS kpm,
    r.members AS members,
    r.vulnerable_persons AS vulnerable_persons,
    r.kk_ref AS kk_ref,
    r.ingested_at AS updated_at,
    r.arrival AS arrival
FROM (SELECT * FROM {db}.report_state FINAL WHERE NOT retracted) AS r
ASOF LEFT JOIN {db}.event_coverage AS c
    ON r.village_code = c.village_code AND r.reported_at >= c.began_at
ASOF LEFT JOIN {db}.reported_event_coverage AS g
    ON r.regency_code = g.regency_code AND r.reported_at >= g.began_at
SETTINGS join_use_nulls = 0
"""

_AREA_LEVELS = {
    "village": "village_code",
    "district": "district_code",
    "regency": "regency_code",
    "province": "province_code",
}


# One row per event and household: the household's most recent current report in the event (by
# reported_at, then by arrival), and how many current reports name it. Every figure counts a
# household once per event, from this report: when two officers report the same house, the later
# report stands. (argMax over a tuple also keeps a NULL desil, which plain argMax would skip.)
_LATEST = "(reported_at, arrival)"
_HOUSEHOLD_COLUMNS = (
    "province_code", "regency_code", "district_code", "village_code",
    "houses_light", "houses_moderate", "houses_heavy", "displaced", "dead", "injured", "missing",
    "registered", "desil", "kpm", "vulnerable_persons", "kk_ref",
)  # fmt: skip
_HOUSEHOLD_IMPACT = f"""
CREATE OR REPLACE VIEW {{db}}.household_impact SQL SECURITY DEFINER AS
SELECT
    event_id,
    household_ref,
    n AS reports,
    {", ".join(f"latest.{i} AS {c}" for i, c in enumerate(_HOUSEHOLD_COLUMNS, start=1))},
    last_update AS updated_at
FROM (
    SELECT event_id, household_ref, count() AS n,
           argMax(tuple({", ".join(_HOUSEHOLD_COLUMNS)}), {_LATEST}) AS latest,
           max(updated_at) AS last_update
    FROM {{db}}.field_reports
    WHERE household_ref != ''
    GROUP BY event_id, household_ref
)
"""


def impact_view_sql(level: str) -> str:
    """Impact figures per event and area: each household once per event (``household_impact``),
    plus every village summary."""
    code = _AREA_LEVELS[level]
    return f"""
CREATE OR REPLACE VIEW {{db}}.impact_{level} SQL SECURITY DEFINER AS
SELECT
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
    a.updated_at AS updated_at
FROM (
    SELECT
        event_id, {code},
        sum(n) AS reports,
        countIf(household) AS households_affected,
        sum(houses_light) AS houses_light, sum(houses_moderate) AS houses_moderate,
        sum(houses_heavy) AS houses_heavy, sum(displaced) AS displaced, sum(dead) AS dead,
        sum(injured) AS injured, sum(missing) AS missing,
        countIf(household AND kpm) AS kpm_households_affected,
        sumIf(vulnerable_persons, household) AS vulnerable_persons_affected,
        countIf(household AND NOT registered) AS unregistered_households_affected,
        max(updated_at) AS updated_at
    FROM (
        SELECT event_id, {code}, reports AS n, true AS household, houses_light, houses_moderate,
               houses_heavy, displaced, dead, injured, missing, kpm, vulnerable_persons, registered,
               updated_at
        FROM {{db}}.household_impact
        UNION ALL
        SELECT event_id, {code}, 1, false, houses_light, houses_moderate, houses_heavy, displaced,
               dead, injured, missing, false, 0, false, updated_at
        FROM {{db}}.field_reports
        WHERE household_ref = ''
    )
    GROUP BY event_id, {code}
) AS a
LEFT JOIN {{db}}.regions AS g ON g.code = a.{code}
"""


# Households that a disaster may have pushed into poverty: hit hard (heavy damage or displaced) and
# not known to be poor (unregistered, unranked, or above desil 5), judged on the same report that
# counts the household in the impact figures. Welfare staff re-assess them.
_REGISTRY_CANDIDATES = """
CREATE OR REPLACE VIEW {db}.registry_candidates SQL SECURITY DEFINER AS
SELECT
    event_id,
    household_ref,
    village_code,
    desil,
    kk_ref,
    multiIf(NOT registered, 'unregistered', desil IS NULL, 'unranked', 'above_desil_5') AS reason,
    houses_heavy > 0 AS heavy_damage,
    displaced > 0 AS displacement,
    updated_at
FROM {db}.household_impact
WHERE (houses_heavy > 0 OR displaced > 0) AND (NOT registered OR desil IS NULL OR desil > 5)
"""

#: A village's published position (``village_stats``, the command-center map) is the mean over at
#: least this many geolocated households, or none (NULL): a mean over fewer can be one
#: household's home, or narrow it down (k-anonymity: L. Sweeney, "k-anonymity: a model for
#: protecting privacy", Int. J. Uncertainty, Fuzziness and Knowledge-Based Systems 10(5), 2002).
#: The alert estimate, which publishes no position, reads the exact mean (``VILLAGE_REGISTRY_SQL``).
MIN_HOUSEHOLDS_FOR_POSITION = 10

#: Registry statistics per village with the exact mean position of its geolocated households
#: (``located`` of them): internal, read by the alert estimate (``ClickHouseReader``), never
#: published as it is.
VILLAGE_REGISTRY_SQL = """
SELECT
    h.village_code AS village_code,
    count() AS households,
    sum(h.members) AS persons,
    countIf(h.kpm) AS kpm_households,
    sum(h.elderly + h.disabled + h.under5 + h.pregnant) AS vulnerable_persons,
    sum(h.pregnant) AS pregnant,
    countIf(h.lat IS NOT NULL AND h.lon IS NOT NULL) AS located,
    avgIf(h.lat, h.lat IS NOT NULL AND h.lon IS NOT NULL) AS lat,
    avgIf(h.lon, h.lat IS NOT NULL AND h.lon IS NOT NULL) AS lon
FROM {db}.registry_state AS h FINAL
WHERE NOT h.deleted
GROUP BY h.village_code
"""

# The condition under which a village's mean position is published (a constant, not a value).
_POSITION_SHOWN = f"located >= {int(MIN_HOUSEHOLDS_FOR_POSITION)}"

_VILLAGE_STATS = f"""
CREATE OR REPLACE VIEW {{db}}.village_stats SQL SECURITY DEFINER AS
SELECT
    village_code, households, persons, kpm_households, vulnerable_persons, pregnant,
    if({_POSITION_SHOWN}, lat, NULL) AS lat,
    if({_POSITION_SHOWN}, lon, NULL) AS lon
FROM ({VILLAGE_REGISTRY_SQL})
"""

_DEAD_LETTERS = """
CREATE OR REPLACE VIEW {db}.dead_letters SQL SECURITY DEFINER AS
SELECT topic, partition, offset, reason, key_ref, payload, payload_bytes, message_timestamp, received_at
FROM {db}.dead_letter_state FINAL
"""

# Estimated (from the latest alert) beside reported (from field reports), per event.
_EVENT_SUMMARY = """
CREATE OR REPLACE VIEW {db}.event_summary SQL SECURITY DEFINER AS
SELECT
    a.event_id AS event_id, a.hazard AS hazard, a.event_time AS event_time, a.issued_at AS issued_at,
    a.revision AS revision, a.source AS source, a.headline AS headline,
    a.magnitude AS magnitude, a.depth_km AS depth_km, a.lat AS lat, a.lon AS lon, a.tsunami AS tsunami,
    a.areas AS areas, a.pager_level AS pager_level,
    a.est_exposed_households AS est_exposed_households, a.est_exposed_persons AS est_exposed_persons,
    a.est_exposed_kpm_households AS est_exposed_kpm_households,
    a.est_deaths AS est_deaths, a.est_displaced AS est_displaced,
    r.reports AS reported_reports,
    r.households_affected AS reported_households_affected,
    r.houses_light AS reported_houses_light,
    r.houses_moderate AS reported_houses_moderate,
    r.houses_heavy AS reported_houses_heavy,
    r.displaced AS reported_displaced,
    r.dead AS reported_dead,
    r.injured AS reported_injured,
    r.missing AS reported_missing,
    r.kpm_households_affected AS reported_kpm_households_affected
FROM {db}.alerts AS a
LEFT JOIN (
    SELECT event_id, sum(reports) AS reports, sum(households_affected) AS households_affected,
           sum(houses_light) AS houses_light, sum(houses_moderate) AS houses_moderate,
           sum(houses_heavy) AS houses_heavy, sum(displaced) AS displaced, sum(dead) AS dead,
           sum(injured) AS injured, sum(missing) AS missing,
           sum(kpm_households_affected) AS kpm_households_affected
    FROM {db}.impact_province GROUP BY event_id
) AS r ON r.event_id = a.event_id
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

_NOTIFICATIONS = """
CREATE OR REPLACE VIEW {db}.notifications SQL SECURITY DEFINER AS
SELECT notification_id, event_id, kind, regency_code, level, message, sent_at
FROM {db}.notification_state FINAL
"""

#: Repeatable view DDL; ``{db}`` is the database (an identifier, never a value).
VIEWS: tuple[str, ...] = (
    _ALERTS,
    _ALERT_EXPOSURE,
    _EVENT_COVERAGE,
    _REPORTED_EVENT_COVERAGE,
    _FIELD_REPORTS,
    _HOUSEHOLD_IMPACT,
    *(impact_view_sql(level) for level in _AREA_LEVELS),
    _REGISTRY_CANDIDATES,
    _VILLAGE_STATS,
    _DEAD_LETTERS,
    _EVENT_SUMMARY,
    _MINIMUM_NEEDS,
    _NOTIFICATIONS,
)


#: What analysts read: the views above and the region names (``*_state`` tables are internal).
ANALYST_OBJECTS: tuple[str, ...] = (
    *(m.group(1) for v in VIEWS if (m := re.search(r"VIEW \{db\}\.(\w+)", v))),
    "regions",
)


def view_statements(database: str) -> list[str]:
    return [v.format(db=database) for v in VIEWS]

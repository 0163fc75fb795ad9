"""The one place for ClickHouse DDL: versioned, idempotent migrations of database ``dampak``.

Storage tables (``*_state``) are ReplacingMergeTree rows of *state* keyed by entity and version, so
any replay re-inserts identical rows. Analysts query views over them, which apply ``FINAL`` and
filter retractions: a plain SELECT returns the current, exact figures. The same DDL runs on chDB
and on a ClickHouse server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "impact_view_sql"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_REGISTRY_STATE = """
CREATE TABLE IF NOT EXISTS {db}.registry_state (
    household_ref String,
    version UInt64,
    deleted Bool,
    village_code LowCardinality(String),
    updated_at DateTime64(3, 'UTC'),
    members UInt16,
    desil Nullable(UInt8),
    programs Array(LowCardinality(String)),
    kpm Bool,
    elderly UInt16,
    disabled UInt16,
    under5 UInt16,
    pregnant UInt16,
    lat Nullable(Float64),
    lon Nullable(Float64),
    nik_ref String,
    kk_ref String
) ENGINE = ReplacingMergeTree(version)
ORDER BY household_ref
"""

_REPORT_STATE = """
CREATE TABLE IF NOT EXISTS {db}.report_state (
    report_id String,
    revision UInt32,
    version UInt64,
    retracted Bool,
    reported_event_id String,
    reported_at DateTime64(3, 'UTC'),
    reporter_id String,
    reporter_role LowCardinality(String),
    province_code LowCardinality(String),
    regency_code LowCardinality(String),
    district_code LowCardinality(String),
    village_code LowCardinality(String),
    household_ref String,
    houses_light UInt32,
    houses_moderate UInt32,
    houses_heavy UInt32,
    displaced UInt32,
    dead UInt32,
    injured UInt32,
    missing UInt32,
    needs Array(LowCardinality(String)),
    lat Nullable(Float64),
    lon Nullable(Float64),
    notes String,
    registered Bool,
    desil Nullable(UInt8),
    programs Array(LowCardinality(String)),
    kpm Bool,
    members UInt16,
    vulnerable_persons UInt16,
    kk_ref String,
    ingested_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(version)
ORDER BY report_id
"""

_DEAD_LETTER_STATE = """
CREATE TABLE IF NOT EXISTS {db}.dead_letter_state (
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    reason String,
    key_ref String,
    payload String,
    payload_bytes UInt32,
    message_timestamp DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
"""

_REGIONS = """
CREATE TABLE IF NOT EXISTS {db}.regions (
    code String,
    level LowCardinality(String),
    name String,
    parent_code String
) ENGINE = ReplacingMergeTree
ORDER BY code
"""

# Events known from reports that name them: an event begins with its earliest report and covers
# the regencies reported under it. Reports without event_id attach to the most recent event that
# covers their regency and began at most 14 days before they were reported.
_EVENT_COVERAGE = """
CREATE OR REPLACE VIEW {db}.event_coverage AS
SELECT event_id, regency_code, began_at
FROM (
    SELECT reported_event_id AS event_id, min(reported_at) AS began_at,
           groupUniqArray(regency_code) AS regencies
    FROM {db}.report_state FINAL
    WHERE reported_event_id != '' AND NOT retracted
    GROUP BY reported_event_id
)
ARRAY JOIN regencies AS regency_code
"""

_FIELD_REPORTS = """
CREATE OR REPLACE VIEW {db}.field_reports AS
SELECT
    r.report_id AS report_id,
    r.revision AS revision,
    if(r.reported_event_id != '', r.reported_event_id,
       if(c.event_id != '' AND c.began_at >= r.reported_at - INTERVAL 14 DAY, c.event_id, 'unassigned'))
        AS event_id,
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
    r.ingested_at AS updated_at
FROM (SELECT * FROM {db}.report_state FINAL WHERE NOT retracted) AS r
ASOF LEFT JOIN {db}.event_coverage AS c
    ON r.regency_code = c.regency_code AND r.reported_at >= c.began_at
"""

_AREA_LEVELS = {
    "village": "village_code",
    "district": "district_code",
    "regency": "regency_code",
    "province": "province_code",
}


def impact_view_sql(level: str) -> str:
    """Impact figures per event and area: households are counted once per area, even when several
    reports name them; village-level summaries add to the counts of houses and persons only."""
    code = _AREA_LEVELS[level]
    return f"""
CREATE OR REPLACE VIEW {{db}}.impact_{level} AS
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
        countIf(household_ref != '') AS households_affected,
        sum(hl) AS houses_light, sum(hm) AS houses_moderate, sum(hh) AS houses_heavy,
        sum(dis) AS displaced, sum(d) AS dead, sum(inj) AS injured, sum(mis) AS missing,
        countIf(household_ref != '' AND kpm) AS kpm_households_affected,
        sumIf(vul, household_ref != '') AS vulnerable_persons_affected,
        countIf(household_ref != '' AND NOT registered) AS unregistered_households_affected,
        max(upd) AS updated_at
    FROM (
        SELECT event_id, {code}, household_ref,
            count() AS n,
            sum(houses_light) AS hl, sum(houses_moderate) AS hm, sum(houses_heavy) AS hh,
            sum(displaced) AS dis, sum(dead) AS d, sum(injured) AS inj, sum(missing) AS mis,
            any(kpm) AS kpm, any(vulnerable_persons) AS vul, any(registered) AS registered,
            max(updated_at) AS upd
        FROM {{db}}.field_reports
        GROUP BY event_id, {code}, household_ref
    )
    GROUP BY event_id, {code}
) AS a
LEFT JOIN {{db}}.regions AS g ON g.code = a.{code}
"""


# Households that a disaster may have pushed into poverty: hit hard (heavy damage or displaced) and
# not known to be poor (unregistered, unranked, or above desil 5). Welfare staff re-assess them.
_REGISTRY_CANDIDATES = """
CREATE OR REPLACE VIEW {db}.registry_candidates AS
SELECT
    event_id,
    household_ref,
    village AS village_code,
    hh_desil AS desil,
    hh_kk_ref AS kk_ref,
    multiIf(NOT hh_registered, 'unregistered', hh_desil IS NULL, 'unranked', 'above_desil_5') AS reason,
    heavy > 0 AS heavy_damage,
    persons_displaced > 0 AS displacement,
    upd AS updated_at
FROM (
    SELECT
        event_id, household_ref,
        min(village_code) AS village,
        any(desil) AS hh_desil,
        any(kk_ref) AS hh_kk_ref,
        any(registered) AS hh_registered,
        max(houses_heavy) AS heavy,
        max(displaced) AS persons_displaced,
        max(updated_at) AS upd
    FROM {db}.field_reports
    WHERE household_ref != '' AND (houses_heavy > 0 OR displaced > 0)
    GROUP BY event_id, household_ref
)
WHERE NOT hh_registered OR hh_desil IS NULL OR hh_desil > 5
"""

_VILLAGE_STATS = """
CREATE OR REPLACE VIEW {db}.village_stats AS
SELECT
    village_code,
    count() AS households,
    sum(members) AS persons,
    countIf(kpm) AS kpm_households,
    sum(elderly + disabled + under5 + pregnant) AS vulnerable_persons,
    avgIf(lat, lat IS NOT NULL) AS lat,
    avgIf(lon, lon IS NOT NULL) AS lon
FROM {db}.registry_state FINAL
WHERE NOT deleted
GROUP BY village_code
"""

_DEAD_LETTERS = """
CREATE OR REPLACE VIEW {db}.dead_letters AS
SELECT topic, partition, offset, reason, key_ref, payload, payload_bytes, message_timestamp, received_at
FROM {db}.dead_letter_state FINAL
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "registry, field reports, impact views, dead letters",
        (
            _REGIONS,
            _REGISTRY_STATE,
            _REPORT_STATE,
            _DEAD_LETTER_STATE,
            _EVENT_COVERAGE,
            _FIELD_REPORTS,
            *(impact_view_sql(level) for level in _AREA_LEVELS),
            _REGISTRY_CANDIDATES,
            _VILLAGE_STATS,
            _DEAD_LETTERS,
        ),
    ),
)

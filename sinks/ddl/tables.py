"""ClickHouse storage tables, as versioned migrations (database ``dampak``).

Storage tables (``*_state``) hold *state* rows keyed by entity and version in a
ReplacingMergeTree, so any replay re-inserts identical rows and the highest version wins.
A migration is applied once and recorded in ``schema_migrations``; a published one never changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration"]

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

_ALERTS_STATE = """
CREATE TABLE IF NOT EXISTS {db}.alerts_state (
    event_id String,
    version UInt64,
    revision UInt32,
    hazard LowCardinality(String),
    issued_at DateTime64(3, 'UTC'),
    event_time DateTime64(3, 'UTC'),
    source LowCardinality(String),
    headline String,
    lat Nullable(Float64),
    lon Nullable(Float64),
    magnitude Nullable(Float64),
    depth_km Nullable(Float64),
    tsunami Bool,
    felt String,
    areas String,
    area_text Array(String),
    pager_level LowCardinality(String),
    est_exposed_households UInt64,
    est_exposed_persons UInt64,
    est_exposed_kpm_households UInt64,
    est_deaths Float64,
    est_displaced Float64,
    raw_payload String,
    received_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(version)
ORDER BY event_id
"""

# One row per event x village and alert version; the analyst view keeps the latest version only,
# so a revised bulletin replaces the whole exposure (villages it no longer reaches drop out).
_ALERT_EXPOSURE_STATE = """
CREATE TABLE IF NOT EXISTS {db}.alert_exposure_state (
    event_id String,
    version UInt64,
    village_code LowCardinality(String),
    regency_code LowCardinality(String),
    mmi Nullable(Float32),
    hazard_class LowCardinality(String),
    exposed_households UInt32,
    exposed_persons UInt32,
    exposed_kpm_households UInt32,
    exposed_vulnerable UInt32,
    exposed_pregnant UInt32,
    est_displaced Float64,
    est_deaths Float64
) ENGINE = ReplacingMergeTree
ORDER BY (event_id, village_code, version)
"""

_NOTIFICATION_STATE = """
CREATE TABLE IF NOT EXISTS {db}.notification_state (
    notification_id String,
    event_id String,
    kind LowCardinality(String),
    regency_code String,
    level String,
    message String,
    sent_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY notification_id
"""

# Lag samples for analysts and dashboards; kept 30 days.
_CONSUMER_LAG = """
CREATE TABLE IF NOT EXISTS {db}.consumer_lag (
    sampled_at DateTime64(3, 'UTC'),
    group LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    committed Nullable(Int64),
    end_offset UInt64,
    lag UInt64,
    lag_seconds Float64,
    status LowCardinality(String),
    group_status LowCardinality(String)
) ENGINE = ReplacingMergeTree
ORDER BY (group, topic, partition, sampled_at)
TTL toDateTime(sampled_at) + INTERVAL 30 DAY
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "regions, registry, field reports, dead letters",
        (_REGIONS, _REGISTRY_STATE, _REPORT_STATE, _DEAD_LETTER_STATE),
    ),
    Migration(
        2,
        "alerts, hazard exposure, notifications",
        (_ALERTS_STATE, _ALERT_EXPOSURE_STATE, _NOTIFICATION_STATE),
    ),
    Migration(3, "consumer lag samples", (_CONSUMER_LAG,)),
)

"""Every ClickHouse storage table, declared once: name, columns, types, engine and sort key.

Migrations create tables from these declarations, the writer inserts by their column names, and
tests compare them with what ClickHouse reports. Storage tables (``*_state``) hold *state* rows
keyed by entity and version in a ReplacingMergeTree, so a replay re-inserts identical rows and the
highest version wins; analysts read the views in ``sinks.views``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALERTS_STATE",
    "ALERT_EXPOSURE_STATE",
    "CONSUMER_LAG",
    "DEAD_LETTER_STATE",
    "ENTITLEMENT_RATES",
    "ESTIMATE_STATE",
    "INCIDENT_AUTO_STATE",
    "INCIDENT_COVERAGE_STATE",
    "INCIDENT_LINK_STATE",
    "INCIDENT_STATE",
    "NOTIFICATION_STATE",
    "PRIVACY_KEYS",
    "REGIONS",
    "REGISTRY_STATE",
    "REPORT_STATE",
    "SCHEMA_MIGRATIONS",
    "TABLES",
    "VILLAGE_POSITIONS",
    "Row",
    "Table",
]

logger = logging.getLogger(__name__)

#: One row for one table, keyed by column name; built only by ``streams.rows``.
Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    engine: str
    order_by: str
    ttl: str = ""

    def __hash__(self) -> int:
        # Tables key the rows of every batch (``Output.add``): hash the name, not all the columns.
        return hash(self.name)

    # Both are read for every row handed over between processes: computed once per table.
    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @functools.cached_property
    def key_columns(self) -> tuple[str, ...]:
        """The columns that identify a row: its sort key, and its version when the engine keeps
        the highest one. Two rows that agree on these are the same row."""
        key = [c.strip() for c in self.order_by.strip("()").split(",") if c.strip() and c.strip() != "tuple"]
        version = self.engine.partition("(")[2].rstrip(")").strip()
        return tuple(key + ([version] if version and version not in key else []))

    def qualified(self, database: str) -> str:
        return f"{database}.{self.name}"

    def create_statement(self, database: str) -> str:
        cols = ",\n    ".join(f"`{name}` {type_}" for name, type_ in self.columns)
        ttl = f"\nTTL {self.ttl}" if self.ttl else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(database)} (\n    {cols}\n) "
            f"ENGINE = {self.engine}\nORDER BY {self.order_by}{ttl}"
        )


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """``"name Type, ..."`` (one column per line) as (name, type) pairs."""
    out = []
    for line in spec.strip().splitlines():
        name, type_ = line.strip().rstrip(",").split(" ", 1)
        out.append((name, type_))
    return tuple(out)


_DT = "DateTime64(3, 'UTC')"

SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    _cols(f"""
        version UInt32
        name String
        applied_at {_DT} DEFAULT now64(3)
    """),
    "ReplacingMergeTree",
    "version",
)

REGIONS = Table(
    "regions",
    _cols("""
        code String
        level LowCardinality(String)
        name String
        parent_code String
    """),
    "ReplacingMergeTree",
    "code",
)

# The position of every village of the region reference: its shipped centroid (``schemas/geo/``),
# or its district's where the village has none (``source``). Reference data, loaded at start.
VILLAGE_POSITIONS = Table(
    "village_positions",
    _cols("""
        code String
        lat Float64
        lon Float64
        source LowCardinality(String)
    """),
    "ReplacingMergeTree",
    "code",
)

REGISTRY_STATE = Table(
    "registry_state",
    _cols(f"""
        household_ref String
        version UInt64
        deleted Bool
        village_code LowCardinality(String)
        updated_at {_DT}
        members UInt16
        desil Nullable(UInt8)
        programs Array(LowCardinality(String))
        kpm Bool
        elderly UInt16
        disabled UInt16
        under5 UInt16
        pregnant UInt16
        lat Nullable(Float64)
        lon Nullable(Float64)
        nik_ref String
        kk_ref String
        pkh_graduated_at Nullable({_DT})
    """),
    "ReplacingMergeTree(version)",
    "household_ref",
)

REPORT_STATE = Table(
    "report_state",
    _cols(f"""
        report_id String
        revision UInt32
        version UInt64
        retracted Bool
        reported_event_id String
        reported_hazard LowCardinality(String)
        reported_at {_DT}
        reporter_id String
        reporter_role LowCardinality(String)
        province_code LowCardinality(String)
        regency_code LowCardinality(String)
        district_code LowCardinality(String)
        village_code LowCardinality(String)
        household_ref String
        houses_light UInt32
        houses_moderate UInt32
        houses_heavy UInt32
        displaced UInt32
        dead UInt32
        injured UInt32
        missing UInt32
        needs Array(LowCardinality(String))
        lat Nullable(Float64)
        lon Nullable(Float64)
        notes String
        registered Bool
        desil Nullable(UInt8)
        programs Array(LowCardinality(String))
        kpm Bool
        members UInt16
        vulnerable_persons UInt16
        kk_ref String
        ingested_at {_DT}
        arrival UInt64
        injured_severe UInt32
        affected_persons UInt32
        affected_families UInt32
        houses_submerged UInt32
        facilities_education UInt32
        facilities_health UInt32
        facilities_worship UInt32
        facilities_office UInt32
        facilities_bridge UInt32
        shelter_name String
        shelter_village_code LowCardinality(String)
        shelter_displaced UInt32
        graduated Bool
    """),
    "ReplacingMergeTree(version)",
    # Sorted by event first, so a read of one event's (or incident's) reports, or of the untagged
    # ones (event ''), reaches the primary key. A row is one report under one event: a report
    # moved to another event leaves a retracted row under the old one (``decide_report``).
    "(reported_event_id, report_id)",
)

DEAD_LETTER_STATE = Table(
    "dead_letter_state",
    _cols(f"""
        topic LowCardinality(String)
        partition UInt32
        offset UInt64
        reason String
        key_ref String
        payload String
        payload_bytes UInt32
        message_timestamp {_DT}
        received_at {_DT}
    """),
    "ReplacingMergeTree",
    "(topic, partition, offset)",
)

ALERTS_STATE = Table(
    "alerts_state",
    _cols(f"""
        event_id String
        version UInt64
        revision UInt32
        hazard LowCardinality(String)
        issued_at {_DT}
        event_time {_DT}
        source LowCardinality(String)
        headline String
        lat Nullable(Float64)
        lon Nullable(Float64)
        magnitude Nullable(Float64)
        depth_km Nullable(Float64)
        tsunami Bool
        felt String
        areas String
        area_text Array(String)
        pager_level LowCardinality(String)
        est_exposed_households UInt64
        est_exposed_persons UInt64
        est_exposed_kpm_households UInt64
        est_deaths Float64
        est_displaced Float64
        raw_payload String
        received_at {_DT}
        payload_event_id String
        warning Bool
        felt_used UInt16
        pager_fatality_level LowCardinality(String)
        pager_economic_level LowCardinality(String)
        est_economic_loss_usd Float64
    """),
    "ReplacingMergeTree(version)",
    "event_id",
)

# One row per event x village and alert version; the analyst view keeps the latest version only,
# so a revised bulletin replaces the whole exposure (villages it no longer reaches drop out).
ALERT_EXPOSURE_STATE = Table(
    "alert_exposure_state",
    _cols("""
        event_id String
        version UInt64
        village_code LowCardinality(String)
        regency_code LowCardinality(String)
        mmi Nullable(Float32)
        mmi_predicted Nullable(Float32)
        hazard_class LowCardinality(String)
        exposed_households UInt32
        exposed_persons UInt32
        exposed_kpm_households UInt32
        exposed_vulnerable UInt32
        exposed_pregnant UInt32
        est_displaced Float64
        est_deaths Float64
    """),
    "ReplacingMergeTree",
    "(event_id, village_code, version)",
)

# An alert version's estimates with their ranges (``streams.domain.estimates``): one row per model,
# outcome and range; the analyst view keeps the alert's latest version, like the exposure's.
ESTIMATE_STATE = Table(
    "estimate_state",
    _cols("""
        event_id String
        version UInt64
        model LowCardinality(String)
        outcome LowCardinality(String)
        range_low Float64
        range_high Nullable(Float64)
        probability Nullable(Float64)
        central Float64
        label String
    """),
    "ReplacingMergeTree",
    "(event_id, model, outcome, range_low, version)",
)

# Every operator decision on the incident-links topic, kept as the audit trail; the views take
# the latest per (event_id, other_event_id).
INCIDENT_LINK_STATE = Table(
    "incident_link_state",
    _cols(f"""
        link_id String
        action LowCardinality(String)
        event_id String
        other_event_id String
        operator String
        reason String
        decided_at {_DT}
        received_at {_DT}
    """),
    "ReplacingMergeTree",
    "link_id",
)

# Each event's incident, as the writer last computed it from the alerts and the operators'
# decisions (``sinks.views.INCIDENT_GROUPING_SQL``); the latest version stands.
INCIDENT_STATE = Table(
    "incident_state",
    _cols(f"""
        event_id String
        version UInt64
        incident_id String
        rule LowCardinality(String)
        hazard LowCardinality(String)
        event_time {_DT}
        warning Bool
    """),
    "ReplacingMergeTree(version)",
    "event_id",
)

# Each event's incident by the rules alone, before the operators' decisions (the first step of
# the grouping: ``sinks.views.incident_refresh_statements``).
INCIDENT_AUTO_STATE = Table("incident_auto_state", INCIDENT_STATE.columns, INCIDENT_STATE.engine, "event_id")

# The villages each incident covers, as the writer last computed them after regrouping
# (``sinks.views.incident_refresh_statements``): each refresh writes every (incident, village) it
# finds at one new version, and marks ``removed`` those it no longer finds; the latest version of
# each stands (``incident_coverage`` reads them with FINAL; ClickHouse docs, ReplacingMergeTree,
# ``ver``: https://clickhouse.com/docs/engines/table-engines/mergetree-family/replacingmergetree).
INCIDENT_COVERAGE_STATE = Table(
    "incident_coverage_state",
    _cols(f"""
        incident_id String
        village_code LowCardinality(String)
        version UInt64
        removed Bool
        began_at {_DT}
        last_event_at {_DT}
        level Int64
        hazards Array(String)
    """),
    "ReplacingMergeTree(version)",
    "(village_code, incident_id)",
)

NOTIFICATION_STATE = Table(
    "notification_state",
    _cols(f"""
        notification_id String
        event_id String
        kind LowCardinality(String)
        regency_code String
        level String
        message String
        sent_at {_DT}
    """),
    "ReplacingMergeTree",
    "notification_id",
)

# Lag samples for analysts and dashboards; kept 30 days.
CONSUMER_LAG = Table(
    "consumer_lag",
    _cols(f"""
        sampled_at {_DT}
        group LowCardinality(String)
        topic LowCardinality(String)
        partition UInt32
        committed Nullable(Int64)
        end_offset UInt64
        lag UInt64
        lag_seconds Float64
        status LowCardinality(String)
        group_status LowCardinality(String)
    """),
    "ReplacingMergeTree",
    "(group, topic, partition, sampled_at)",
    ttl="toDateTime(sampled_at) + INTERVAL 30 DAY",
)

# The pseudonym key the stored pseudonyms were made with (the latest row stands): its id, and its
# fingerprint (an HMAC of a fixed label under the key, never the key; '' when recorded before
# fingerprints were), which tells a changed key that kept its id.
PRIVACY_KEYS = Table(
    "privacy_keys",
    _cols(f"""
        key_id String
        recorded_at {_DT}
        fingerprint String
    """),
    "ReplacingMergeTree(recorded_at)",
    "tuple()",
)

# The rates of Kemensos's cash assistance in force (``DAMPAK_ENTITLEMENTS__*``), recorded by each
# worker at start; the latest per kind stands (``entitlements``).
ENTITLEMENT_RATES = Table(
    "entitlement_rates",
    _cols(f"""
        kind LowCardinality(String)
        unit_amount_idr UInt64
        days UInt32
        basis String
        legal_basis String
        recorded_at {_DT}
    """),
    "ReplacingMergeTree(recorded_at)",
    "kind",
)

#: Every storage table, in creation order.
TABLES: tuple[Table, ...] = (
    SCHEMA_MIGRATIONS,
    REGIONS,
    REGISTRY_STATE,
    REPORT_STATE,
    DEAD_LETTER_STATE,
    ALERTS_STATE,
    ALERT_EXPOSURE_STATE,
    NOTIFICATION_STATE,
    CONSUMER_LAG,
    PRIVACY_KEYS,
    ESTIMATE_STATE,
    INCIDENT_LINK_STATE,
    INCIDENT_STATE,
    ENTITLEMENT_RATES,
    INCIDENT_AUTO_STATE,
    VILLAGE_POSITIONS,
    INCIDENT_COVERAGE_STATE,
)

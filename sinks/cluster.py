"""The DDL of a ClickHouse cluster, rendered from the same declarations as one server's
(``sinks.tables``, ``sinks.migrations``, ``sinks.views``): per table a replicated table on every
shard, ``<name>_local``, and a ``Distributed`` table under the table's own name; every statement
``ON CLUSTER``.

Writers, readers and the analyst views keep using the usual names, which are the Distributed
tables. References (ClickHouse documentation): "Replicated* table engines" (the ``{shard}`` and
``{replica}`` macros), "Distributed table engine", "Distributed DDL queries (ON CLUSTER clause)".
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence

from clickhouse_connect.driver.client import Client

from sinks.errors import DampakError
from sinks.migrations import (
    ANALYST_ROLE,
    MIGRATIONS,
    load_regions,
    load_village_positions,
    record_entitlement_rates,
)
from sinks.tables import SCHEMA_MIGRATIONS, TABLES, Table
from sinks.views import ANALYST_OBJECTS, view_statements

__all__ = [
    "CLUSTER_SETTINGS",
    "LOCAL_SUFFIX",
    "REPLICA_NAME",
    "REPLICA_PATH",
    "SETTINGS_PROFILE",
    "ClusterDDLError",
    "cluster_statements",
    "distributed_statement",
    "init_cluster",
    "local_name",
    "local_statement",
    "migration_statements",
    "replicated_engine",
    "sharding_key",
    "views_checksum",
]

logger = logging.getLogger(__name__)

#: The replicated table on each shard is ``<name>_local``; the Distributed table keeps ``<name>``.
LOCAL_SUFFIX = "_local"
#: Keeper path and replica name of every replicated table: one path per shard and table, filled in
#: by each server's ``{shard}`` and ``{replica}`` macros (its ``<macros>`` configuration).
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"

#: The MergeTree family, each with a ``Replicated`` form taking the same parameters after the two
#: replication ones. Other engines (Memory, Log, ...) keep their rows on one server and have no
#: replicated form: a table declared with one is refused rather than silently left unreplicated.
_MERGE_TREES = frozenset(
    {
        "MergeTree",
        "ReplacingMergeTree",
        "SummingMergeTree",
        "AggregatingMergeTree",
        "CollapsingMergeTree",
        "VersionedCollapsingMergeTree",
        "CoalescingMergeTree",
        "GraphiteMergeTree",
    }
)

#: What dampak's own sessions need on a cluster of more than one shard (given to the workers' user
#: through the settings profile ``dampak_cluster``): joins between Distributed tables read their
#: right side once and ship it to the shards (``global``; ClickHouse refuses them by default), and
#: an insert returns once its rows are on their shard, not queued on the server that took them,
#: so offsets are committed after the rows are where analysts read them.
SETTINGS_PROFILE = "dampak_cluster"
CLUSTER_SETTINGS: Mapping[str, str] = {
    "distributed_product_mode": "'global'",
    "distributed_foreground_insert": "1",
}

_CREATE = re.compile(r"^\s*(CREATE (?:OR REPLACE )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?[\w.`]+)", re.S)
_ALTER = re.compile(r"^\s*ALTER TABLE (\w+)\.(\w+) (.+)$", re.S)


class ClusterDDLError(DampakError):
    """A declaration or migration that has no cluster form."""


def local_name(table: Table) -> str:
    return f"{table.name}{LOCAL_SUFFIX}"


def replicated_engine(table: Table) -> str:
    """The declared engine's replicated form: ``ReplacingMergeTree(version)`` becomes
    ``ReplicatedReplacingMergeTree('<REPLICA_PATH>', '{replica}', version)``. Raises
    ``ClusterDDLError`` for an engine outside the MergeTree family."""
    family, _, rest = table.engine.strip().partition("(")
    family = family.strip()
    params = rest.rsplit(")", 1)[0].strip() if rest else ""
    if family.startswith("Replicated") and family.removeprefix("Replicated") in _MERGE_TREES:
        return table.engine  # declared replicated already: its own path and replica stand
    if family not in _MERGE_TREES:
        raise ClusterDDLError(
            f"table {table.name}: engine {table.engine!r} has no replicated form; a cluster takes "
            f"the MergeTree family only ({', '.join(sorted(_MERGE_TREES))})"
        )
    replication = f"'{REPLICA_PATH}', '{REPLICA_NAME}'"
    return f"Replicated{family}({replication}{', ' + params if params else ''})"


def sharding_key(table: Table) -> str:
    """The Distributed table's sharding key: ``cityHash64`` of the whole sort key, which identifies
    an entity (a report under an event, a household, an event), so all the versions of one entity
    land on one shard and ``FINAL`` on each shard is exact, while one big event's reports spread
    over the shards. A table without a sort key (``tuple()``) keeps every row on the first shard
    (key ``0``): its rows all replace one another."""
    parts = _sort_key_parts(table.order_by)
    if not parts:
        return "0"
    columns = (f"`{part}`" if re.fullmatch(r"\w+", part) else part for part in parts)
    return f"cityHash64({', '.join(columns)})"


def _sort_key_parts(order_by: str) -> list[str]:
    """The expressions of an ``ORDER BY`` clause (``x``, ``(x, f(y, z))``; ``tuple()`` has none),
    split at the commas outside parentheses."""
    text = order_by.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p and p != "tuple()"]


def _on_cluster(statement: str, cluster: str) -> str:
    """``CREATE ... <name>`` becomes ``CREATE ... <name> ON CLUSTER <cluster>``."""
    rendered, found = _CREATE.subn(lambda m: f"{m.group(1)} ON CLUSTER {cluster}", statement.strip(), 1)
    if not found:
        raise ClusterDDLError(f"cannot place ON CLUSTER in: {statement.strip()[:80]}")
    return rendered


def local_statement(table: Table, database: str, cluster: str) -> str:
    """The replicated table on every shard, rendered by the declaration itself (``create_statement``)
    under the local name and the replicated engine, so every clause it declares comes along."""
    local = dataclasses.replace(table, name=local_name(table), engine=replicated_engine(table))
    return _on_cluster(local.create_statement(database), cluster)


def distributed_statement(table: Table, database: str, cluster: str) -> str:
    """The Distributed table under the table's own name, on every server, with the local table's
    columns (``AS``: columns and defaults, not indexes or projections, which stay on the shards)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table.qualified(database)} ON CLUSTER {cluster} "
        f"AS {database}.{local_name(table)}\n"
        f"ENGINE = Distributed({cluster}, {database}, {local_name(table)}, {sharding_key(table)})"
    )


def migration_statements(database: str, cluster: str, applied: frozenset[int]) -> list[str]:
    """The further statements of the migrations not in ``applied``, for a cluster created before
    them: each ``ALTER TABLE`` of a declared table on its local and its Distributed table. (Their
    ``creates`` are declared tables, which ``cluster_statements`` creates anyway.) Raises
    ``ClusterDDLError`` for a statement of another kind, which has no cluster form here."""
    names = {t.name for t in TABLES}
    out = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        if migration.resorts:
            raise ClusterDDLError(
                f"migration {migration.version} rebuilds {', '.join(t.name for t in migration.resorts)} "
                "under a new sort key and sharding key, which has no cluster form here: create the "
                "cluster anew and copy the rows (docs/scaling.md)"
            )
        for statement in migration.statements:
            match = _ALTER.match(statement.format(db=database))
            if not match or match.group(1) != database or match.group(2) not in names:
                raise ClusterDDLError(
                    f"migration {migration.version}: no cluster form for {statement.strip()[:80]!r}"
                )
            _, name, rest = match.groups()
            out.append(f"ALTER TABLE {database}.{name}{LOCAL_SUFFIX} ON CLUSTER {cluster} {rest}")
            out.append(f"ALTER TABLE {database}.{name} ON CLUSTER {cluster} {rest}")
    return out


def cluster_statements(database: str, cluster: str, applied: frozenset[int] | None = None) -> list[str]:
    """Every statement, in order: the database, each declared table's local and Distributed
    tables, the pending migrations' changes (none on a new cluster, ``applied`` None: the tables
    are created from today's declarations), the views (reading the Distributed tables, which have
    the tables' usual names), the settings profile for dampak's sessions, and the analyst role with
    its grants. Raises ``ClusterDDLError`` for a cluster name that is not an identifier."""
    if not re.fullmatch(r"[A-Za-z_]\w*", cluster):
        raise ClusterDDLError(f"cluster name {cluster!r}: letters, digits and _ only")
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"]
    for table in TABLES:
        statements.append(local_statement(table, database, cluster))
        statements.append(distributed_statement(table, database, cluster))
    if applied is not None:
        statements += migration_statements(database, cluster, applied)
    statements += [_global_joins(_on_cluster(view, cluster)) for view in view_statements(database)]
    statements.append(
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {SETTINGS_PROFILE} ON CLUSTER {cluster} SETTINGS "
        + ", ".join(f"{name} = {value}" for name, value in CLUSTER_SETTINGS.items())
    )
    statements.append(f"CREATE ROLE IF NOT EXISTS {ANALYST_ROLE} ON CLUSTER {cluster}")
    statements += [
        f"GRANT ON CLUSTER {cluster} SELECT ON {database}.{name} TO {ANALYST_ROLE}"
        for name in ANALYST_OBJECTS
    ]
    return statements


def _global_joins(view: str) -> str:
    """The view with ``distributed_product_mode = 'global'`` in its own ``SETTINGS``: its joins and
    ``IN``s between Distributed tables read the right side once, on the server the query came to,
    instead of being refused (ClickHouse's default ``deny`` on more than one shard)."""
    head, _, last = view.rstrip().rpartition("\n")
    setting = "distributed_product_mode = 'global'"
    if last.startswith("SETTINGS "):
        return f"{head}\n{last}, {setting}"
    return f"{view.rstrip()}\nSETTINGS {setting}"


def views_checksum(database: str) -> str:
    """What ``sinks.migrations.migrate`` records as version 0 (``views <checksum>``) once it has
    created the views: recorded here too, so a worker's start-up finds the views current and does
    not re-create them on its own server only."""
    return hashlib.sha256("\n".join(view_statements(database)).encode()).hexdigest()[:16]


def init_cluster(
    client: Client,
    database: str,
    cluster: str,
    rates: Sequence[Mapping[str, object]] = (),
    command: Callable[[str], object] | None = None,
) -> list[int]:
    """Create (or bring up to date) dampak's tables and views on every server of ``cluster``, record
    every migration as applied, and load the reference data through the Distributed tables.

    Idempotent, like ``init_db``: every statement is ``IF NOT EXISTS`` / ``OR REPLACE`` / ``IF NOT
    EXISTS`` on columns, so an interrupted run is re-run. Nothing is retried here: a server that
    does not answer fails the ``ON CLUSTER`` statement (``distributed_ddl_task_timeout``), and the
    error is raised. ``command`` runs each DDL statement (``client.command`` by default). Returns
    the migration versions recorded now."""
    run = command or client.command
    statements = cluster_statements(database, cluster)  # checks the name before anything runs
    table = SCHEMA_MIGRATIONS.qualified(database)
    for statement in (f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}",
                      local_statement(SCHEMA_MIGRATIONS, database, cluster),
                      distributed_statement(SCHEMA_MIGRATIONS, database, cluster)):  # fmt: skip
        run(statement)
    done = {row[0] for row in client.query(f"SELECT version FROM {table} WHERE version > 0").result_rows}
    if done:
        statements = cluster_statements(database, cluster, frozenset(done))
    logger.info("applying %d statements on cluster %s", len(statements), cluster)
    for statement in statements:
        run(statement)
    recorded = [m.version for m in MIGRATIONS if m.version not in done]
    rows: list[list[object]] = [[m.version, m.name] for m in MIGRATIONS if m.version in recorded]
    rows.append([0, f"views {views_checksum(database)}"])
    # Written through to the shard before returning, so the next read sees it.
    client.insert(
        table, rows, column_names=["version", "name"], settings={"distributed_foreground_insert": 1}
    )
    if rates:
        record_entitlement_rates(client, database, rates)
    for loader, what in ((load_regions, "region names"), (load_village_positions, "village positions")):
        loaded = loader(client, database)
        if loaded:
            logger.info("loaded %d %s", loaded, what)
    return recorded

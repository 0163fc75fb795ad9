"""The cluster DDL rendered from the table declarations: every declared table, replicated on the
shards and Distributed under its own name, every statement ON CLUSTER, the views on the
Distributed names. No ClickHouse here (``tests/integration/test_cluster_ddl.py`` runs it)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from sinks.cluster import (
    LOCAL_SUFFIX,
    REPLICA_NAME,
    REPLICA_PATH,
    ClusterDDLError,
    cluster_statements,
    distributed_statement,
    local_statement,
    migration_statements,
    replicated_engine,
    sharding_key,
)
from sinks.migrations import MIGRATIONS
from sinks.tables import PRIVACY_KEYS, REPORT_STATE, TABLES, Table
from sinks.views import ANALYST_OBJECTS, view_statements

DB, CLUSTER = "dampak", "dampak_cluster_test"
REPLICATION = f"'{REPLICA_PATH}', '{REPLICA_NAME}'"


def _statements() -> list[str]:
    return cluster_statements(DB, CLUSTER)


def _created(kind: str) -> dict[str, str]:
    """Each statement that creates a ``kind`` (TABLE or VIEW), by the name it creates."""
    out = {}
    for statement in _statements():
        if m := re.match(rf"CREATE (?:OR REPLACE )?{kind} (?:IF NOT EXISTS )?{DB}\.(\w+) ", statement):
            out[m.group(1)] = statement
    return out


def test_every_declared_table_gets_a_replicated_local_table_and_a_distributed_one() -> None:
    tables = _created("TABLE")
    for table in TABLES:
        local = tables[f"{table.name}{LOCAL_SUFFIX}"]
        assert "ENGINE = Replicated" in local and REPLICATION in local, table.name
        for name, type_ in table.columns:
            assert f"`{name}` {type_}" in local, (table.name, name)
        assert f"ORDER BY {table.order_by}" in local
        distributed = tables[table.name]
        assert f"AS {DB}.{table.name}{LOCAL_SUFFIX}\n" in distributed
        assert f"ENGINE = Distributed({CLUSTER}, {DB}, {table.name}{LOCAL_SUFFIX}, " in distributed
    # Nothing else is created: two tables per declaration, no table forgotten or invented.
    assert len(tables) == 2 * len(TABLES)


def test_the_local_table_comes_before_its_distributed_table() -> None:
    statements = _statements()
    for table in TABLES:
        local = next(i for i, s in enumerate(statements) if f".{table.name}{LOCAL_SUFFIX} ON CLUSTER" in s)
        distributed = next(i for i, s in enumerate(statements) if f"{DB}.{table.name} ON CLUSTER" in s)
        assert local < distributed


def test_every_statement_runs_on_cluster() -> None:
    for statement in _statements():
        assert f" ON CLUSTER {CLUSTER} " in statement.split("\n", 1)[0] + " ", statement[:80]


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("ReplacingMergeTree(version)", f"ReplicatedReplacingMergeTree({REPLICATION}, version)"),
        ("ReplacingMergeTree", f"ReplicatedReplacingMergeTree({REPLICATION})"),
        (
            "ReplacingMergeTree(version, deleted)",
            f"ReplicatedReplacingMergeTree({REPLICATION}, version, deleted)",
        ),
        ("MergeTree()", f"ReplicatedMergeTree({REPLICATION})"),
        ("SummingMergeTree((a, b))", f"ReplicatedSummingMergeTree({REPLICATION}, (a, b))"),
        ("AggregatingMergeTree", f"ReplicatedAggregatingMergeTree({REPLICATION})"),
        ("ReplicatedMergeTree('/own/path', 'r')", "ReplicatedMergeTree('/own/path', 'r')"),
    ],
)
def test_engines_map_to_their_replicated_form_with_their_own_arguments(engine: str, expected: str) -> None:
    assert replicated_engine(Table("t", (("k", "String"),), engine, "k")) == expected


@pytest.mark.parametrize("engine", ["Memory", "Log", "TinyLog", "StripeLog", "Join(ANY, LEFT, k)", "Set"])
def test_an_engine_without_a_replicated_form_is_refused_by_name(engine: str) -> None:
    with pytest.raises(ClusterDDLError, match=r"table t: engine .* has no replicated form"):
        cluster_table = Table("t", (("k", "String"),), engine, "k")
        local_statement(cluster_table, DB, CLUSTER)


def test_the_versions_of_one_entity_share_a_shard() -> None:
    # The whole sort key is hashed: every version of a report under an event, of a household or
    # of an event goes to one shard, and one event's reports spread over the shards.
    assert sharding_key(REPORT_STATE) == "cityHash64(`reported_event_id`, `report_id`)"
    for table in TABLES:
        columns = [c.strip() for c in table.order_by.strip("()").split(",")]
        if columns == ["tuple"]:
            continue
        key = sharding_key(table)
        assert key == f"cityHash64({', '.join(f'`{c}`' for c in columns)})", table.name
        assert f", {key})" in distributed_statement(table, DB, CLUSTER)
    # No sort key: the rows all replace one another, so they stay on one shard.
    assert sharding_key(PRIVACY_KEYS) == "0"
    assert sharding_key(Table("t", (("a", "String"),), "MergeTree", "(toDate(a, 'UTC'), a)")) == (
        "cityHash64(toDate(a, 'UTC'), `a`)"
    )


def test_whatever_a_declaration_renders_the_local_table_renders_too() -> None:
    # A clause another engineer adds to the declaration (TTL today; PARTITION BY, projections,
    # settings tomorrow) comes through create_statement, under the local name and replicated.
    ttl = next(t for t in TABLES if t.ttl)
    assert f"TTL {ttl.ttl}" in local_statement(ttl, DB, CLUSTER)
    for table in TABLES:
        own = table.create_statement(DB)
        local = local_statement(table, DB, CLUSTER)
        expected = own.replace(
            f"{DB}.{table.name} ", f"{DB}.{table.name}{LOCAL_SUFFIX} ON CLUSTER {CLUSTER} ", 1
        )
        assert local == expected.replace(
            f"ENGINE = {table.engine}", f"ENGINE = {replicated_engine(table)}", 1
        )


def test_a_new_declaration_field_is_carried_by_the_local_table() -> None:
    extra = [f for f in dataclasses.fields(Table) if f.name not in {"name", "columns", "engine", "order_by"}]
    table = TABLES[0]
    local = dataclasses.replace(table, name=f"{table.name}{LOCAL_SUFFIX}", engine=replicated_engine(table))
    for field in extra:
        assert getattr(local, field.name) == getattr(table, field.name), field.name


def test_views_are_created_on_cluster_and_read_the_distributed_names() -> None:
    views = _created("VIEW")
    assert len(views) == len(view_statements(DB))
    declared = {t.name for t in TABLES}
    for name, statement in views.items():
        assert f"{DB}.{name} ON CLUSTER {CLUSTER} SQL SECURITY DEFINER AS" in statement
        assert LOCAL_SUFFIX + " " not in statement and not re.search(rf"\w{LOCAL_SUFFIX}\b", statement), name
        # Joins between Distributed tables need it on more than one shard (deny by default).
        assert statement.count("distributed_product_mode = 'global'") == 1, name
        assert statement.rstrip().splitlines()[-1].startswith("SETTINGS "), name
        for ref in re.findall(rf"{DB}\.(\w+_state|regions|village_positions|consumer_lag)\b", statement):
            assert ref in declared or ref in views, (name, ref)


def test_a_view_with_its_own_settings_keeps_them() -> None:
    own = [v for v in view_statements(DB) if v.rstrip().splitlines()[-1].startswith("SETTINGS ")]
    assert own, "no view ends with SETTINGS today: this test has nothing to check"
    rendered = _created("VIEW")
    for view in own:
        name = re.search(rf"VIEW {DB}\.(\w+)", view)
        assert name
        last = rendered[name.group(1)].rstrip().splitlines()[-1]
        assert last == view.rstrip().splitlines()[-1] + ", distributed_product_mode = 'global'"


def test_the_analyst_role_and_the_settings_profile_are_created_on_cluster() -> None:
    statements = _statements()
    assert f"CREATE ROLE IF NOT EXISTS dampak_analyst ON CLUSTER {CLUSTER}" in statements
    for name in ANALYST_OBJECTS:
        assert f"GRANT ON CLUSTER {CLUSTER} SELECT ON {DB}.{name} TO dampak_analyst" in statements
    profile = next(s for s in statements if s.startswith("CREATE SETTINGS PROFILE"))
    assert "distributed_product_mode = 'global'" in profile
    assert "distributed_foreground_insert = 1" in profile


def test_every_migration_is_declared_and_has_a_cluster_form_or_is_refused_by_name() -> None:
    declared = set(TABLES)
    for migration in MIGRATIONS:
        assert set(migration.creates) <= declared, migration.version
    # An existing cluster on every migration before the first rebuild gets every statement of
    # those, on both tables; a rebuild under a new sort key is refused by name.
    rebuild = next(m.version for m in MIGRATIONS if m.resorts)
    from_rebuild = frozenset(m.version for m in MIGRATIONS if m.version >= rebuild)
    statements = migration_statements(DB, CLUSTER, from_rebuild)
    assert len(statements) == 2 * sum(len(m.statements) for m in MIGRATIONS if m.version < rebuild)
    with pytest.raises(
        ClusterDDLError, match=rf"migration {rebuild} rebuilds report_state under a new sort key"
    ):
        migration_statements(DB, CLUSTER, frozenset())
    for local, distributed in zip(statements[::2], statements[1::2], strict=True):
        assert re.match(rf"ALTER TABLE {DB}\.\w+{LOCAL_SUFFIX} ON CLUSTER {CLUSTER} ", local)
        assert distributed == local.replace(f"{LOCAL_SUFFIX} ON CLUSTER", " ON CLUSTER", 1)
    # Applied migrations are skipped; a new cluster (applied None) takes today's declarations.
    assert migration_statements(DB, CLUSTER, frozenset(m.version for m in MIGRATIONS)) == []
    assert not any(s.startswith("ALTER") for s in cluster_statements(DB, CLUSTER))
    last = next(m for m in reversed(MIGRATIONS) if m.statements)
    pending = cluster_statements(DB, CLUSTER, frozenset(m.version for m in MIGRATIONS if m is not last))
    assert sum(s.startswith("ALTER") for s in pending) == 2 * len(last.statements)


def test_a_migration_statement_without_a_cluster_form_is_refused() -> None:
    from sinks import cluster

    odd = dataclasses.replace(
        MIGRATIONS[0], version=99, statements=("OPTIMIZE TABLE {db}.report_state FINAL",)
    )
    original = cluster.MIGRATIONS
    cluster.MIGRATIONS = (odd,)
    try:
        with pytest.raises(ClusterDDLError, match="migration 99: no cluster form"):
            migration_statements(DB, CLUSTER, frozenset())
    finally:
        cluster.MIGRATIONS = original


def test_a_cluster_name_must_be_an_identifier() -> None:
    with pytest.raises(ClusterDDLError, match="letters, digits and _ only"):
        cluster_statements(DB, "prod; DROP DATABASE dampak")

"""The cluster DDL (``dampak init-db --cluster``) executed on the embedded engine, as far as it can go.

chDB has no Keeper and runs no distributed DDL: ``ON CLUSTER`` is refused ("Replicated DDL queries
are disabled") and a ``Replicated*`` engine cannot be created ("Can't create replicated table
without ZooKeeper"); it has no writable user directory for roles and settings profiles. What it
does run, given a ``remote_servers`` configuration whose shards are this process
(``tcp_port`` equal to the shards' port makes them local, so no connection is made): the
``Distributed`` tables exactly as rendered, over the local tables as rendered less their two
replication arguments, and the views over them. Each statement runs with only that taken out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from sinks.cluster import LOCAL_SUFFIX, cluster_statements, init_cluster, sharding_key
from sinks.migrations import MIGRATIONS, migrate
from sinks.tables import ALERTS_STATE, TABLES
from sinks.views import PARAMETERIZED_VIEWS, view_statements

pytestmark = pytest.mark.clickhouse

DB, CLUSTER, PORT = "dampak", "dampak_test", 59000
_ACCESS = ("CREATE ROLE", "GRANT ", "CREATE SETTINGS PROFILE")


def _config(path: Path, hosts: tuple[str, ...]) -> Path:
    shards = "".join(f"<shard><replica><host>{h}</host><port>{PORT}</port></replica></shard>" for h in hosts)
    path.write_text(
        f"<clickhouse><tcp_port>{PORT}</tcp_port>"
        f"<remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers></clickhouse>"
    )
    return path


def _client(tmp_path: Path, hosts: tuple[str, ...]) -> Client:
    config = _config(tmp_path / "cluster.xml", hosts)
    client = clickhouse_connect.get_client(
        interface="chdb", path=str(tmp_path / "ch"), chdb_options={"config-file": str(config)}
    )
    client.command(f"CREATE DATABASE IF NOT EXISTS {DB}")
    client.database = DB  # as sinks.connection.connect does
    return client


class Runner:
    """Runs each statement as chDB can: without ``ON CLUSTER`` and the replication arguments;
    the access statements (role, grants, settings profile) are kept aside, not run."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.skipped: list[str] = []

    def __call__(self, statement: str) -> None:
        if statement.startswith(_ACCESS):
            self.skipped.append(statement)
            return
        local = statement.replace(f" ON CLUSTER {CLUSTER}", "")
        local = re.sub(r"Replicated(\w+)\('[^']*', '[^']*'(?:, )?", r"\1(", local)
        self.client.command(local)


@pytest.fixture
def one_shard(tmp_path: Path) -> Iterator[Client]:
    client = _client(tmp_path, ("localhost",))
    try:
        yield client
    finally:
        client.close()


def test_init_cluster_creates_every_table_sharded_and_the_views_read_them_exactly(one_shard: Client) -> None:
    client = one_shard
    runner = Runner(client)
    recorded = init_cluster(client, DB, CLUSTER, command=runner)
    assert recorded == [m.version for m in MIGRATIONS]
    # Only the access statements were not run (chDB has no writable user directory).
    assert runner.skipped and all(s.startswith(_ACCESS) for s in runner.skipped)

    rows = client.query(
        "SELECT name, engine, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": DB},
    ).result_rows
    engines = {name: full for name, _, full in rows}
    for table in TABLES:
        assert engines[f"{table.name}{LOCAL_SUFFIX}"].startswith(table.engine.partition("(")[0]), table.name
        distributed = engines[table.name]
        assert distributed.startswith(f"Distributed('{CLUSTER}', '{DB}', '{table.name}{LOCAL_SUFFIX}'")
        assert sharding_key(table).replace("`", "") in distributed.replace("`", "")
    assert {name for name, engine, _ in rows if engine == "View"} == {
        re.search(r"VIEW \w+\.(\w+)", v).group(1)  # type: ignore[union-attr]
        for v in view_statements(DB)
    }

    # Reference data went through the Distributed tables into the shard's local tables.
    regions = client.query(f"SELECT count() FROM {DB}.regions_local").result_rows[0][0]
    assert regions > 80_000
    assert client.query(f"SELECT count() FROM {DB}.regions").result_rows[0][0] == regions

    # Two versions of one alert through the Distributed table: the view shows the later one.
    columns = ["event_id", "version", "headline"]
    settings = {"distributed_foreground_insert": 1}
    client.insert(ALERTS_STATE.name, [["ev-1", 1, "first"]], column_names=columns, settings=settings)
    client.insert(ALERTS_STATE.name, [["ev-1", 2, "revised"]], column_names=columns, settings=settings)
    assert client.query(f"SELECT count() FROM {DB}.alerts_state_local").result_rows[0][0] == 2
    assert client.query(f"SELECT event_id, headline FROM {DB}.alerts").result_rows == [("ev-1", "revised")]

    # A worker starting on the cluster (``init_db`` -> ``migrate``) finds everything applied and
    # the views current: it re-creates nothing on its own server.
    assert migrate(client, DB) == []
    views_rows = f"SELECT count() FROM {DB}.schema_migrations WHERE version = 0"
    assert client.query(views_rows).result_rows[0][0] == 1
    show = client.query(f"SHOW CREATE TABLE {DB}.alerts").result_rows[0][0]
    assert "distributed_product_mode = 'global'" in show

    # A second run changes nothing.
    assert init_cluster(client, DB, CLUSTER, command=Runner(client)) == []


def test_the_views_run_on_two_shards_where_a_plain_join_is_refused(tmp_path: Path) -> None:
    # Two shards, both this process: every row is read twice (one local table answers for both),
    # so only that the queries run is checked here, not their figures.
    client = _client(tmp_path, ("localhost", "127.0.0.1"))
    try:
        shards = "SELECT count() FROM system.clusters WHERE cluster = {c:String}"
        assert client.query(shards, parameters={"c": CLUSTER}).result_rows[0][0] == 2
        runner = Runner(client)
        for statement in cluster_statements(DB, CLUSTER):
            runner(statement)
        columns = ["event_id", "version", "headline"]
        client.insert(ALERTS_STATE.name, [["ev-1", 1, "first"]], column_names=columns)
        for view in view_statements(DB):
            name = re.search(r"VIEW \w+\.(\w+)", view).group(1)  # type: ignore[union-attr]
            call = "(incident = {incident:String})" if name in PARAMETERIZED_VIEWS else ""
            client.query(f"SELECT count() FROM {DB}.{name}{call}", parameters={"incident": "ev-1"})
        # Without the views' setting, ClickHouse refuses a join of two Distributed tables.
        with pytest.raises(Exception, match="Double-distributed"):
            client.query(
                f"SELECT count() FROM {DB}.report_state AS r "
                f"JOIN {DB}.registry_state AS h ON r.household_ref = h.household_ref"
            )
    finally:
        client.close()

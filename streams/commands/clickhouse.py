"""``dampak init-db`` (the migrations; with ``--cluster``, a ClickHouse cluster's DDL) and ``dampak
query`` (a read-only query, printed as a table, JSON or TSV)."""

from __future__ import annotations

import argparse
import logging
import sys

from streams.commands.cli_output import print_rows
from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["cmd_init_db", "cmd_query"]

logger = logging.getLogger(__name__)


def cmd_init_db(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.connection import clickhouse_lock, connect
    from sinks.migrations import init_db

    target = settings.clickhouse_target
    if args.print and not args.cluster:
        raise DampakError("--print goes with --cluster NAME")
    if args.cluster:
        return _init_cluster(settings, args.cluster, print_only=args.print)
    with clickhouse_lock(target, blocking=False) as free:
        if target.embedded and not free:
            print("a running worker holds the embedded engine; it applied the migrations at start")
            return 0
        client = connect(target)
        try:
            applied = init_db(
                client, target.database, server=not target.embedded, rates=settings.entitlements.rates()
            )
        finally:
            client.close()
    print(f"migrations applied: {applied}" if applied else "database is up to date")
    return 0


def _init_cluster(settings: Settings, cluster: str, print_only: bool) -> int:
    """``init-db --cluster NAME``: the cluster's DDL (``sinks.cluster``), printed or applied."""
    from sinks.cluster import cluster_statements, init_cluster
    from sinks.connection import connect

    target = settings.clickhouse_target
    if print_only:
        for statement in cluster_statements(target.database, cluster):
            print(f"{statement.strip()};\n")
        return 0
    if target.embedded:
        raise DampakError("--cluster needs a ClickHouse server (DAMPAK_CLICKHOUSE__DSN=http(s)://...)")
    client = connect(target)
    try:
        recorded = init_cluster(client, target.database, cluster, rates=settings.entitlements.rates())
    finally:
        client.close()
    print(
        f"cluster {cluster}: migrations recorded: {recorded}"
        if recorded
        else f"cluster {cluster} is up to date"
    )
    return 0


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.analyst import Scope, query

    parameters = {}
    for item in args.param or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DampakError(f"--param {item!r}: expected NAME=VALUE")
        parameters[name] = value
    token = settings.web.token.get_secret_value() if settings.web.token else None
    scope: Scope = "internal" if args.internal else "analyst"
    columns, rows = query(settings.clickhouse_target, args.sql, parameters, scope, token)
    print_rows(columns, rows, args.format, sys.stdout)
    return 0

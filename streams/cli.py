"""The ``dampak`` command: local stack, database, worker, publishing, queries and the demo."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from streams.cli_output import print_rows
from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "clickhouse_connect", "chdb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python (admin and lag tooling) warns about Faust's group metadata it cannot decode.
    logging.getLogger("kafka").setLevel(logging.ERROR)


# --------------------------------------------------------------------------- commands
def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka
    from streams.admin import ensure_topics

    local = LocalKafka(settings, secure=True if args.secure else None, brokers=args.brokers)
    result = local.up()
    if result == "external":
        print(f"using the Kafka cluster at {settings.kafka.bootstrap_servers} (nothing started locally)")
        ensure_topics(settings)
        return 0
    kind = f"{local.brokers} nodes" if local.brokers > 1 else "node"
    mode = "SASL_SSL (SCRAM-SHA-512)" if local.secure else "PLAINTEXT"
    print(f"Kafka {settings.local_kafka.version} {result}: {kind} at {local.bootstrap_servers}, {mode}")
    created = ensure_topics(settings.model_copy(update={"kafka": local.client_kafka()}))
    print(f"topics ready ({len(created)} created)")
    if local.secure or local.brokers > 1:
        print(f"settings for every dampak command: {local.env_file}  (set -a; . {local.env_file}; set +a)")
    if settings.privacy.uses_default_key and not settings.dev_mode:
        print("for local development, run the worker with DAMPAK_DEV_MODE=true (built-in pseudonym key)")
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka

    stopped = LocalKafka(settings).down()
    print("Kafka stopped" if stopped else "no local Kafka started by dampak is running")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka
    from sinks.connection import holder

    st = LocalKafka(settings).status()
    worker = holder(settings.clickhouse_target)
    report = {
        "kafka": {
            "bootstrap_servers": st.bootstrap_servers,
            "local": st.managed,
            "answering": st.answering,
            "pid": st.pid,
            "log": str(st.log_file) if st.log_file else None,
        },
        "clickhouse": settings.redacted()["clickhouse"]["dsn"],
        "worker": worker,
    }
    print(json.dumps(report, indent=2))
    return 0 if st.answering else 1


def cmd_init_db(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.connection import connect, engine_lock
    from sinks.migrations import init_db

    target = settings.clickhouse_target
    with engine_lock(target, blocking=False) as free:
        if target.embedded and not free:
            print("a running worker holds the embedded engine; it applied the migrations at start")
            return 0
        client = connect(target)
        try:
            applied = init_db(client, target.database, server=not target.embedded)
        finally:
            client.close()
    print(f"migrations applied: {applied}" if applied else "database is up to date")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    return run_worker(settings)


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.admin import check_kafka, iter_json_lines, produce

    check_kafka(settings)

    if args.file == "-":
        lines = list(iter_json_lines(sys.stdin.buffer))
    else:
        with open(args.file, "rb") as fh:
            lines = list(iter_json_lines(fh))
    sent = produce(settings, args.topic, lines, args.key, args.tombstone or (), raw=args.raw)
    print(f"published {sent} messages to {args.topic}")
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


def cmd_lag(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from streams.admin import check_kafka
    from streams.lag import LagMonitor

    check_kafka(settings)
    monitor = LagMonitor(settings, history_file=settings.data_dir / "lag-history.json")
    try:
        while True:
            groups = monitor.sample([args.group] if args.group else None)
            if args.json:
                print(json.dumps([g.as_dict() for g in groups]), flush=True)
            else:
                for g in groups:
                    print(f"group {g.group}: {g.status} ({g.members} members)")
                    rows = [
                        (p.topic, p.partition, p.committed, p.end, p.lag, p.lag_seconds, p.status)
                        for p in g.partitions
                    ]
                    cols = ["topic", "partition", "committed", "log_end", "lag", "lag_seconds", "status"]
                    print_rows(cols, rows, "table", sys.stdout)
                sys.stdout.flush()
            if not args.watch:
                return 0
            time.sleep(args.watch)
    finally:
        monitor.close()


def cmd_rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.connection import connect, engine_lock
    from sinks.migrations import init_db
    from streams.admin import check_kafka, group_members
    from streams.rotation import rotate_key

    check_kafka(settings)
    if group_members(settings, settings.app_id):
        raise DampakError(f"workers of {settings.app_id!r} are running: stop every worker first")
    target = settings.clickhouse_target
    with engine_lock(target, blocking=False) as free:
        if target.embedded and not free:
            raise DampakError("a worker holds the embedded engine: stop it first")
        client = connect(target)
        try:
            init_db(client, target.database, server=not target.embedded)
            stats = rotate_key(settings, client)
        finally:
            client.close()
    print(
        f"pseudonyms now use key {stats.key_id!r} (before: {stats.previous_key_id!r}): rewrote "
        f"{stats.households} households, {stats.reports} reports and {stats.dead_letters} dead letters; "
        f"deleted rows of other keys: {stats.deleted}"
    )
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.redacted(), indent=2, default=str))
    return 0


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(Path(args.out)):
        print(path)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.demo import run_demo

    return run_demo(settings, keep_running=args.keep_running)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dampak", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start the local Kafka broker (reused if running) and create topics")
    p.add_argument("--secure", action="store_true", help="serve clients over SASL_SSL (SCRAM-SHA-512)")
    p.add_argument("--brokers", type=int, choices=(1, 3), help="nodes to start (3: replication factor 3)")
    sub.add_parser("down", help="stop the local Kafka broker that `up` started")
    sub.add_parser("status", help="report the broker, ClickHouse and worker")
    sub.add_parser("init-db", help="apply ClickHouse migrations and load region names")
    sub.add_parser("worker", help="run the Faust worker (SIGTERM stops it cleanly)")
    p = sub.add_parser("produce", help="publish JSON lines to a topic")
    p.add_argument("topic")
    p.add_argument("file", help="JSON-lines file, or - for standard input")
    p.add_argument("--key", help="field whose value keys each message")
    p.add_argument("--tombstone", action="append", metavar="KEY", help="also publish a null value for KEY")
    p.add_argument("--raw", action="store_true", help="publish lines that are not JSON as they are")
    p = sub.add_parser("query", help="run a read-only SQL query on ClickHouse")
    p.add_argument("sql")
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a value for the placeholder {NAME:Type} in the query (server-side, never pasted in)",
    )
    p.add_argument(
        "--internal",
        action="store_true",
        help="operators: also read dampak's internal tables (*_state); needs the worker's token",
    )
    p.add_argument("--format", choices=("table", "json", "tsv"), default="table")
    p = sub.add_parser("lag", help="consumer lag per partition with Burrow-style status")
    p.add_argument("--group", help="one consumer group (default: every group of the app)")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="sample again every SECONDS")
    p.add_argument("--json", action="store_true", help="one JSON document per sample")
    sub.add_parser(
        "rotate-key",
        help="re-derive every pseudonym in ClickHouse with the configured key (workers stopped)",
    )
    sub.add_parser("config", help="print the effective settings (secrets masked)")
    p = sub.add_parser("schemas", help="export the topics' JSON Schemas")
    p.add_argument("--out", default="schemas/json")
    p = sub.add_parser("demo", help="replay the bundled Cianjur scenario end to end and print the impact")
    p.add_argument("--keep-running", action="store_true", help="leave the worker running afterwards")
    return parser


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "init-db": cmd_init_db,
    "worker": cmd_worker,
    "produce": cmd_produce,
    "query": cmd_query,
    "lag": cmd_lag,
    "rotate-key": cmd_rotate_key,
    "config": cmd_config,
    "schemas": cmd_schemas,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    _setup_logging(settings.log_level)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        code = COMMANDS[args.command](settings, args)
    except DampakError as exc:
        print(f"dampak {args.command}: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)

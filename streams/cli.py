"""The ``dampak`` command: local stack, database, worker, publishing, queries and the demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from streams.cli_output import print_rows
from streams.errors import DampakError
from streams.settings import Settings, install_log_masking, mask_secrets

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A URL's credentials (a feed's ?token=, a DSN's password) never reach a log line.
    install_log_masking()
    for noisy in ("aiokafka", "clickhouse_connect", "chdb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python (admin and lag tooling) warns about Faust's group metadata it cannot decode.
    logging.getLogger("kafka").setLevel(logging.ERROR)


# --------------------------------------------------------------------------- commands
def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka
    from streams.admin import check_kafka, ensure_topics

    local = LocalKafka(settings, secure=True if args.secure else None, brokers=args.brokers)
    result = local.up()
    if result == "external":
        print(f"using the Kafka cluster at {settings.kafka.bootstrap_servers} (nothing started locally)")
        check_kafka(settings)
        print(f"topics ready ({len(ensure_topics(settings))} created)")
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


def cmd_writer(settings: Settings, args: argparse.Namespace) -> int:
    from streams.writer_process import run_writer

    return run_writer(settings)


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.admin import check_kafka, check_topic_exists, iter_json_lines, produce
    from streams.progress import Progress
    from streams.topics import KEY_FIELDS, physical_name, resolve_input

    topic = resolve_input(args.topic, settings)
    name = physical_name(topic, settings)
    key_field = args.key or KEY_FIELDS[topic]
    check_kafka(settings)
    check_topic_exists(settings, name)
    with contextlib.ExitStack() as stack:
        if args.file == "-":
            fh: IO[bytes] = sys.stdin.buffer
            size = None
        else:
            try:
                fh = stack.enter_context(open(args.file, "rb"))
            except OSError as exc:
                raise DampakError(f"cannot read {args.file}: {exc.strerror}") from exc
            size = os.fstat(fh.fileno()).st_size
        progress = Progress(f"produce {topic.value}", size)
        sent = produce(
            settings, name, iter_json_lines(fh), key_field, args.tombstone or (), raw=args.raw,
            progress=progress, position=fh.tell if size else lambda: None,
        )  # fmt: skip
    print(f"published {sent:,} messages to {name}" + (f" (keyed by {key_field})" if key_field else ""))
    return 0


def cmd_import_registry(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import datetime

    from streams.admin import check_kafka, check_topic_exists
    from streams.registry_import import ColumnMapping, import_registry
    from streams.topics import Topic, physical_name

    mapping = ColumnMapping.load(args.mapping)
    check_kafka(settings)
    check_topic_exists(settings, physical_name(Topic.HOUSEHOLDS, settings))
    try:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    except ValueError as exc:
        raise DampakError(f"--as-of {args.as_of!r}: {exc}") from exc
    stats = import_registry(
        settings, args.file, fmt=args.format, mapping=mapping, rejects=args.rejects, snapshot=args.snapshot,
        force=args.force, restart=args.restart, as_of=as_of, delimiter=args.delimiter, encoding=args.encoding,
    )  # fmt: skip
    for note in stats.notes:
        print(f"dampak import-registry: {note}", file=sys.stderr)
    rate = stats.rows / stats.seconds if stats.seconds else 0.0
    print(
        f"{stats.rows:,} rows in {stats.seconds:.1f} s ({rate:,.0f} rows/s): {stats.published:,} published, "
        f"{stats.rejected:,} rejected"
        + (f" (see {args.rejects or str(args.file) + '.rejects.csv'})" if stats.rejected else "")
        + (f", resumed after row {stats.resumed_from:,}" if stats.resumed_from else "")
        + (f", {stats.tombstones:,} tombstones (absent from the snapshot)" if args.snapshot else "")
    )
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.analyst import query
    from sinks.center import figures
    from streams.center import page

    target = settings.clickhouse_target
    data = figures(lambda sql, p: query(target, sql, p), args.event)
    if data["event"] is None:
        known = ", ".join(e["event_id"] for e in data["events"][:10]) or "none yet"
        raise DampakError(f"no event {args.event!r} (events: {known})")
    data["pipeline"] = _pipeline_state(settings)
    args.out.write_text(page(settings.web.language, data))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {args.event}")
    return 0


def _pipeline_state(settings: Settings) -> dict[str, object]:
    """One lag sample of the worker's group, when Kafka answers (the report works without it)."""
    from streams.admin import broker_answers
    from streams.lag import LagMonitor

    if not broker_answers(settings.kafka.bootstrap_servers, **settings.kafka.client_options()):
        return {"status": None, "lag": None}
    monitor = LagMonitor(settings)
    try:
        [group] = monitor.sample([settings.app_id])
    finally:
        monitor.close()
    return {"status": group.status, "lag": sum(p.lag for p in group.partitions)}


def cmd_feed(settings: Settings, args: argparse.Namespace) -> int:
    from streams.feeds import run_feed

    return run_feed(settings, once=args.once)


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
            groups = monitor.sample(args.group)
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
    # Secrets and every URL-valued setting's credentials masked (Settings.redacted).
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
    sub.add_parser(
        "writer",
        help="run the writer that owns the embedded engine for compute workers (DAMPAK_ROLE=compute)",
    )
    p = sub.add_parser("produce", help="publish JSON lines to an input topic")
    p.add_argument("topic", help="households, field-reports or disaster-alerts (the prefix is added)")
    p.add_argument("file", help="JSON-lines file, or - for standard input")
    p.add_argument(
        "--key", help="field whose value keys each message (default: the topic's id field, if any)"
    )
    p.add_argument("--tombstone", action="append", metavar="KEY", help="also publish a null value for KEY")
    p.add_argument("--raw", action="store_true", help="publish lines that are not JSON as they are")
    p = sub.add_parser("import-registry", help="publish a DTSEN/DTKS export (CSV or Parquet) to households")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=("csv", "parquet"), help="default: from the file's extension")
    p.add_argument("--mapping", type=Path, help="JSON: dampak field -> the export's column (see README)")
    p.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    p.add_argument("--rejects", type=Path, help="rejected rows (default FILE.rejects.csv)")
    p.add_argument("--snapshot", action="store_true", help="the file is the whole registry: remove others")
    p.add_argument("--force", action="store_true", help="--snapshot: remove others though rows were rejected")
    p.add_argument("--encoding", help="CSV encoding (default: detected; utf-8, cp1252, latin-1, utf-16, ...)")
    p.add_argument("--restart", action="store_true", help="ignore the checkpoint of an interrupted import")
    p.add_argument("--as-of", help="updated_at for rows without one (default: the file's modification time)")
    p = sub.add_parser("report", help="write an event's command-center page as one self-contained HTML file")
    p.add_argument("event", help="event id (see dampak query 'SELECT event_id FROM dampak.event_summary')")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p = sub.add_parser("feed", help="publish BMKG's earthquake feeds and CAP nowcasts to disaster-alerts")
    p.add_argument("source", choices=("bmkg",))
    p.add_argument("--once", action="store_true", help="poll once and exit (cron)")
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
    p.add_argument(
        "--group", action="append", help="a consumer group, repeatable (default: every group of the app)"
    )
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
    "writer": cmd_writer,
    "produce": cmd_produce,
    "import-registry": cmd_import_registry,
    "feed": cmd_feed,
    "report": cmd_report,
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
        print(f"dampak {args.command}: {mask_secrets(str(exc))}", file=sys.stderr)
        code = 2
    sys.exit(code)

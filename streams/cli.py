"""The ``dampak`` command (``python -m streams``, the ``dampak`` script): its arguments, logging, and
the dispatch to each command's module in ``streams.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dampak", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start the local Kafka broker (reused if running) and create topics")
    p.add_argument("--secure", action="store_true", help="serve clients over SASL_SSL (SCRAM-SHA-512)")
    p.add_argument("--brokers", type=int, choices=(1, 3), help="nodes to start (3: replication factor 3)")
    sub.add_parser("down", help="stop the local Kafka broker that `up` started")
    sub.add_parser("status", help="report the broker, ClickHouse and worker")
    p = sub.add_parser("init-db", help="apply ClickHouse migrations and load region names")
    p.add_argument(
        "--cluster",
        metavar="NAME",
        help="a ClickHouse cluster (remote_servers): replicated <table>_local tables on every shard, "
        "Distributed tables and views under the usual names, all ON CLUSTER NAME",
    )
    p.add_argument("--print", action="store_true", help="with --cluster: print the DDL, run nothing")
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
    p.add_argument(
        "--codes",
        choices=("kemendagri", "bps"),
        help="village codes: kemendagri (10 undotted digits read 2-2-2-4) or bps (rejected: no bridge "
        "is shipped); default: dotted codes are Kemendagri, undotted 10 digits are rejected as BPS",
    )
    p = sub.add_parser("incident", help="link two events into one incident, unlink them, or list incidents")
    p.add_argument("action", choices=("link", "unlink", "list"))
    p.add_argument("event", nargs="?", help="link/unlink: the event that joins or leaves an incident")
    p.add_argument("other", nargs="?", help="link/unlink: an event of that incident")
    p.add_argument("--operator", help="who decides (the operator's account); required to link or unlink")
    p.add_argument("--reason", help="why; required to link or unlink (kept in dampak.incident_links)")
    p.add_argument("--link-id", help="the decision's id (default: a new one)")
    p = sub.add_parser("coverage", help="per kecamatan, the struck villages no one has reported from yet")
    p.add_argument("incident", help="incident id (its main event: dampak incident list)")
    p.add_argument("--format", choices=("table", "json", "tsv"), default="table")
    p = sub.add_parser("entitlements", help="what Kemensos owes under Permensos 4/2015, per regency and kind")
    p.add_argument("incident", help="incident id (its main event: dampak incident list)")
    p.add_argument("--format", choices=("table", "json", "tsv"), default="table")
    p = sub.add_parser("export", help="write the households of an incident to re-assess, by name (officers)")
    p.add_argument("what", choices=("reassessment",))
    p.add_argument("incident", help="the incident id (see dampak incident list)")
    p.add_argument(
        "--registry", type=Path, required=True, help="the welfare office's registry export (CSV or Parquet)"
    )
    p.add_argument(
        "--format", choices=("csv", "parquet"), help="the registry's (default: from its extension)"
    )
    p.add_argument(
        "--mapping", type=Path, help="JSON: dampak field -> the export's column (as import-registry)"
    )
    p.add_argument("--delimiter", default=",", help="CSV delimiter (default ,)")
    p.add_argument("--encoding", help="CSV encoding (default: detected; utf-8, cp1252, latin-1, utf-16, ...)")
    p.add_argument("--out", type=Path, required=True, help="the list to write (CSV; personal data)")
    p.add_argument("--force", action="store_true", help="overwrite --out")
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


#: Each command's module under streams/commands/ and its function there. A module is imported only
#: when its command runs, so that `dampak config` imports no Kafka client, Faust or ClickHouse.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("local", "cmd_up"),
    "down": ("local", "cmd_down"),
    "status": ("local", "cmd_status"),
    "init-db": ("clickhouse", "cmd_init_db"),
    "worker": ("processes", "cmd_worker"),
    "writer": ("processes", "cmd_writer"),
    "produce": ("produce", "cmd_produce"),
    "import-registry": ("registry_import", "cmd_import_registry"),
    "feed": ("feeds", "cmd_feed"),
    "report": ("report", "cmd_report"),
    "incident": ("incidents", "cmd_incident"),
    "coverage": ("ministry", "cmd_coverage"),
    "export": ("export", "cmd_export"),
    "entitlements": ("ministry", "cmd_entitlements"),
    "query": ("clickhouse", "cmd_query"),
    "lag": ("lag", "cmd_lag"),
    "rotate-key": ("rotation", "cmd_rotate_key"),
    "config": ("config", "cmd_config"),
    "schemas": ("config", "cmd_schemas"),
    "demo": ("local", "cmd_demo"),
}


def _command(name: str) -> Callable[[Settings, argparse.Namespace], int]:
    module, function = COMMANDS[name]
    run: Callable[[Settings, argparse.Namespace], int] = getattr(
        importlib.import_module(f"streams.commands.{module}"), function
    )
    return run


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    _setup_logging(settings.log_level)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        code = _command(args.command)(settings, args)
    except DampakError as exc:
        print(f"dampak {args.command}: {mask_secrets(str(exc))}", file=sys.stderr)
        code = 2
    sys.exit(code)

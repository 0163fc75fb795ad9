"""The peer a user would pick instead of dampak: the same job written idiomatically with
quix-streams (confluent-kafka underneath), for the benchmark.

It validates households and field reports with dampak's own pydantic models, re-keys the reports
by household (``group_by``, a repartition topic), enriches each from the household registry held
in quix-streams' state store (``join_asof``: the latest household record not newer than the
report), and writes the enriched reports to the embedded engine (chDB) through clickhouse-connect,
in batches (a ``BatchingSink``). It leaves out what dampak does beyond that job (dead letters,
retractions and moves, pseudonyms, the impact views, exposure estimates).

quix-streams pins an older pydantic than dampak, so it runs from its own virtualenv
(``.venv-peer``, made by ``make bench``), with this repository on its path:

    .venv-peer/bin/python -m tests.bench.peer_quix --phase households|reports --expect N ...

It runs until it has handled ``N`` messages of its phase (households, or the field reports of
``--event``), then prints one JSON line: messages, seconds and CPU-seconds from its first message
to its last. The registry phase reads an empty reports topic, so that it measures the registry.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import quixstreams
from quixstreams import Application
from quixstreams.models import TopicConfig
from quixstreams.sinks import BatchingSink, SinkBatch

from schemas.field_reports import FieldReport
from schemas.households import Household

#: The contracts' validation context, as dampak's defaults give it.
CONTEXT = {"earliest": datetime(2000, 1, 1, tzinfo=UTC), "max_future": timedelta(days=1)}

COLUMNS = ["report_id", "revision", "household_id", "village_code", "displaced", "houses_heavy",
           "desil", "kpm", "vulnerable", "reported_at_ms"]  # fmt: skip
DDL = (
    "CREATE TABLE IF NOT EXISTS default.peer_reports (report_id String, revision UInt32, "
    "household_id String, village_code String, displaced UInt32, houses_heavy UInt32, "
    "desil Nullable(UInt8), kpm UInt8, vulnerable UInt16, reported_at_ms UInt64) "
    "ENGINE = ReplacingMergeTree(revision) ORDER BY report_id"
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Progress:
    def __init__(self, expect: int, app: Application) -> None:
        self.expect, self.app, self.done = expect, app, 0
        self.t0 = self.cpu0 = 0.0

    def start(self, *_: Any) -> None:
        """At the phase's first message."""
        if not self.t0:
            self.t0, self.cpu0 = time.perf_counter(), cpu_seconds()

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.expect:
            self.app.stop()

    def result(self) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t0
        cpu = round(cpu_seconds() - self.cpu0, 2)
        version = quixstreams.__version__
        return {"messages": self.done, "seconds": round(seconds, 2), "cpu_s": cpu, "version": version}


class ClickHouseSink(BatchingSink):
    """Enriched reports into chDB, one insert per batch quix-streams hands over at commit time."""

    def __init__(self, dsn: str, progress: Progress | None) -> None:
        super().__init__()
        self._dsn, self._progress = dsn, progress
        self._client: Any = None

    def setup(self) -> None:
        self._client = clickhouse_connect.get_client(dsn=self._dsn)
        self._client.command(DDL)

    def write(self, batch: SinkBatch) -> None:
        rows = [[item.value[c] for c in COLUMNS] for item in batch]
        self._client.insert("default.peer_reports", rows, column_names=COLUMNS)
        if self._progress is not None:
            self._progress.tick(len(rows))


def household(value: bytes) -> dict[str, Any]:
    h = Household.model_validate_json(value, context=CONTEXT)
    return {
        "desil": h.desil,
        "kpm": int(bool(h.programs)),
        "vulnerable": h.elderly + h.disabled + h.pregnant,
    }


def report(value: bytes) -> dict[str, Any]:
    r = FieldReport.model_validate_json(value, context=CONTEXT)
    return {
        "report_id": r.report_id,
        "event_id": r.event_id,
        "revision": r.revision,
        "household_id": r.household_id or "",
        "village_code": r.village_code,
        "displaced": r.displaced,
        "houses_heavy": r.houses_heavy,
        # JSON on the repartition topic: epoch milliseconds.
        "reported_at_ms": int(r.reported_at.timestamp() * 1000),
    }


def by_household(r: dict[str, Any]) -> str:
    return str(r["household_id"] or r["report_id"])


def enriched(left: dict[str, Any], right: dict[str, Any] | None) -> dict[str, Any]:
    registry = right or {"desil": None, "kpm": 0, "vulnerable": 0}
    return {**left, **registry}


def build(args: argparse.Namespace) -> tuple[Application, Progress]:
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        commit_interval=1.0,
        consumer_extra_config={"max.poll.interval.ms": 600_000},
    )
    progress = Progress(args.expect, app)
    households = app.dataframe(
        app.topic(args.households_topic, key_deserializer="str", value_deserializer="bytes")
    )
    if args.phase == "households":
        households = households.update(progress.start)
    households = households.apply(household)
    if args.phase == "households":
        households = households.update(lambda _: progress.tick())
    reports = (
        app.dataframe(
            app.topic(
                args.reports_topic,
                key_deserializer="str",
                value_deserializer="bytes",
                # Co-partitioned with the registry (only used when the topic is created here: the
                # registry phase's empty one).
                config=TopicConfig(num_partitions=args.partitions, replication_factor=1),
            )
        )
        .apply(report)
        # The benchmark's event only (the topic also holds the latency phase's live reports, which
        # dampak handled as they came); the clock starts at its first report.
        .filter(lambda r: r["event_id"] == args.event)
        .update(progress.start)
        # Keyed as the registry is (same bytes, so the same partition): a report without a
        # household keeps its own id and finds no household.
        .group_by(by_household, name="by-household", key_serializer="str", key_deserializer="str")
        .join_asof(households, how="left", on_merge=enriched, name="registry")
    )
    reports.sink(ClickHouseSink(args.dsn, progress if args.phase == "reports" else None))
    return app, progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", choices=["households", "reports"], required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--households-topic", required=True)
    parser.add_argument("--reports-topic", required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--event", required=True, help="the event whose reports are counted")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    app, progress = build(args)
    app.run()
    print(json.dumps(progress.result()), flush=True)


if __name__ == "__main__":
    main()

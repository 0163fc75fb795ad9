"""Profile a worker with py-spy while it drains a pre-filled backlog; writes docs/profile-worker.*

    python -m tests.bench.profile [--seconds 30] [--phase reports|registry]

``reports`` (the default): 200,000 field reports, after 200,000 households were loaded.
``registry``: the load of 1,000,000 households (docs/profile-registry.* instead).

    python -m tests.bench.profile --measure [--households 100000] [--reports 100000]

    python -m tests.bench.profile --in-process [--households 40000] [--reports 40000]

measures, in one process, the CPU seconds per 1,000 messages of each handler path through the
engine, its RocksDB tables and changelog, with fakes for Kafka and ClickHouse: dampak's own code
only, without the broker, Faust's fetching or the inserts (the steadiest figure on a shared host;
take the least of a few runs). ``--measure``
measures instead of profiling: the worker's own CPU seconds (user + system, from /proc) per 1,000
households while it loads the registry and per 1,000 reports while it drains the reports (each
until its group has committed every hop), the rates, and its peak RSS. On a shared machine
compare these CPU figures before and after a change, in back-to-back runs, rather than rates.

Outputs the raw collapsed stacks (``docs/profile-<name>.collapsed``, loadable in speedscope or
flamegraph.pl) and a summary of where the worker's time goes (``docs/profile-<name>.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from streams.ops.admin import ensure_topics
from tests.bench.run import ROOT, Run
from tests.bench.workload import generate

_LOOP = "asyncio/uvloop event loop"
_BUCKETS = [
    ("faust stream/agent machinery", ("faust/streams.py", "faust/agents/", "faust/channels.py", "mode/")),
    ("faust tables + changelog", ("faust/tables/", "faust/stores/", "rocksdict")),
    (
        "producing (aiokafka/faust producer)",
        ("aiokafka/producer", "faust/transport/producer", "faust/topics.py"),
    ),
    (
        "consuming (aiokafka fetch)",
        ("aiokafka/consumer", "faust/transport/consumer", "faust/transport/drivers"),
    ),
    ("pydantic validation", ("pydantic",)),
    ("ClickHouse insert (clickhouse-connect/chDB)", ("clickhouse_connect", "chdb")),
    (
        "dampak engine, features, domain",
        ("streams/engine/", "streams/features/", "streams/domain/", "streams/rows.py"),
    ),
    (_LOOP, ("asyncio/",)),
]


_WHAT = {
    "reports": "processing a backlog of 200,000 field reports with 200,000 households loaded",
    "registry": "loading a backlog of 1,000,000 households (the registry)",
}


def summarize(raw: Path, phase: str = "reports") -> str:
    """The main thread's samples by component and by function. The main thread runs the event
    loop, where all of dampak's Python runs; the others (the ClickHouse insert executor, Faust's
    service threads) mostly wait, and py-spy counts their waits as samples too."""
    total = main = inserting = 0
    inclusive, own = Counter[str](), Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        if not frames[0].startswith("_run_module_as_main"):
            if any("clickhouse_connect" in f or "chdb" in f for f in frames):
                inserting += n
            continue
        main += n
        own[frames[-1]] += n
        if frames[-1].startswith("Worker.execute_from_commandline"):  # uvloop's C code runs here
            inclusive[_LOOP] += n
            continue
        for label, needles in _BUCKETS:
            if any(any(k in f for k in needles) for f in frames[-3:]):
                inclusive[label] += n
                break
    lines = [
        "# Where a worker's time goes" + (" while it loads the registry" if phase == "registry" else ""),
        "",
        f"py-spy, {main} samples of a worker's main thread (uvloop) {_WHAT[phase]} "
        f"(`python -m tests.bench.profile --phase {phase}`; the other threads' {total - main} samples "
        f"are mostly waits and left out). Raw stacks of every thread: "
        f"`docs/{raw.name}`. Under uvloop, the event loop's own C code is counted "
        "in its caller, `Worker.execute_from_commandline`. ClickHouse inserts run on a thread of "
        f"their own: {inserting} samples there, {inserting / max(main, 1):.0%} as many as the main "
        "thread's.",
        "",
        "| component (innermost 3 frames) | share of samples |",
        "|---|---:|",
        *[f"| {label} | {inclusive[label] / main:.1%} |" for label, _ in _BUCKETS],
        "",
        "| hottest functions (self time) | share |",
        "|---|---:|",
        *[f"| `{name[:100]}` | {n / main:.1%} |" for name, n in own.most_common(15)],
        "",
    ]
    return "\n".join(lines)


def _spy(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes]:
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    spy = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds),
           "--format", "raw", "--rate", "100", "-o", str(out)]  # fmt: skip
    return subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of the process's threads, by thread name (the main thread's is the
    event loop's; chDB's and RocksDB's threads are native), the largest first."""
    out: Counter[str] = Counter()
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out["main" if task.name == str(pid) else name] += (int(fields[11]) + int(fields[12])) / tick
    return {name: round(cpu, 1) for name, cpu in out.most_common(8)}


def measure(households: int, reports: int, villages: int, spy_out: Path | None = None) -> dict[str, Any]:
    """The worker's CPU per 1,000 households (registry load) and per 1,000 reports, its rates and
    peak RSS; each phase runs until the group has committed every one of its hops. ``spy_out``:
    where py-spy's raw stacks of the reports phase go (and their summary is printed), if given."""
    run = Run("quick")
    settings, env = run.settings("measure", 16701)
    ensure_topics(settings)
    w = generate(households, reports, villages)
    run.produce("households", w.households)
    worker = run.start_worker(env, 16701)
    try:
        hops = ("households", "households-by-id")
        t, cpu = time.perf_counter(), run.cpu_seconds(worker.pid)
        while not run.committed_all(settings.app_id, hops):
            time.sleep(0.2)
        load_s, load_cpu = time.perf_counter() - t, run.cpu_seconds(worker.pid) - cpu
        load_rss = run.peak_rss_mb(worker.pid)
        # The reports as a backlog, as in the benchmark: produced while no worker runs.
        run.stop(worker)
        run.produce("field-reports", w.reports)
        worker = run.start_worker(env, 16701)
        hops = ("field-reports", "field-reports-by-id", "field-reports-by-household")
        t, cpu = time.perf_counter(), run.cpu_seconds(worker.pid)
        spy = _spy(worker.pid, spy_out, 600) if spy_out else None
        while not run.committed_all(settings.app_id, hops):
            time.sleep(0.2)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has sampled
            spy.wait()
            print(summarize(spy_out))
        reports_s, reports_cpu = time.perf_counter() - t, run.cpu_seconds(worker.pid) - cpu
        threads = _thread_cpu(worker.pid)
        return {
            "households": households,
            "registry_households_per_s": round(households / load_s),
            "registry_cpu_s_per_1000": round(load_cpu / households * 1000, 4),
            "registry_peak_rss_mb": round(load_rss, 1),
            "reports": reports,
            "reports_per_s": round(reports / reports_s),
            "reports_cpu_s_per_1000": round(reports_cpu / reports * 1000, 4),
            "peak_rss_mb": round(run.peak_rss_mb(worker.pid), 1),
            "thread_cpu_s": threads,
        }
    finally:
        run.stop(worker)
        run.delete_topics()
        shutil.rmtree(run.base, ignore_errors=True)


def in_process(households: int, reports: int, villages: int) -> dict[str, float]:
    """CPU seconds per 1,000 messages of each flow of the registry and the reports, through the
    engine (as the worker's runners call it: inputs by batch, the re-keyed hops as Faust agents'
    bundles) over RocksDB tables, with Kafka and ClickHouse faked."""
    import asyncio
    import functools
    import tempfile

    import faust

    from streams.engine import Batching, Engine, Flow, Message
    from streams.engine.faust.changelog import Changelog, Record, Sent
    from streams.engine.faust.runner import EventContext, FaustRunner
    from streams.engine.faust.state import TableState
    from streams.features.field_reports import ReportDeps, decide_report, enrich_report, route_report
    from streams.features.households import RegistryDeps, apply_household_change, route_household
    from streams.runtime.flows import bundle_take
    from streams.settings import Settings
    from streams.topics import LocalTable
    from tests.unit.fakes import FAST, FAULTS, PSEUDO, FakeGroup, FakeRecord, FakeStream, dead_letters

    class Sender:  # the changelog's producer, every batch acknowledged at once
        async def send(self, topic: str, partition: int, records: list[Record]) -> list[Sent]:
            ack = asyncio.get_running_loop().create_future()
            ack.set_result(0)
            return [(len(records), ack)]

    class Writer:
        async def insert(self, table: Any, rows: Any) -> None:
            return None

    class Forwarder:  # keeps what each topic was sent, read back as records
        refused_record = FAULTS.refused

        def __init__(self) -> None:
            self.sent: dict[str, list[FakeRecord]] = {}

        async def deliver(self, forwards: Any) -> list[BaseException | None]:
            for f in forwards:
                log = self.sent.setdefault(f.topic, [])
                log.append(
                    FakeRecord(f.topic, f.partition or 0, len(log), f.key, f.value, 1.0, list(f.headers))
                )
            return [None] * len(forwards)

    settings = Settings()
    partitions = settings.kafka.partitions
    data = tempfile.mkdtemp()
    app = faust.App("bench-in-process", store="rocksdb://", datadir=data, autodiscover=False)
    changelog = Changelog(Sender(), FAST)
    state = {
        name: TableState(app.Table(name.value, default=None, partitions=partitions, key_type=bytes,
                                   value_type=bytes, options=settings.tables.store_options()), changelog)
        for name in LocalTable
    }  # fmt: skip
    forwarder = Forwarder()
    hops = ("households-by-id", "field-reports-by-id", "field-reports-by-household")
    bundled = dict.fromkeys(hops, partitions)
    agents = Engine(Writer(), forwarder, dead_letters(), FAST, faults=FAULTS, bundled=bundled,
                    changelog=changelog, events=EventContext)  # fmt: skip
    inputs = Engine(Writer(), forwarder, dead_letters(), FAST, faults=FAULTS, bundled=bundled)
    take = bundle_take(settings)
    batching = Batching(settings.sink.batch_size, settings.sink.hop_batch_seconds, take)
    registry = RegistryDeps(state[LocalTable.REGISTRY], state[LocalTable.HOUSEHOLD_REPORTS], PSEUDO)
    copies = state[LocalTable.REPORT_COPIES]
    reported = ReportDeps(registry.registry, registry.household_reports, copies, PSEUDO)
    w = generate(households, reports, villages)

    async def route(handler: Any, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        flow, size = Flow(topic, handler, "dlq", batching, boundary=True), settings.sink.batch_size
        for at in range(0, len(records), size):
            batch = [Message(topic, 0, at + i, k, v, 1.0) for i, (k, v) in enumerate(records[at : at + size])]
            await inputs.handle(flow, batch)

    async def hop(handler: Any, topic: str) -> None:
        records = forwarder.sent.pop(topic, [])
        stream = FakeStream([records[at : at + take] for at in range(0, len(records), take)])
        await FaustRunner(agents, FakeGroup(now=None)).run(Flow(topic, handler, "dlq", batching), stream)

    async def timed() -> dict[str, float]:
        steps = [
            ("route_household", households, route(functools.partial(route_household, registry), "households",
                                                  w.households)),
            ("apply_household_change", households, hop(functools.partial(apply_household_change, registry),
                                                       hops[0])),
            ("route_report", reports, route(functools.partial(route_report, reported), "field-reports",
                                            w.reports)),
            ("decide_report", reports, hop(functools.partial(decide_report, reported), hops[1])),
            ("enrich_report", reports, hop(functools.partial(enrich_report, reported), hops[2])),
        ]  # fmt: skip
        out: dict[str, float] = {}
        for name, n, step in steps:
            cpu = time.process_time()
            await step
            out[name] = round((time.process_time() - cpu) / n * 1000, 4)
        out["reports_cpu_s_per_1000"] = round(sum(out[k] for k in ("route_report", "decide_report",
                                                                    "enrich_report")), 4)  # fmt: skip
        return out

    try:
        return asyncio.run(timed())
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--phase", choices=sorted(_WHAT), default="reports")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where to write profile-*.*")
    parser.add_argument("--measure", action="store_true", help="measure CPU per 1,000 instead")
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--villages", type=int, default=10_000)
    parser.add_argument("--spy", type=Path, help="with --measure: py-spy's stacks of the reports phase")
    parser.add_argument("--in-process", action="store_true", help="the engine's CPU, in this process")
    args = parser.parse_args()
    if args.in_process:
        print(json.dumps(in_process(args.households, args.reports, args.villages)))
        return
    if args.measure:
        print(json.dumps(measure(args.households, args.reports, args.villages, args.spy)))
        return
    run = Run("quick")
    settings, env = run.settings("profile", 16700)
    ensure_topics(settings)
    if args.phase == "registry":
        w = generate(1_000_000, 0, 83_762)
        run.produce("households", w.households)
        worker = run.start_worker(env, 16700)
    else:
        w = generate(200_000, 200_000, 10_000)
        # As in the benchmark: the registry is loaded first, then the field reports arrive.
        run.produce("households", w.households)
        worker = run.start_worker(env, 16700)
        while not run.committed_all(settings.app_id, ("households", "households-by-id")):
            time.sleep(0.5)
        run.produce("field-reports", w.reports)
    docs = Path(args.out)
    docs.mkdir(parents=True, exist_ok=True)
    name = "profile-worker" if args.phase == "reports" else "profile-registry"
    raw = docs / f"{name}.collapsed"
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    spy = [py_spy, "record", "--pid", str(worker.pid), "--duration", str(args.seconds),
           "--format", "raw", "--rate", "100", "-o", str(raw)]  # fmt: skip
    subprocess.run(spy, check=True)
    run.stop(worker)
    run.delete_topics()
    (docs / f"{name}.md").write_text(summarize(raw, args.phase))
    print((docs / f"{name}.md").read_text())


if __name__ == "__main__":
    main()

"""Fault suite: an acceptance scenario through a real worker while something real breaks, and the
figures compared exactly with the truth afterwards.

    python -m tests.faults.run                  every scenario (make faults); docs/reliability.md
    python -m tests.faults.run --scenario NAME  one of them

Each scenario runs on its own Kafka nodes (other ports than the shared test broker), its own
topics and its own data directory, so a broker can be killed or its disk filled without touching
anything else. Disks are filled on tmpfs mounts (root is needed to mount them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploy.local.broker import LocalKafka
from streams.settings import Settings
from tests.integration.harness import ROOT, Deployment
from tests.integration.scenario import Scenario, expected_impact_village, generate
from tests.reliability import write_section

FIGURES = (
    "event_id, village_code, reports, households_affected, houses_light, houses_moderate, houses_heavy, "
    "displaced, dead, injured, missing, kpm_households_affected, vulnerable_persons_affected, "
    "unregistered_households_affected"
)
IMPACT_SQL = f"SELECT {FIGURES} FROM dampak.impact_village ORDER BY event_id, village_code"


@dataclass
class Result:
    scenario: str
    #: The name ``--scenario`` takes (set by the runner).
    key: str = ""
    messages: int = 0
    lost: int = -1
    double_counted: int = -1
    recover_s: float = 0.0
    exact: bool = False
    notes: list[str] = field(default_factory=list)
    built: bool = True


# ------------------------------------------------------------------ test bed
class Bed:
    """Kafka nodes of its own (``brokers``) and a deployment on them."""

    def __init__(
        self,
        base_port: int,
        brokers: int = 1,
        kafka_tmpfs_mb: int = 0,
        clickhouse_tmpfs_mb: int = 0,
        lag_window_s: float = 6,
    ):
        self.root = Path(tempfile.mkdtemp(prefix="dampak-fault-"))
        self.mounts: list[Path] = []
        kafka_env = {
            "DAMPAK_DATA_DIR": str(self.root / "kafka-home"),
            "DAMPAK_LOCAL_KAFKA__PORT": str(base_port),
            "DAMPAK_LOCAL_KAFKA__CONTROLLER_PORT": str(base_port + 1),
            "DAMPAK_LOCAL_KAFKA__HEAP": "384m",
            "DAMPAK_LOCAL_KAFKA__BROKERS": str(brokers),
            "DAMPAK_KAFKA__BOOTSTRAP_SERVERS": ",".join(
                f"127.0.0.1:{base_port + 10 * i}" for i in range(brokers)
            ),
        }
        settings = _settings(kafka_env)
        self.kafka = LocalKafka(settings)
        if kafka_tmpfs_mb:
            for node in self.kafka.nodes:
                self.mount(node.storage_dir, kafka_tmpfs_mb)
        self.kafka.up()
        cluster = self.kafka.client_env()
        data = self.root / "data"
        if clickhouse_tmpfs_mb:
            self.mount(data / "clickhouse", clickhouse_tmpfs_mb)
        self.dep = Deployment(
            uuid.uuid4().hex[:10], data, base_port + 90, self.kafka.client_kafka(),
            DAMPAK_LAG__WINDOW_S=str(lag_window_s), DAMPAK_LAG__SAMPLE_INTERVAL_S="1",
            DAMPAK_LOG_LEVEL="info", **cluster,
        )  # fmt: skip
        self.kafka_env = {**os.environ, **kafka_env}

    def mount(self, path: Path, mb: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(path)], check=True)
        self.mounts.append(path)

    def close(self) -> None:
        if self.dep.worker is not None and self.dep.worker.poll() is None:
            self.dep.kill_worker()
        self.kafka.down()
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(path)], check=False)
        if os.environ.get("DAMPAK_FAULTS_KEEP"):
            print(f"kept {self.root}", flush=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def _settings(env: dict[str, str]) -> Settings:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def bed(base_port: int, **kw: Any) -> Iterator[Bed]:
    b = Bed(base_port, **kw)
    try:
        yield b
    except Exception:
        print(f"the worker's log ends:\n{b.dep.log_tail(80)}", flush=True)
        raise
    finally:
        b.close()


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` until writes fail; returns the file to delete."""
    path = directory / "fill.bin"
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError:
            pass
    return path


# ------------------------------------------------------------------ checks
def scenario_messages(seed: int, households: int = 2_000, reports: int = 8_000) -> tuple[Scenario, list[Any]]:
    sc = generate(seed=seed, n_households=households, n_reports=reports)
    return sc, sc.interleaved(random.Random(seed))


def produce_spread(dep: Deployment, messages: list[Any], seconds: float) -> None:
    """Publish ``messages`` evenly over ``seconds`` (so that a fault lands mid-stream)."""
    chunks = 20
    size = max(1, len(messages) // chunks)
    for i in range(0, len(messages), size):
        dep.produce(messages[i : i + size])
        time.sleep(seconds / chunks)


def settle(dep: Deployment, sc: Scenario, result: Result, since: float, timeout_s: float = 300) -> None:
    """Wait for the exact figures; record time to recover, losses and double counts."""
    expected = expected_impact_village(sc)
    deadline = time.monotonic() + timeout_s
    rows: Any = None
    while time.monotonic() < deadline:
        try:
            rows = dep.query(IMPACT_SQL)
        except Exception as exc:  # the worker may still be coming back
            result.notes.append(f"query failed while recovering: {type(exc).__name__}")
            rows = None
        if rows == expected:
            break
        time.sleep(1)
    result.recover_s = round(time.monotonic() - since, 1)
    result.exact = rows == expected
    want = {rid for rid, r in sc.final_reports.items() if not r.get("retracted")}
    current = dep.query("SELECT report_id FROM dampak.field_reports")
    got = [r["report_id"] for r in current]
    result.lost = len(want - set(got))
    result.double_counted = len(got) - len(set(got)) + len(set(got) - want)
    if not result.exact:
        dump_tasks(dep)
        kept = ROOT / ".dampak" / "fault-logs" / f"{uuid.uuid4().hex[:8]}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        if dep.log.exists():
            shutil.copy(dep.log, kept)
        result.notes.append(f"the worker's whole log: {kept}; it ends: {dep.log_tail(120)}")


def dump_tasks(dep: Deployment) -> None:
    """Have a worker that is still running write the stacks of its asyncio tasks to its log
    (mode's SIGUSR1 handler): what it waits on when it should be consuming."""
    if dep.worker is not None and dep.worker.poll() is None:
        dep.worker.send_signal(signal.SIGUSR1)
        time.sleep(3)


def metric(dep: Deployment, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{dep.settings.web.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


# ------------------------------------------------------------------ scenarios
def broker_killed_twice(short: bool = False) -> Result:
    """The broker SIGKILLed twice: back after 3 s, then after 60 s, past the group's session timeout
    (the worker's membership expires and it must rejoin). CI's short run: once, for 20 s."""
    outages = [20.0] if short else [3.0, 60.0]
    result = Result(
        "broker SIGKILLed mid-stream and restarted, twice (down 3 s, then 60 s: past the session timeout)"
        if not short
        else "broker SIGKILLed mid-stream, down 20 s (past the session timeout)"
    )
    with bed(19_700) as b:
        sc, messages = scenario_messages(41)
        result.messages = len(messages)
        b.dep.start_worker()
        step = len(messages) // (len(outages) + 1)
        for kill, down_s in enumerate(outages):
            b.dep.produce(messages[kill * step : (kill + 1) * step])
            time.sleep(1)
            b.kafka.kill_node(1)
            time.sleep(down_s)
            b.kafka.start_node(1)
        since = time.monotonic()
        b.dep.produce(messages[len(outages) * step :])
        settle(b.dep, sc, result, since)
        result.notes.append(
            f"worker alive afterwards: {b.dep.worker is not None and b.dep.worker.poll() is None}"
        )
    return result


def one_of_three_brokers_killed(short: bool = False) -> Result:
    result = Result("three brokers (RF 3, min.insync 2): one SIGKILLed mid-stream, restarted later")
    with bed(19_720, brokers=3) as b:
        sc, messages = scenario_messages(42)
        result.messages = len(messages)
        b.dep.start_worker()
        progress: list[tuple[float, int]] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    n = b.dep.query("SELECT count() AS n FROM dampak.report_state")[0]["n"]
                    progress.append((time.monotonic(), int(n)))
                except Exception:
                    pass
                time.sleep(0.25)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        third = len(messages) // 3
        b.dep.produce(messages[:third])
        killed = time.monotonic()
        b.kafka.kill_node(2)
        b.dep.produce(messages[third : 2 * third])
        election = _leaders_moved(b, away_from=2) - killed
        time.sleep(max(0.0, 10 - (time.monotonic() - killed)))
        b.kafka.start_node(2)
        since = time.monotonic()
        b.dep.produce(messages[2 * third :])
        settle(b.dep, sc, result, since)
        stop.set()
        watcher.join()
        pause = _longest_pause(progress, killed)
        result.notes.append(
            f"longest stop in progress after the kill: {pause:.1f} s; leaders moved off the killed "
            f"broker after {election:.1f} s"
        )
        if pause > election + 3:
            result.notes.append("EXPECTED no pause longer than the leader election")
            result.exact = False
    return result


def _leaders_moved(b: Bed, away_from: int, timeout_s: float = 60) -> float:
    """When no partition of the deployment's topics is led by broker ``away_from`` any more."""
    from kafka import KafkaAdminClient

    k = b.dep.settings.kafka
    admin = KafkaAdminClient(bootstrap_servers=k.bootstrap_servers, **k.client_options())
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            topics = [t for t in admin.list_topics() if t.startswith(b.dep.settings.kafka.topic_prefix)]
            leaders = [p.get("leader_id", p.get("leader", -1)) for t in admin.describe_topics(topics)
                       for p in t["partitions"]]  # fmt: skip
            if leaders and away_from not in leaders and -1 not in leaders:
                return time.monotonic()
            time.sleep(0.2)
        return time.monotonic()
    finally:
        admin.close()


def _longest_pause(progress: list[tuple[float, int]], after: float) -> float:
    longest, last_t, last_n = 0.0, after, -1
    for t, n in progress:
        if t < after:
            last_n = n
            continue
        if n != last_n:
            longest = max(longest, t - last_t)
            last_t, last_n = t, n
    return longest


def worker_killed_three_times(short: bool = False) -> Result:
    result = Result("worker SIGKILLed 3 times mid-stream")
    with bed(19_740) as b:
        sc, messages = scenario_messages(43)
        result.messages = len(messages)
        b.dep.start_worker()
        step = len(messages) // 4
        for i in range(3):
            b.dep.produce(messages[i * step : (i + 1) * step])
            time.sleep(1.5)
            b.dep.kill_worker()
            b.dep.start_worker()
        since = time.monotonic()
        b.dep.produce(messages[3 * step :])
        settle(b.dep, sc, result, since)
    return result


def clickhouse_disk_full(short: bool = False) -> Result:
    hold = 15 if short else 60
    result = Result(f"ClickHouse writes failing for {hold} s (its disk full, then freed)")
    with bed(19_760, clickhouse_tmpfs_mb=400) as b:
        sc, messages = scenario_messages(44)
        result.messages = len(messages)
        b.dep.start_worker()
        b.dep.produce(messages[: len(messages) // 3])
        b.dep.wait_for("SELECT count() > 0 AS some FROM dampak.report_state", [{"some": 1}], 60)
        retries_before = metric(b.dep, "dampak_sink_retries_total")
        filler = fill(b.dep.settings.data_dir / "clickhouse")
        b.dep.produce(messages[len(messages) // 3 :])
        statuses = set()
        lags = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < hold:
            status, lag = b.dep.lag()
            statuses.add(status)
            lags.append(lag)
            time.sleep(2)
        retries = metric(b.dep, "dampak_sink_retries_total") - retries_before
        filler.unlink()
        since = time.monotonic()
        settle(b.dep, sc, result, since)
        result.notes.append(
            f"while full: group status {sorted(statuses)}, lag {min(lags)}..{max(lags)}, "
            f"{retries:.0f} write retries"
        )
        if "ERR" not in statuses or retries <= 0:
            result.notes.append("EXPECTED a STALL (group ERR) and retries while ClickHouse was full")
            result.exact = False
    return result


def kafka_disk_full(short: bool = False) -> Result:
    result = Result("Kafka's log directory full, then freed (the broker restarted)")
    with bed(19_780, kafka_tmpfs_mb=256) as b:
        sc, messages = scenario_messages(45)
        result.messages = len(messages)
        b.dep.start_worker()
        b.dep.produce(messages[: len(messages) // 2])
        filler = fill(b.kafka.nodes[0].storage_dir)
        time.sleep(15)
        alive = b.kafka._running_pid(b.kafka.nodes[0]) is not None
        filler.unlink()
        if alive:
            b.kafka.kill_node(1)
        b.kafka.start_node(1)
        since = time.monotonic()
        b.dep.produce(messages[len(messages) // 2 :])
        settle(b.dep, sc, result, since)
        result.notes.append(f"broker {'kept running' if alive else 'stopped'} while its disk was full")
    return result


def slow_consumer(short: bool = False) -> Result:
    result = Result("a slow consumer: a burst larger than the worker's pace (lag WARN, then OK)")
    with bed(19_800) as b:
        # About 8,000 messages/s for 10 s: faster than one worker's pace (about 5,000/s here).
        sc, messages = scenario_messages(46, households=3_000, reports=80_000)
        result.messages = len(messages)
        b.dep.start_worker()
        b.dep.produce(messages[:3_000])
        b.dep.wait_for("SELECT count() > 0 AS some FROM dampak.report_state", [{"some": 1}], 60)
        statuses: list[str] = []
        feeder = threading.Thread(target=produce_spread, args=(b.dep, messages[3_000:], 10.0))
        feeder.start()
        while feeder.is_alive():
            statuses.append(b.dep.lag()[0])
            time.sleep(1)
        since = time.monotonic()
        settle(b.dep, sc, result, since)
        for _ in range(60):
            status, lag = b.dep.lag()
            statuses.append(status)
            if status == "OK" and lag == 0:
                break
            time.sleep(1)
        result.notes.append("group status over time: " + " ".join(_runs(statuses)))
        if "WARN" not in statuses or statuses[-1] != "OK":
            result.notes.append("EXPECTED WARN while the burst arrived, then OK")
            result.exact = False
    return result


def _runs(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if not out or not out[-1].startswith(item):
            out.append(item)
    return out


def rebalance(short: bool = False) -> Result:
    result = Result("rebalance: a second compute worker joins mid-stream and leaves (beside the writer)")
    with bed(19_820) as b:
        sc, messages = scenario_messages(47)
        result.messages = len(messages)
        writer = b.dep
        compute = {**b.kafka.client_env(), "DAMPAK_ROLE": "compute",
                   "DAMPAK_WRITER_URL": f"http://127.0.0.1:{writer.settings.web.port}"}  # fmt: skip
        kafka = b.kafka.client_kafka()
        first = Deployment(writer.name, b.root / "a", writer.settings.web.port + 1, kafka, **compute)
        second = Deployment(writer.name, b.root / "b", writer.settings.web.port + 2, kafka, **compute)
        try:
            writer.start_worker("writer")
            first.start_worker()
            third = len(messages) // 3
            first.produce(messages[:third])
            second.start_worker()
            first.produce(messages[third : 2 * third])
            time.sleep(5)
            second.stop_worker()
            since = time.monotonic()
            first.produce(messages[2 * third :])
            settle(writer, sc, result, since)
        finally:
            for dep in (second, first):
                if dep.worker is not None and dep.worker.poll() is None:
                    dep.kill_worker()
    return result


SCENARIOS: dict[str, Callable[[bool], Result]] = {
    "broker-killed-twice": broker_killed_twice,
    "one-of-three-brokers-killed": one_of_three_brokers_killed,
    "worker-killed-three-times": worker_killed_three_times,
    "clickhouse-disk-full": clickhouse_disk_full,
    "kafka-disk-full": kafka_disk_full,
    "rebalance": rebalance,
    "slow-consumer": slow_consumer,
}


def _row(r: Result) -> str:
    if not r.built:
        return f"| {r.scenario} | n/a | n/a | n/a | n/a | not built: {'; '.join(r.notes)} |"
    seen = "; ".join(["exact" if r.exact else "NOT EXACT", *r.notes])
    return (
        f"| {r.scenario} | {r.messages:,} | {r.lost} | {r.double_counted} | {r.recover_s} s | "
        f"{seen}; `python -m tests.faults.run --scenario {r.key}` |"
    )


def write_reliability(results: list[Result], path: Path) -> None:
    """Write the fault section of docs/reliability.md: a row per scenario in ``SCENARIOS`` order,
    ``results`` replacing the rows of their scenarios and the others kept as they were."""
    text = path.read_text() if path.exists() else ""
    rows = {
        m.group(1): line
        for line in text.splitlines()
        if line.startswith("| ") and (m := re.search(r"--scenario ([\w-]+)`", line))
    }
    rows.update({r.key: _row(r) for r in results})
    write_section(path, "faults", [
        "## Faults: an acceptance scenario while something real breaks",
        "",
        f"Command: `make faults` (last run {time.strftime('%Y-%m-%d')}; a row is replaced when its "
        "scenario is run again with `--scenario NAME --docs`). Time to recover: from the end of the "
        "fault to the exact figures.",
        "",
        "| scenario | messages | lost | double-counted | time to recover | result, and what was seen |",
        "|---|---:|---:|---:|---:|---|",
        *[rows[name] for name in SCENARIOS if name in rows],
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--docs", action="store_true", help="with --scenario: update its rows")
    args = parser.parse_args()
    names = args.scenario or list(SCENARIOS)
    results = []
    for name in names:
        started = time.monotonic()
        try:
            result = SCENARIOS[name](False)
        except Exception as exc:  # the test bed itself failed: recorded, and the run goes on
            result = Result(name, notes=[f"the scenario failed to run: {type(exc).__name__}: {exc}"[:500]])
        result.key = name
        print(json.dumps({**asdict(result), "seconds": round(time.monotonic() - started)}), flush=True)
        results.append(result)
    if not args.no_docs and (args.docs or not args.scenario):
        write_reliability(results, ROOT / "docs" / "reliability.md")
    bad = [r for r in results if r.built and not (r.exact and r.lost == 0 and r.double_counted == 0)]
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()

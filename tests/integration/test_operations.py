"""Operations on the real broker and chDB: lag per partition and status, metrics, readiness."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner import murmur2
from prometheus_client.parser import text_string_to_metric_families

from streams.engine.bundle import partition_of
from streams.topics import inputs_group
from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

METRICS = [
    "dampak_consumergroup_lag",
    "dampak_consumergroup_lag_seconds",
    "dampak_consumergroup_status",
    "dampak_events",
    "dampak_sink_rows",
    "dampak_sink_batch_seconds",
    "dampak_sink_retries",
    "dampak_end_to_end_seconds",
    "dampak_table_recovery_seconds",
]


def _partition(key: str, partitions: int = 6) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def _keys_for(partition: int, count: int, prefix: str) -> list[str]:
    keys, i = [], 0
    while len(keys) < count:
        if _partition(f"{prefix}{i}") == partition:
            keys.append(f"{prefix}{i}")
        i += 1
    return keys


def _report(report_id: str) -> tuple[str, bytes, bytes]:
    doc = {
        "report_id": report_id,
        "reported_at": "2022-11-21T09:00:00Z",
        "village_code": "32.03.01.2001",
        "dead": 1,
    }
    return ("field-reports", report_id.encode(), json.dumps(doc).encode())


def _lag(dep: Deployment, inputs: bool = True) -> dict[str, Any]:
    """The lag of the group that reads the input topics, or (``inputs=False``) the app's own."""
    group = inputs_group(dep.settings.app_id) if inputs else dep.settings.app_id
    out = dep.dampak("lag", "--json", "--group", group)
    [group] = json.loads(out.stdout)
    return group


def _field_reports(
    group: dict[str, Any], dep: Deployment, logical: str = "field-reports"
) -> dict[int, dict[str, Any]]:
    topic = dep.topic(logical)
    return {p["partition"]: p for p in group["partitions"] if p["topic"] == topic}


def test_lag_counts_statuses_and_recovery(deployment: Deployment) -> None:
    dep = deployment
    dep.env["DAMPAK_LAG__WINDOW_S"] = "4"  # a short window, so a stuck partition shows within seconds
    dep.start_worker()
    dep.produce([_report("warmup")])
    dep.wait_for("SELECT count() AS n FROM dampak.field_reports", [{"n": 1}], 60)
    assert dep.stop_worker() == 0

    produced = {0: 7, 2: 3, 5: 11}
    for partition, n in produced.items():
        dep.produce(_report(k) for k in _keys_for(partition, n, f"lag{partition}-"))
    group = _lag(dep)
    parts = _field_reports(group, dep)
    assert {p: parts[p]["lag"] for p in range(6)} == {p: produced.get(p, 0) for p in range(6)}
    for p in produced:
        assert parts[p]["status"] in ("WARN", "STALL"), parts[p]
        assert parts[p]["lag_seconds"] > 0
    assert group["status"] in ("WARN", "ERR")

    dep.start_worker()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        group = _lag(dep)
        if group["status"] == "OK" and all(p["lag"] == 0 for p in _field_reports(group, dep).values()):
            break
        time.sleep(1)
    assert group["status"] == "OK", [p for p in group["partitions"] if p["status"] != "OK"]
    assert all(p["lag"] == 0 and p["status"] == "OK" for p in _field_reports(group, dep).values())

    # A sink write that keeps failing holds its partition: STALL. The failure is ClickHouse's own:
    # the table the rows go to is gone (as after a mistaken schema change made by hand). Reports
    # are written where their copy is decided, on field-reports-by-id (partitioned by dampak).
    assert dep.stop_worker() == 0
    dep.ddl("RENAME TABLE dampak.report_state TO dampak.report_state_away")
    dep.start_worker()
    stuck = _keys_for(4, 5, "stuck-")
    dep.produce(_report(k) for k in stuck)
    time.sleep(4)
    _lag(dep, inputs=False)
    time.sleep(5)  # a whole window (4 s) without a commit, with the worker there: STALL
    parts = _field_reports(_lag(dep, inputs=False), dep, "field-reports-by-id")
    held = {partition_of(k.encode(), 6) for k in stuck}
    assert sum(parts[p]["lag"] for p in held) >= 1, parts
    assert all(parts[p]["status"] == "STALL" for p in held), parts
    assert all(parts[p]["status"] == "OK" for p in set(range(6)) - held), parts
    assert _metrics(dep)["dampak_sink_retries_total"] > 0
    assert dep.stop_worker() == 0
    dep.ddl("RENAME TABLE dampak.report_state_away TO dampak.report_state")
    dep.start_worker()
    dep.wait_for("SELECT countIf(report_id LIKE 'stuck-%') AS n FROM dampak.field_reports", [{"n": 5}], 60)
    assert dep.stop_worker() == 0


def _metrics(dep: Deployment) -> dict[str, float]:
    url = f"http://127.0.0.1:{dep.settings.web.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
        values.setdefault(family.name, 0.0)
    return values


def test_metrics_and_readiness_during_recovery(deployment: Deployment) -> None:
    dep = deployment
    dep.env["DAMPAK_LAG__SAMPLE_INTERVAL_S"] = "1"
    dep.start_worker()
    households = [
        {"household_id": f"RH-{i}", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}
        for i in range(30_000)
    ]
    dep.produce(("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households)
    dep.produce([_report("m-1"), ("field-reports", b"bad", b"{oops")])
    dep.wait_for("SELECT households AS n FROM dampak.village_stats", [{"n": 30_000}], 120)
    time.sleep(3)
    metrics = _metrics(dep)
    missing = [m for m in METRICS if m not in metrics]
    assert not missing, missing
    assert metrics["dampak_sink_rows_total"] >= 30_001
    assert metrics["dampak_events_total"] >= 30_002
    assert metrics["dampak_end_to_end_seconds_count"] >= 30_000
    assert dep.stop_worker() == 0

    # Lose the local table state: the restarted worker restores it from the changelog first.
    shutil.rmtree(Path(dep.settings.data_dir) / "faust")
    dep.worker = None
    dep.env["DAMPAK_LOG_LEVEL"] = "info"
    seen: list[bool] = []
    from subprocess import STDOUT

    with open(dep.log, "ab") as log:
        dep.worker = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"], env=dep.env, stdout=log, stderr=STDOUT, cwd=ROOT
        )
    url = f"http://127.0.0.1:{dep.settings.web.port}/readyz"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                seen.append(json.loads(resp.read())["ready"])
                break
        except urllib.error.HTTPError as err:
            body = json.loads(err.read())
            assert err.code == 503 and not body["ready"]
            seen.append(False)
        except OSError:
            pass
        time.sleep(0.05)
    assert seen and seen[-1] is True
    assert False in seen, "readyz never reported not-ready while recovering"
    # The recovery timer samples readiness every 0.1 s: give it a moment after /readyz said ready.
    deadline = time.monotonic() + 5
    while _metrics(dep)["dampak_table_recovery_seconds"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metrics(dep)["dampak_table_recovery_seconds"] > 0
    restored = re.search(r"restored (\d+) changelog records", dep.log.read_text())
    assert restored and int(restored.group(1)) >= 30_000, "no bulk restore of the registry"
    # The restored registry enriches a household-level report of a household loaded before.
    doc = {"report_id": "after-restore", "reported_at": "2022-11-21T09:00:00Z",
           "village_code": "32.03.01.2001", "household_id": "RH-7", "houses_heavy": 1}  # fmt: skip
    dep.produce([("field-reports", b"after-restore", json.dumps(doc).encode())])
    dep.wait_for(
        "SELECT toUInt8(registered) AS registered FROM dampak.field_reports"
        " WHERE report_id = 'after-restore'",
        [{"registered": 1}],
        60,
    )
    assert dep.stop_worker() == 0


def test_an_upgraded_worker_starts_its_input_group_where_the_app_group_left_the_inputs(
    deployment: Deployment,
) -> None:
    """Input topics were committed in the app's own group before they had a group of their own:
    the first worker of the new version carries those offsets over, once."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from streams.ops.admin import carry_over_input_offsets, ensure_topics

    dep = deployment
    ensure_topics(dep.settings)
    dep.produce(_report(k) for k in _keys_for(1, 5, "old-"))
    tp = TopicPartition(dep.topic("field-reports"), 1)
    old = KafkaConsumer(bootstrap_servers=dep.settings.kafka.bootstrap_servers, group_id=dep.settings.app_id)
    old.assign([tp])
    old.commit({tp: OffsetAndMetadata(3, "", -1)})  # as the previous version's Faust group had
    old.close()
    assert carry_over_input_offsets(dep.settings) == {tp: 3}
    assert carry_over_input_offsets(dep.settings) == {}  # the new group has offsets of its own now
    parts = _field_reports(_lag(dep), dep)
    assert (parts[1]["committed"], parts[1]["lag"]) == (3, 2)

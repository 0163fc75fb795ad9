"""The CLI as a new user meets it: up/down/status of a real broker, query with and without a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _dampak(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args], env=env, capture_output=True, text=True, cwd=ROOT
    )


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned broker may linger unreaped under some inits)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_up_is_idempotent_and_down_leaves_no_process(kafka_bootstrap: str, tmp_path: Path) -> None:
    # A second broker of our own, on other ports, so the shared test broker is not disturbed.
    env = {
        **os.environ,
        "DAMPAK_DATA_DIR": str(tmp_path),
        "DAMPAK_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:19292",
        "DAMPAK_LOCAL_KAFKA__PORT": "19292",
        "DAMPAK_LOCAL_KAFKA__CONTROLLER_PORT": "19293",
        "DAMPAK_LOCAL_KAFKA__HEAP": "256m",
    }
    try:
        first = _dampak(env, "up")
        assert first.returncode == 0, first.stderr
        assert "started" in first.stdout
        second = _dampak(env, "up")
        assert second.returncode == 0 and "reused" in second.stdout
        status = _dampak(env, "status")
        assert status.returncode == 0
        pid = json.loads(status.stdout)["kafka"]["pid"]
        assert isinstance(pid, int) and _running(pid)
        assert (tmp_path / "kafka" / "logs" / "server.log").stat().st_size > 0
    finally:
        down = _dampak(env, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not _running(pid)
    assert _dampak(env, "status").returncode == 1


def test_external_cluster_starts_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "DAMPAK_DATA_DIR": str(tmp_path), "DAMPAK_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    out = _dampak(env, "up")
    assert "nothing started locally" in out.stdout
    # Nothing answers there: a one-line error at once, not a client's traceback after its timeout.
    assert out.returncode == 2 and "no Kafka broker answers at 127.0.0.1:1" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "kafka").exists()


def test_query_works_with_and_without_a_running_worker(deployment: Deployment) -> None:
    direct = deployment.dampak("query", "SELECT 1 AS one", "--format", "json")
    assert json.loads(direct.stdout) == {"one": 1}
    deployment.start_worker()
    via_worker = deployment.dampak("query", "SELECT 1 AS one", "--format", "json")
    assert json.loads(via_worker.stdout) == {"one": 1}
    rejected = deployment.dampak("query", "DROP TABLE dampak.regions", check=False)
    assert rejected.returncode == 2 and "read-only" in rejected.stderr
    tsv = deployment.dampak(
        "query", "SELECT count() AS n FROM dampak.regions WHERE level = 'province'", "--format", "tsv"
    )
    assert tsv.stdout.splitlines() == ["n", "38"]
    assert deployment.stop_worker() == 0


@pytest.mark.fresh_store
def test_init_db_twice_is_a_no_op(deployment: Deployment) -> None:
    from sinks.migrations import MIGRATIONS

    versions = [m.version for m in MIGRATIONS]
    first = deployment.dampak("init-db")
    assert f"migrations applied: {versions}" in first.stdout
    second = deployment.dampak("init-db")
    assert "up to date" in second.stdout
    rows = deployment.query(
        "SELECT version, count() AS n FROM dampak.schema_migrations GROUP BY version ORDER BY version"
    )
    # Version 0 records the checksum of the views; the second run re-created nothing.
    assert rows == [{"version": v, "n": 1} for v in [0, *versions]]


def test_a_field_report_travels_from_produce_to_clickhouse(deployment: Deployment) -> None:
    deployment.start_worker()
    fixtures = ROOT / "tests" / "fixtures"
    # Logical topic names: the deployment's topic prefix is added; each line is keyed by its id.
    out = deployment.dampak("produce", "households", str(fixtures / "households.jsonl"))
    assert f"to {deployment.topic('households')} (keyed by household_id)" in out.stdout
    deployment.dampak("produce", "field-reports", str(fixtures / "field-reports.jsonl"))
    rows = deployment.wait_for(
        "SELECT report_id, revision, displaced, registered, kpm FROM dampak.field_reports ORDER BY report_id",
        [
            {"report_id": "TAGANA-CJR-0001", "revision": 2, "displaced": 5, "registered": True, "kpm": True},
            {"report_id": "TKSK-CJR-0100", "revision": 1, "displaced": 85, "registered": False, "kpm": False},
        ],
        timeout_s=60,
    )
    assert len(rows) == 2 and rows[0]["displaced"] == 5
    # Both reports belong to the Cianjur event: one names it, the other is attached by regency.
    assert deployment.query("SELECT DISTINCT event_id FROM dampak.field_reports") == [
        {"event_id": "bmkg-20221121062110"}
    ]
    deployment.dampak("produce", deployment.topic("households"), "-", "--tombstone", "DEMO-0001", stdin="")
    deployment.wait_for(
        "SELECT registered FROM dampak.field_reports WHERE report_id = 'TAGANA-CJR-0001'",
        [{"registered": False}],
        60,
    )
    assert deployment.query(
        "SELECT registered FROM dampak.field_reports WHERE report_id = 'TAGANA-CJR-0001'"
    ) == [{"registered": False}]


def test_a_topic_with_another_partition_count_stops_the_worker(deployment: Deployment) -> None:
    """Keys would meet their state on another partition: the worker names the topic and exits."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=deployment.settings.kafka.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(deployment.topic("households-by-id"), 3, 1)])
    finally:
        admin.close()
    proc = deployment.dampak("worker", check=False)
    assert proc.returncode == 2
    assert f"{deployment.topic('households-by-id')} has 3, not 6" in proc.stderr

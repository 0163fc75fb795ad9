"""The field-report flow over SASL_SSL (SCRAM-SHA-512) on a local broker that ``dampak up
--secure`` starts with its own CA; every client connects through settings alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import _ports
from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PORT = 19_592


def _dampak(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args], env=env, input=stdin, capture_output=True, text=True,
        cwd=ROOT, timeout=240,
    )  # fmt: skip


@pytest.fixture(scope="module")
def secure_env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("secure")
    env = {
        **os.environ,
        "DAMPAK_DATA_DIR": str(data),
        "DAMPAK_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{PORT}",
        "DAMPAK_LOCAL_KAFKA__PORT": str(PORT),
        "DAMPAK_LOCAL_KAFKA__CONTROLLER_PORT": str(PORT + 1),
        "DAMPAK_LOCAL_KAFKA__HEAP": "256m",
    }
    up = _dampak(env, "up", "--secure")
    assert up.returncode == 0, up.stderr
    assert "SASL_SSL (SCRAM-SHA-512)" in up.stdout
    lines = (data / "kafka" / "client.env").read_text().splitlines()
    secure = dict(line.split("=", 1) for line in lines)
    assert secure["DAMPAK_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    yield {**env, **secure}
    _dampak(env, "down")


def test_the_field_report_flow_runs_over_sasl_ssl(secure_env: dict[str, str], tmp_path: Path) -> None:
    dep = Deployment("sasl" + str(os.getpid()), tmp_path / "d", next(_ports))
    dep.env = {**dep.env, **{k: v for k, v in secure_env.items() if k.startswith("DAMPAK_KAFKA__")}}
    dep.env["DAMPAK_DATA_DIR"] = str(tmp_path / "d")
    dep.start_worker()  # the worker's consumer, producer, tables and bulk restore, over SASL_SSL
    fixtures = ROOT / "tests" / "fixtures"
    for topic, key in (("households", "household_id"), ("field-reports", "report_id")):
        out = dep.dampak("produce", dep.topic(topic), str(fixtures / f"{topic}.jsonl"), "--key", key)
        assert "published" in out.stdout
    dep.wait_for(
        "SELECT report_id, registered FROM dampak.field_reports ORDER BY report_id",
        [
            {"report_id": "TAGANA-CJR-0001", "registered": True},
            {"report_id": "TKSK-CJR-0100", "registered": False},
        ],
        90,
    )
    lag = dep.dampak("lag", "--json", "--group", dep.settings.app_id)
    assert json.loads(lag.stdout)[0]["group"] == dep.settings.app_id
    # The same worker's tables come back through the bulk restore over SASL_SSL.
    assert dep.stop_worker() == 0
    dep.env["DAMPAK_LOG_LEVEL"] = "info"
    import shutil

    shutil.rmtree(Path(dep.env["DAMPAK_DATA_DIR"]) / "faust")
    dep.worker = None
    dep.start_worker()
    assert "restored" in dep.log.read_text()
    assert dep.stop_worker() == 0


def test_a_wrong_password_fails_fast_and_clearly(secure_env: dict[str, str]) -> None:
    for command in (("lag",), ("worker",)):
        env = {**secure_env, "DAMPAK_KAFKA__SASL_PASSWORD": "not-the-password", "DAMPAK_DEV_MODE": "true"}
        started = time.monotonic()
        out = _dampak(env, *command)
        assert out.returncode == 2, out.stderr[-2000:]
        assert "refused the credentials of user 'dampak'" in out.stderr
        assert time.monotonic() - started < 20
    env = {**secure_env, "DAMPAK_KAFKA__SSL_CAFILE": "/etc/ssl/certs/ca-certificates.crt"}
    out = _dampak(env, "lag")
    assert out.returncode == 2 and "check DAMPAK_KAFKA__SSL_CAFILE" in out.stderr

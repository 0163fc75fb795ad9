"""Start-up under a fault, through a real worker: the embedded ClickHouse's disk full when the
worker starts (it waits for space, one line per retry), and local tables that remember changelog
offsets the broker no longer has (one line naming the command that fixes them; the demo rebuilds
its own). The disk is filled on a tmpfs mount, as in the fault suite (root)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.demo import start_worker
from streams.runtime.restore import STALE_STATE_EXIT
from tests.conftest import require
from tests.faults.run import fill
from tests.integration.harness import Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

_RETRY = re.compile(r"ClickHouse cannot take the worker's start-up yet \(.*NOT_ENOUGH_SPACE.*retrying in")


def _household(i: int) -> tuple[str, bytes, bytes]:
    body = {"household_id": f"H{i}", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z",
            "members": 3}  # fmt: skip
    return ("households", f"H{i}".encode(), json.dumps(body).encode())


@pytest.fixture
def small_disk(deployment: Deployment) -> Iterator[Path]:
    """The deployment's ClickHouse directory on a 64 MB tmpfs of its own."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    path = deployment.settings.data_dir / "clickhouse"
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        if deployment.worker is not None and deployment.worker.poll() is None:
            deployment.kill_worker()
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_worker_started_on_a_full_disk_waits_for_space_then_runs(
    deployment: Deployment, small_disk: Path
) -> None:
    deployment.dampak("init-db")  # the tables exist; the worker's first insert records its key
    filler = fill(small_disk)
    deployment.start_worker(wait=False)
    assert deployment.worker is not None
    deadline = time.monotonic() + 60
    retries: list[str] = []
    while time.monotonic() < deadline and len(retries) < 3 and deployment.worker.poll() is None:
        time.sleep(1)
        retries = [line for line in deployment.log_tail(400).splitlines() if _RETRY.search(line)]
    log = deployment.log_tail(400)
    assert deployment.worker.poll() is None, f"the worker exited on a full disk:\n{log}"
    assert len(retries) >= 3, log
    assert "Traceback" not in log, log
    filler.unlink()
    deployment.wait_ready(120)
    deployment.produce([_household(1)])
    deployment.wait_for("SELECT count() AS n FROM dampak.registry_state", [{"n": 1}], 120)
    assert deployment.query("SELECT key_id FROM dampak.privacy_keys") == [{"key_id": "k1"}]
    assert deployment.stop_worker() == 0


def _stale_tables(deployment: Deployment) -> None:
    """A worker's tables hold what it applied; then the broker forgets every topic of the
    deployment (its data reset), and ensure_topics will create them anew, empty."""
    deployment.start_worker()
    deployment.produce([_household(i) for i in range(50)])
    deployment.wait_for("SELECT count() AS n FROM dampak.registry_state", [{"n": 50}], 120)
    assert deployment.stop_worker() == 0
    deployment.delete_topics()
    time.sleep(3)  # topic deletion completes asynchronously on the broker


def test_local_tables_ahead_of_their_changelogs_are_named_in_one_line_with_the_fix(
    deployment: Deployment,
) -> None:
    _stale_tables(deployment)
    deployment.start_worker(wait=False)
    assert deployment.worker is not None
    code = deployment.worker.wait(timeout=180)
    log = deployment.log_tail(200)
    assert code == STALE_STATE_EXIT, log
    assert "Traceback" not in log and "ConsistencyError" not in log, log
    [line] = [line for line in log.splitlines() if "remember changelog offsets" in line]
    assert "registry-changelog" in line or "household_reports-changelog" in line, line
    # The line's command fixes it: run it as a user would, and the worker starts and runs.
    command = re.search(r"Run `([^`]+)`", line)
    assert command is not None, line
    subprocess.run(shlex.split(command.group(1)), check=True)
    deployment.start_worker()
    deployment.produce([_household(100)])
    deployment.wait_for("SELECT count() AS n FROM dampak.registry_state", [{"n": 51}], 120)
    assert deployment.stop_worker() == 0


def test_the_demo_rebuilds_its_own_tables_when_they_disagree_with_the_broker(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    _stale_tables(deployment)
    worker = start_worker(deployment.settings, deployment.log, deployment.env)
    deployment.worker = worker
    out = capsys.readouterr().out
    assert "rebuilding" in out and out.count("worker started") == 2, out
    deployment.produce([_household(100)])
    deployment.wait_for("SELECT count() AS n FROM dampak.registry_state", [{"n": 51}], 120)
    assert deployment.stop_worker() == 0

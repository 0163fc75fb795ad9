"""Fixtures for integration tests: the real local Kafka broker and the embedded ClickHouse engine."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.ops.admin import broker_answers
from streams.settings import Settings
from tests.conftest import require
from tests.integration.harness import ROOT, Deployment

_ports = itertools.count(16100 + (os.getpid() % 500) * 4)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    servers = Settings().kafka.bootstrap_servers
    require(
        broker_answers(servers), f"no Kafka broker answers at {servers}; run `dampak up` (or `make test`)"
    )
    return servers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, for fixtures to see how it went."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def clickhouse_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded ClickHouse store made once per run by ``dampak init-db`` (every migration, the
    views, region names and village positions): each deployment starts from a copy, so that its
    worker's start-up checks the schema instead of building it (7-10 s a worker on 2 cores)."""
    data = tmp_path_factory.mktemp("clickhouse-template")
    env = {**os.environ, "DAMPAK_DATA_DIR": str(data), "DAMPAK_DEV_MODE": "true"}
    subprocess.run(
        [sys.executable, "-m", "streams", "init-db"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return data / "clickhouse"


@pytest.fixture
def deployment(
    kafka_bootstrap: str, clickhouse_template: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    dep = Deployment(uuid.uuid4().hex[:10], tmp_path / "data", next(_ports))
    if request.node.get_closest_marker("fresh_store") is None:
        # The store's symbolic links are relative (metadata/ and data/ into store/): a copy stands
        # alone.
        shutil.copytree(clickhouse_template, tmp_path / "data" / "clickhouse", symlinks=True)
    yield dep
    if dep.worker is not None and dep.worker.poll() is None:
        dep.kill_worker()
    # A passed test's topics go: each leaves about 17 on the broker, and every client then reads
    # the metadata of thousands. A failed test's stay, with its data directory, for diagnosis.
    report = getattr(request.node, "report_call", None)
    if report is not None and report.passed:
        dep.delete_topics()

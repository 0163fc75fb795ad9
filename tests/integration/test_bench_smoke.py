"""The benchmark harness in quick mode: every system runs and dampak's totals are exact (not speed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.harness import ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_quick_benchmark_reaches_exact_totals(kafka_bootstrap: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--mode", "quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "quick benchmark: totals exact" in proc.stdout
    assert "| 3. dampak end-to-end (1 worker" in proc.stdout

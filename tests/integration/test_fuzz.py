"""The integration fuzz in CI: 10,000 hostile messages among an acceptance scenario (``make fuzz``
runs a larger one and records it in docs/reliability.md)."""

from __future__ import annotations

import pytest

from tests.integration.fuzz import run_fuzz
from tests.integration.harness import Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_hostile_messages_among_a_scenario_change_no_figure(deployment: Deployment) -> None:
    result = run_fuzz(deployment, n_bad=10_000, n_households=3_000, n_reports=12_000)
    assert result["impact_exact"], result
    assert result["dead_lettered"] == 10_000 and result["dead_letters_without_reason"] == 0, result
    assert result["lost"] == 0 and result["double_counted"] == 0, result
    assert result["lag_after"] == 0 and not result["worker_restarted"], result
    assert deployment.stop_worker() == 0

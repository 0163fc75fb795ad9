"""The integration fuzz in CI: 10,000 hostile messages among an acceptance scenario, and one round
of the structural attacks (``make fuzz`` runs larger ones and records them in docs/reliability.md)."""

from __future__ import annotations

import pytest

from tests.integration.fuzz import run_fuzz
from tests.integration.harness import Deployment
from tests.integration.structural import RSS_LIMIT_MB, run_structural

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_hostile_messages_among_a_scenario_change_no_figure(deployment: Deployment) -> None:
    result = run_fuzz(deployment, n_bad=10_000, n_households=3_000, n_reports=12_000)
    assert result["impact_exact"], result
    assert result["dead_lettered"] == 10_000 and result["dead_letters_without_reason"] == 0, result
    assert result["lost"] == 0 and result["double_counted"] == 0, result
    assert result["lag_after"] == 0 and not result["worker_restarted"], result
    assert deployment.stop_worker() == 0


def test_structural_attacks_on_every_input_topic_lose_nothing(deployment: Deployment) -> None:
    """Depth, sizes, counts, encodings, numbers and Kafka timestamps (tests/integration/structural.py),
    each followed on its partition by a valid message, through one worker."""
    deployment.start_worker()
    result = run_structural(deployment, rounds=1, timeout_s=90)
    failed = [f"FAILED {name}: {why}" for name, why in sorted(result.failures.items())]
    details = "\n".join([f"{k}: {v}" for k, v in vars(result).items() if k != "failures"] + failed)
    assert not result.failures, details
    assert result.lost == 0 and result.valid_landed == result.valid, details
    assert result.dead_lettered + result.refused == result.hostile, details
    assert result.restarts == 0 and 0 < result.peak_rss_mb <= RSS_LIMIT_MB, details
    assert deployment.stop_worker() == 0

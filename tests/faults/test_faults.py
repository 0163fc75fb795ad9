"""The short subset of the fault suite that CI runs: the broker SIGKILLed for 20 s (past the
group's session timeout). ``make faults`` runs every scenario (ClickHouse's disk full among them),
longer, and records them in docs/reliability.md; CI keeps one, to stay under 20 minutes (the
writer's retry on a refused write is unit-tested: ``tests/unit/sinks/test_sinks.py``)."""

from __future__ import annotations

import pytest

from tests.faults.run import broker_killed_twice

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.mark.parametrize("scenario", [broker_killed_twice])
def test_figures_stay_exact_through_a_fault(kafka_bootstrap: str, scenario: object) -> None:
    result = scenario(True)  # type: ignore[operator]
    # Spelled out in full: pytest would cut the object's repr, and with it the worker's log.
    details = "\n".join([f"{k}: {v}" for k, v in vars(result).items() if k != "notes"] + result.notes)
    assert result.exact and result.lost == 0 and result.double_counted == 0, details

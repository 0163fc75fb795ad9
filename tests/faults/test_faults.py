"""The short subset of the fault suite that CI runs: ClickHouse refusing writes for 15 s.
``make faults`` runs every scenario, longer, and records them in docs/reliability.md. The broker
scenarios stay out of CI while a worker can stop consuming after a broker outage (see
docs/reliability.md, "Known faults")."""

from __future__ import annotations

import pytest

from tests.faults.run import clickhouse_disk_full

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.mark.parametrize("scenario", [clickhouse_disk_full])
def test_figures_stay_exact_through_a_fault(kafka_bootstrap: str, scenario: object) -> None:
    result = scenario(True)  # type: ignore[operator]
    assert result.exact and result.lost == 0 and result.double_counted == 0, result

"""The store's incident grouping (``sinks.views.INCIDENT_GROUPING_SQL``, on the real ClickHouse
engine) against the rule's reference implementation (``streams.domain.incidents.decluster``), on
random catalogues of earthquakes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sinks.config import ClickHouseTarget
from sinks.connection import connect
from sinks.migrations import migrate
from sinks.views import incident_refresh_statements
from streams.domain.incidents import Quake, decluster

pytestmark = [pytest.mark.clickhouse]


@pytest.mark.parametrize("seed", [1])
def test_the_sql_grouping_equals_the_reference(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    t0 = datetime(2022, 11, 21, tzinfo=UTC)
    quakes = [
        Quake(
            f"q{i:03d}",
            t0 + timedelta(hours=round(rng.uniform(0, 24 * 400), 3)),
            round(rng.uniform(-7.5, -6.5), 4),
            round(rng.uniform(106.5, 107.5), 4),
            round(rng.uniform(3.0, 7.2), 1),
        )
        for i in range(120)
    ]
    client = connect(ClickHouseTarget(f"chdb://{tmp_path / 'ch'}", "grouping", tmp_path))
    client.command("CREATE DATABASE IF NOT EXISTS grouping")
    migrate(client, "grouping")
    rows = [
        [q.event_id, 1, "earthquake", q.time, q.time, q.lat, q.lon, q.magnitude, 10.0, "", "", ""]
        for q in quakes
    ]
    client.insert(
        "grouping.alerts_state", rows,
        column_names=["event_id", "version", "hazard", "issued_at", "event_time", "lat", "lon", "magnitude",
                      "depth_km", "felt", "areas", "raw_payload"],
    )  # fmt: skip
    for statement in incident_refresh_statements("grouping"):
        client.command(statement)
    got = dict(client.query("SELECT event_id, incident_id FROM grouping.event_incident").result_rows)
    expected = decluster(quakes)
    assert got == expected
    # The catalogue is not trivial: some quakes are aftershocks, most are not.
    assert 5 < sum(e != i for e, i in expected.items()) < len(quakes) - 5
    client.close()

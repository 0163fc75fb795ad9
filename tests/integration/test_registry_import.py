"""``dampak import-registry`` through a real broker and worker: an export with broken rows lands
minus its rejects, and a later full snapshot removes the households it no longer lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import Deployment
from tests.integration.registry_export import broken_lines, write_csv, write_parquet

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HOUSEHOLDS = "SELECT sum(households) AS n FROM dampak.village_stats"


def test_an_export_lands_and_a_snapshot_removes_the_absent(deployment: Deployment, tmp_path: Path) -> None:
    deployment.start_worker()
    export = write_csv(tmp_path / "dtsen-2022-10.csv", 300, bad_every=50)
    broken = broken_lines(300, 50)
    out = deployment.dampak("import-registry", str(export)).stdout
    assert "300 rows in" in out and f"{300 - len(broken)} published, {len(broken)} rejected" in out
    deployment.wait_for(HOUSEHOLDS, [{"n": 300 - len(broken)}], 90)

    # The next month's snapshot lists the first 250 households only (as Parquet this time).
    snapshot = write_parquet(tmp_path / "dtsen-2022-11.parquet", 250, bad_every=50, ids=range(250))
    out = deployment.dampak("import-registry", str(snapshot), "--snapshot").stdout
    absent_live = 50 - sum(1 for line in broken if line - 2 >= 250)
    assert f"{absent_live} tombstones" in out
    kept = 250 - sum(1 for line in broken if line - 2 < 250)
    deployment.wait_for(HOUSEHOLDS, [{"n": kept}], 90)
    # Nothing was rejected silently: the rejects file names each broken line.
    assert len((tmp_path / "dtsen-2022-10.csv.rejects.csv").read_text().splitlines()) == len(broken) + 1

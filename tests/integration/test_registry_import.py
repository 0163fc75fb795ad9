"""``dampak import-registry`` through a real broker and worker: an export with broken rows lands
minus its rejects, a later full snapshot removes the households it no longer lists, and a snapshot
with rejected rows (a bad value, an unclosed quote, in Latin-1) removes nothing until forced."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.harness import Deployment
from tests.integration.registry_export import broken_lines, csv_lines, write_csv, write_parquet

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

HOUSEHOLDS = "SELECT sum(households) AS n FROM dampak.village_stats"


def test_an_export_lands_and_a_snapshot_removes_the_absent(deployment: Deployment, tmp_path: Path) -> None:
    deployment.start_worker()
    export = write_csv(tmp_path / "dtsen-2022-10.csv", 300, bad_every=50)
    broken = broken_lines(300, 50)
    out = deployment.dampak("import-registry", str(export)).stdout
    assert "300 rows in" in out and f"{300 - len(broken)} published, {len(broken)} rejected" in out
    deployment.wait_for(HOUSEHOLDS, [{"n": 300 - len(broken)}], 90)

    # The next month's snapshot lists the first 250 households only (as Parquet this time). It has
    # rejected rows too, so it removes households only with --force.
    snapshot = write_parquet(tmp_path / "dtsen-2022-11.parquet", 250, bad_every=50, ids=range(250))
    out = deployment.dampak("import-registry", str(snapshot), "--snapshot", "--force").stdout
    absent_live = 50 - sum(1 for line in broken if line - 2 >= 250)
    assert f"{absent_live} tombstones" in out
    kept = 250 - sum(1 for line in broken if line - 2 < 250)
    deployment.wait_for(HOUSEHOLDS, [{"n": kept}], 90)
    # Nothing was rejected silently: the rejects file names each broken line.
    assert len((tmp_path / "dtsen-2022-10.csv.rejects.csv").read_text().splitlines()) == len(broken) + 1


def test_a_snapshot_with_rejected_rows_removes_nothing_until_forced(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.start_worker()
    deployment.dampak("import-registry", str(write_csv(tmp_path / "dtsen-2022-10.csv", 20)))
    deployment.wait_for(HOUSEHOLDS, [{"n": 20}], 90)

    # The next snapshot lists households 0 to 17, written by a Windows spreadsheet (cp1252). The
    # row of DTSEN-00000003 has desil 11; the remark on DTSEN-00000005's line opens a quote that
    # is never closed.
    lines = csv_lines(18)
    header = lines[0].split(",")
    cells = lines[4].split(",")
    cells[header.index("DESIL_NASIONAL")] = "11"
    lines[4] = ",".join(cells)
    lines[6] = lines[6].replace("rumah permanen", '"pemilik José, rumah permanen')
    snapshot = tmp_path / "dtsen-2022-11.csv"
    snapshot.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    refused = deployment.dampak("import-registry", str(snapshot), "--snapshot", check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "2 of 18 rows were rejected" in refused.stderr and "16 published" in refused.stderr
    assert "the 2 households the registry holds that the file lacks were NOT removed" in refused.stderr
    rejects = (tmp_path / "dtsen-2022-11.csv.rejects.csv").read_text().splitlines()[1:]
    assert [line.split(",")[:2] for line in rejects] == [["5", "desil"], ["7", "-"]]

    # Forced, the snapshot removes the two households it does not list, and only them: the
    # households of the rejected rows stay.
    forced = deployment.dampak("import-registry", str(snapshot), "--snapshot", "--force")
    assert "2 tombstones (absent from the snapshot)" in forced.stdout
    deployment.wait_for(HOUSEHOLDS, [{"n": 18}], 90)

    # A file that is no Parquet file, or an unknown encoding: a clear error, no traceback.
    fake = tmp_path / "dtsen.parquet"
    fake.write_bytes(b"PAR1 not really")
    failed = deployment.dampak("import-registry", str(fake), check=False)
    assert failed.returncode == 2 and "not a readable Parquet file" in failed.stderr
    failed = deployment.dampak("import-registry", str(snapshot), "--encoding", "klingon", check=False)
    assert failed.returncode == 2 and "--encoding 'klingon': no such encoding" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_a_bps_coded_file_is_refused_never_mis_mapped(deployment: Deployment, tmp_path: Path) -> None:
    """BPS codes (2-2-3-3) for Cijedil and Sirnagalih, Cianjur: read as Kemendagri's 2-2-2-4 they
    would name district 32.03.21 or 32.03.14. Every row is refused with its reason; nothing is
    published."""
    deployment.dampak("up")  # the deployment's topics, without a worker
    lines = csv_lines(2)
    header = lines[0].split(",")
    village = header.index("KODE_DESA")
    rows = [line.split(",") for line in lines[1:]]
    for row, bps in zip(rows, ("3203210014", "3203140007"), strict=True):
        row[village] = bps
    path = tmp_path / "bps.csv"
    path.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    out = deployment.dampak("import-registry", str(path), check=False)
    assert "0 published, 2 rejected" in out.stdout, out.stdout + out.stderr
    rejects = (tmp_path / "bps.csv.rejects.csv").read_text()
    assert rejects.count("BPS code, not Kemendagri") == 2

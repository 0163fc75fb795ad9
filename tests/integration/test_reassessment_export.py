"""``dampak export reassessment`` on the real broker and the embedded ClickHouse: households and
household-level field reports make an incident's ``registry_candidates`` (heavy damage or
displaced, and unregistered, unranked or above desil 5); no raw household id is in any table or
view of the database; with the worker stopped, the export matches the welfare office's own
registry file against the pseudonyms and writes exactly the households to visit, with their
reasons, and counts (never names) the candidates the file does not list."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from sinks.views import PARAMETERIZED_VIEWS
from streams.privacy import Pseudonymizer
from tests.integration.harness import Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

INCIDENT = "E-REASSESS-1"
OTHER_INCIDENT = "E-REASSESS-2"
#: Every raw household id starts so: no value in ClickHouse may hold it.
RAW = "RAHASIA-"

#: The registry: id -> (village, desil, programmes).
REGISTRY: dict[str, tuple[str, int | None, list[str]]] = {
    "RAHASIA-A": ("32.03.11.2003", 7, []),  # Cijedil, Cugenang: above desil 5
    "RAHASIA-B": ("32.03.04.2003", None, []),  # Sirnagalih, Cilaku: unranked
    "RAHASIA-C": ("32.03.11.2003", 3, ["PKH"]),  # poor and served: not a candidate
    "RAHASIA-D": ("32.03.11.2003", 8, []),  # light damage only: not a candidate
    "RAHASIA-E": ("32.03.11.2001", 9, []),  # Sukamanah, Cugenang: above desil 5, displaced
    "RAHASIA-F": ("32.03.11.2002", 6, []),  # a candidate of the other incident
}
#: Household-level reports: (household id, incident, village, houses_heavy, houses_light, displaced).
REPORTS = [
    ("RAHASIA-A", INCIDENT, "32.03.11.2003", 1, 0, 3),
    ("RAHASIA-B", INCIDENT, "32.03.04.2003", 0, 0, 2),
    ("RAHASIA-C", INCIDENT, "32.03.11.2003", 1, 0, 4),
    ("RAHASIA-D", INCIDENT, "32.03.11.2003", 0, 1, 0),
    ("RAHASIA-E", INCIDENT, "32.03.11.2001", 0, 0, 5),
    ("RAHASIA-U1", INCIDENT, "32.03.04.2001", 1, 0, 0),  # Rancagoong, Cilaku: unregistered
    ("RAHASIA-U2", INCIDENT, "32.03.04.2002", 1, 0, 0),  # unregistered, and not in the file
    ("RAHASIA-F", OTHER_INCIDENT, "32.03.11.2002", 1, 0, 0),
]
#: The welfare office's own export: its registry, and the unregistered family it has since listed.
NAMES = {
    "RAHASIA-A": ("Asep Sunandar", "Kp. Cijedil, RT 01/RW 02"),
    "RAHASIA-B": ("Euis Komariah", "Kp. Sirnagalih RT 03"),
    "RAHASIA-C": ("Cecep", "Kp. Cijedil RT 04"),
    "RAHASIA-D": ("Dede", "Kp. Cijedil RT 05"),
    "RAHASIA-E": ("Enung", "Kp. Sukamanah RT 01"),
    "RAHASIA-F": ("Fajar", "Kp. Gasol RT 02"),
    "RAHASIA-U1": ("Ujang", "Kp. Rancagoong RT 06"),
}
HEADER = [
    "district_code", "district_name", "village_code", "village_name", "household_id", "head_name",
    "address", "reason", "reason_id", "heavy_damage", "displaced", "desil",
]  # fmt: skip
EXPECTED = [
    ["32.03.04", "Cilaku", "32.03.04.2001", "Rancagoong", "RAHASIA-U1", "Ujang", "Kp. Rancagoong RT 06",
     "unregistered", "tidak terdaftar", "1", "0", ""],
    ["32.03.04", "Cilaku", "32.03.04.2003", "Sirnagalih", "RAHASIA-B", "Euis Komariah",
     "Kp. Sirnagalih RT 03", "unranked", "belum berperingkat", "0", "1", ""],
    ["32.03.11", "Cugenang", "32.03.11.2001", "Sukamanah", "RAHASIA-E", "Enung", "Kp. Sukamanah RT 01",
     "above_desil_5", "desil di atas 5", "0", "1", "9"],
    ["32.03.11", "Cugenang", "32.03.11.2003", "Cijedil", "RAHASIA-A", "Asep Sunandar",
     "Kp. Cijedil, RT 01/RW 02", "above_desil_5", "desil di atas 5", "1", "1", "7"],
]  # fmt: skip


def _messages() -> list[tuple[str, bytes | None, bytes | None]]:
    out: list[tuple[str, bytes | None, bytes | None]] = []
    for hid, (village, desil, programs) in REGISTRY.items():
        doc: dict[str, Any] = {
            "household_id": hid, "village_code": village, "updated_at": "2022-10-01T00:00:00+07:00",
            "members": 4, "desil": desil, "programs": programs,
        }  # fmt: skip
        out.append(("households", hid.encode(), json.dumps(doc).encode()))
    for i, (hid, incident, village, heavy, light, displaced) in enumerate(REPORTS):
        report: dict[str, Any] = {
            "report_id": f"LAP-{i:03d}", "event_id": incident, "reported_at": f"2022-11-21T1{i}:00:00+07:00",
            "reporter_role": "tagana", "village_code": village, "household_id": hid,
            "houses_heavy": heavy, "houses_light": light, "displaced": displaced,
        }  # fmt: skip
        out.append(("field-reports", f"LAP-{i:03d}".encode(), json.dumps(report).encode()))
    return out


def _registry_file(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ID_KELUARGA", "KODE_DESA", "NAMA_KEPALA_KELUARGA", "ALAMAT", "DESIL_NASIONAL"])
        for hid, (name, address) in NAMES.items():
            village, desil, _ = REGISTRY.get(hid, ("32.03.04.2001", None, []))
            writer.writerow([hid, village, name, address, "" if desil is None else desil])
    return path


def test_the_officers_list_matches_the_candidates_and_clickhouse_holds_no_raw_id(
    deployment: Deployment, tmp_path: Path
) -> None:
    dep = deployment
    dep.start_worker()
    dep.produce(_messages())
    pseudo = Pseudonymizer(dep.settings.privacy)
    candidates = sorted(
        [{"household_ref": pseudo.ref("household_id", hid), "reason": reason}
         for hid, reason in (("RAHASIA-A", "above_desil_5"), ("RAHASIA-B", "unranked"),
                             ("RAHASIA-E", "above_desil_5"), ("RAHASIA-U1", "unregistered"),
                             ("RAHASIA-U2", "unregistered"))],
        key=lambda r: r["household_ref"],
    )  # fmt: skip
    dep.wait_for(
        "SELECT household_ref, reason FROM dampak.registry_candidates WHERE incident_id = {incident:String} "
        "ORDER BY household_ref",
        candidates,
        incident=INCIDENT,
    )
    dep.wait_for(
        "SELECT count() AS n FROM dampak.registry_candidates WHERE incident_id = {incident:String}",
        [{"n": 1}],
        incident=OTHER_INCIDENT,
    )

    # No raw household id anywhere in ClickHouse: every analyst view, every *_state table, and
    # every other object of the database.
    objects = [r["name"] for r in dep.query("SELECT name FROM system.tables WHERE database = 'dampak'")]
    assert "registry_candidates" in objects and "registry_state" in objects
    incidents = [r["incident_id"] for r in dep.query("SELECT DISTINCT incident_id FROM dampak.field_reports")]
    for name in objects:
        # A parameterized view is read per incident: every incident of the data.
        if name in PARAMETERIZED_VIEWS:
            sql = f"SELECT * FROM dampak.`{name}`(incident = {{incident:String}})"
            rows = [row for i in incidents for row in dep.query(sql, incident=i)]
        else:
            rows = dep.query(f"SELECT * FROM dampak.`{name}`")
        for row in rows:
            text = json.dumps(row, default=str)
            assert RAW not in text, f"a raw household id in dampak.{name}"
    dep.stop_worker()

    registry = _registry_file(tmp_path / "dtsen-dinsos.csv")
    out = tmp_path / "kunjungan.csv"
    args = ("export", "reassessment", INCIDENT, "--registry", str(registry), "--out", str(out))

    # The built-in pseudonym key outside development: refused, nothing written.
    dep.env["DAMPAK_DEV_MODE"] = "false"
    refused = dep.dampak(*args, check=False)
    dep.env["DAMPAK_DEV_MODE"] = "true"
    assert refused.returncode == 2 and "the built-in development key" in refused.stderr, refused.stderr
    assert not out.exists()

    done = dep.dampak(*args)
    with open(out, newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [HEADER, *EXPECTED]
    assert (
        f"4 of 5 households to re-assess in {INCIDENT} matched in dtsen-dinsos.csv (7 rows) and written to "
        f"{out}; 1 pseudonyms not found in the file (1 unregistered)"
    ) in done.stdout
    # The not-found are counted, never named (neither their ids nor their pseudonyms).
    assert RAW not in done.stdout + done.stderr and "k1:" not in done.stdout + done.stderr
    assert out.stat().st_mode & 0o777 == 0o600

    # An existing list is kept unless --force.
    again = dep.dampak(*args, check=False)
    assert again.returncode == 2 and "exists: give --force" in again.stderr
    dep.dampak(*args, "--force")

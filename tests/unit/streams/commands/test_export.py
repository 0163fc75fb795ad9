"""``dampak export reassessment`` without ClickHouse: the incident's candidates come from a fake
query function that holds pseudonyms only, the registry export's household ids are pseudonymised
here and matched, and the list is written sorted by district and village, with its reasons in
Indonesian. No raw id ever reaches the query; what is refused is refused before anything is
written."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from streams.commands import export
from streams.commands.export import CANDIDATES_SQL, COLUMNS, cmd_export, export_reassessment
from streams.errors import DampakError
from streams.privacy import Pseudonymizer
from streams.settings import PrivacySettings, Settings

KEY = PrivacySettings(hmac_key="a-welfare-office-secret-0f9e8d7c", key_id="k2")
INCIDENT = "bmkg-20221121062110"

#: (household id, village, reason, heavy damage, displaced, desil) of the incident's candidates.
CANDIDATES = [
    ("DTSEN-00000007", "32.03.11.2003", "unregistered", True, False, None),  # Cijedil, Cugenang
    ("DTSEN-00000003", "32.03.11.2003", "above_desil_5", True, True, 7),
    ("DTSEN-00000005", "32.03.04.2003", "unranked", False, True, None),  # Sirnagalih, Cilaku
    ("DTSEN-00000001", "32.03.11.2001", "no_programme", True, False, 3),  # Sukamanah, Cugenang
    ("DTSEN-00000002", "32.03.04.2001", "graduated", True, True, 4),  # Rancagoong, Cilaku
    ("DTSEN-00000099", "32.03.04.2002", "unregistered", True, False, None),  # not in the file
]
#: Another incident's candidate, listed in the file: not exported.
OTHER = ("DTSEN-00000004", "32.03.11.2002", "unranked", True, False, None)

EXPECTED = [
    # Cilaku (32.03.04) before Cugenang (32.03.11); by village, then household id.
    ["32.03.04", "Cilaku", "32.03.04.2001", "Rancagoong", "DTSEN-00000002", "Ibu Dua", "Kp. Dua RT 02",
     "graduated", "keluar (graduasi) dari PKH", "1", "1", "4"],
    ["32.03.04", "Cilaku", "32.03.04.2003", "Sirnagalih", "DTSEN-00000005", "Bapak Lima", "Kp. Lima RT 05",
     "unranked", "belum berperingkat", "0", "1", ""],
    ["32.03.11", "Cugenang", "32.03.11.2001", "Sukamanah", "DTSEN-00000001", "Ibu Satu", "Kp. Satu RT 01",
     "no_programme", "desil 1-5 tanpa program", "1", "0", "3"],
    ["32.03.11", "Cugenang", "32.03.11.2003", "Cijedil", "DTSEN-00000003", "Bapak Tiga", "Kp. Tiga RT 03",
     "above_desil_5", "desil di atas 5", "1", "1", "7"],
    ["32.03.11", "Cugenang", "32.03.11.2003", "Cijedil", "DTSEN-00000007", "Ibu Tujuh", "Kp. Tujuh RT 07",
     "unregistered", "tidak terdaftar", "1", "0", ""],
]  # fmt: skip
NAMES = {1: "Ibu Satu", 2: "Ibu Dua", 3: "Bapak Tiga", 4: "Ibu Empat", 5: "Bapak Lima", 7: "Ibu Tujuh"}
WORDS = {1: "Satu", 2: "Dua", 3: "Tiga", 4: "Empat", 5: "Lima", 7: "Tujuh"}


class FakeClickHouse:
    """``registry_candidates`` as a worker under ``privacy`` would have written it (pseudonyms
    only), answering ``CANDIDATES_SQL`` page by page; every query's parameters are kept."""

    def __init__(self, privacy: PrivacySettings = KEY, rows: list[tuple[Any, ...]] | None = None) -> None:
        pseudo = Pseudonymizer(privacy)
        self.table = [
            (incident, pseudo.ref("household_id", hid), village, reason, heavy, displaced, desil)
            for incident, (hid, village, reason, heavy, displaced, desil) in [
                *((INCIDENT, c) for c in (rows or CANDIDATES)),
                ("bmkg-20221121090000", OTHER),
            ]
        ]
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sql: str, parameters: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        assert sql == CANDIDATES_SQL
        self.calls.append(dict(parameters))
        rows = sorted(
            r[1:] for r in self.table if r[0] == parameters["incident"] and r[1] > parameters["after"]
        )
        columns = ["household_ref", "village_code", "reason", "heavy_damage", "displacement", "desil"]
        # ClickHouse gives its booleans (houses_heavy > 0) as 1/0.
        return columns, [(*r[:3], int(r[3]), int(r[4]), r[5]) for r in rows[: parameters["page"]]]


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **{"privacy": KEY, **kw})


def registry_csv(path: Path, numbers: range = range(1, 9), header: str = "") -> Path:
    """A DTSEN-style export of households DTSEN-00000001 to -08 (with names and addresses)."""
    lines = [header or "ID_KELUARGA,KODE_DESA,NAMA_KEPALA_KELUARGA,ALAMAT,DESIL_NASIONAL"]
    for n in numbers:
        lines.append(
            f'DTSEN-{n:08d},32.03.11.2003,{NAMES.get(n, "Warga")},"Kp. {WORDS.get(n, "Lain")} RT {n:02d}",'
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_the_files_households_are_matched_by_pseudonym_and_listed_by_district_and_village(
    tmp_path: Path,
) -> None:
    fake = FakeClickHouse()
    out = tmp_path / "kunjungan.csv"
    stats = export_reassessment(
        settings(tmp_path), INCIDENT, registry_csv(tmp_path / "dtsen.csv"), out, ask=fake
    )
    assert read(out) == [list(COLUMNS), *EXPECTED]
    assert (stats.candidates, stats.matched, stats.not_found, stats.rows) == (6, 5, 1, 8)
    assert stats.not_found_by_reason == {"unregistered": 1}
    # The list holds personal data: its owner alone may read it.
    assert os.stat(out).st_mode & 0o777 == 0o600
    # ClickHouse was asked for the incident by its id and pseudonyms only, never a raw id.
    assert all(not re.search(r"DTSEN", json.dumps(call)) for call in fake.calls)
    assert fake.calls[0] == {"incident": INCIDENT, "after": "", "page": export.PAGE_ROWS}


def test_candidates_are_read_page_by_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "PAGE_ROWS", 2)
    fake = FakeClickHouse()
    out = tmp_path / "kunjungan.csv"
    stats = export_reassessment(
        settings(tmp_path), INCIDENT, registry_csv(tmp_path / "dtsen.csv"), out, ask=fake
    )
    assert read(out)[1:] == EXPECTED and stats.candidates == 6
    assert len(fake.calls) == 4  # 2 + 2 + 2 + the empty page that ends it
    assert [c["after"] for c in fake.calls] == sorted(c["after"] for c in fake.calls)
    # The row cap of analyst queries bounds a page too.
    fake = FakeClickHouse()
    capped = settings(tmp_path, clickhouse={"query_max_rows": 1})
    export_reassessment(capped, INCIDENT, tmp_path / "dtsen.csv", out, force=True, ask=fake)
    assert {c["page"] for c in fake.calls} == {1} and len(fake.calls) == 7


def test_a_mapped_parquet_export_without_names_or_addresses(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dtks.parquet"
    pq.write_table(
        pa.table({"IDDTKS": [f"DTSEN-{n:08d}" for n in range(1, 9)], "ART": list(range(1, 9))}), path
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"household_id": "IDDTKS", "village_code": "KDDESA", "members": "ART"}))
    out = tmp_path / "kunjungan.csv"
    export_reassessment(settings(tmp_path), INCIDENT, path, out, mapping=mapping, ask=FakeClickHouse())
    assert read(out)[1:] == [[*row[:5], "", "", *row[7:]] for row in EXPECTED]
    # The same mapping file can name the visit columns, for both commands.
    registry_csv(tmp_path / "dtks.csv", header="IDDTKS,KDDESA,NAMA_KRT,ALAMAT_RUMAH,DESIL")
    mapping.write_text(
        json.dumps({"household_id": "IDDTKS", "head_name": "NAMA_KRT", "address": "ALAMAT_RUMAH"})
    )
    export_reassessment(
        settings(tmp_path),
        INCIDENT,
        tmp_path / "dtks.csv",
        out,
        mapping=mapping,
        force=True,
        ask=FakeClickHouse(),
    )
    assert read(out)[1:] == EXPECTED
    mapping.write_text(json.dumps({"household_id": "NOPE"}))
    with pytest.raises(DampakError, match=r"dtks\.csv has no column 'NOPE' for household_id"):
        export_reassessment(
            settings(tmp_path), INCIDENT, tmp_path / "dtks.csv", out, mapping=mapping, force=True,
            ask=FakeClickHouse(),
        )  # fmt: skip


def test_a_broken_csv_record_is_matched_by_its_id_without_name_or_address(tmp_path: Path) -> None:
    path = registry_csv(tmp_path / "dtsen.csv")
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("Bapak Tiga", '"Bapak Tiga')  # a quote never closed
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "kunjungan.csv"
    stats = export_reassessment(settings(tmp_path), INCIDENT, path, out, ask=FakeClickHouse())
    want = [row if row[4] != "DTSEN-00000003" else [*row[:5], "", "", *row[7:]] for row in EXPECTED]
    assert read(out)[1:] == want and stats.unreadable == 1
    assert any("1 households were matched on a record that breaks the CSV format" in n for n in stats.notes)


def test_refusals_write_nothing(tmp_path: Path) -> None:
    registry = registry_csv(tmp_path / "dtsen.csv")
    out = tmp_path / "kunjungan.csv"
    # The built-in development key, outside development: its pseudonyms could be reversed.
    with pytest.raises(DampakError, match="the pseudonym key is the built-in development key"):
        export_reassessment(
            settings(tmp_path, privacy=PrivacySettings()), INCIDENT, registry, out, ask=FakeClickHouse()
        )
    assert not out.exists()
    # In development it is accepted (the pseudonyms were made with it too).
    dev = settings(tmp_path, privacy=PrivacySettings(), dev_mode=True)
    export_reassessment(dev, INCIDENT, registry, out, ask=FakeClickHouse(PrivacySettings()))
    assert read(out)[1:] == EXPECTED
    # An existing list is not overwritten without --force.
    out.write_text("kept")
    with pytest.raises(DampakError, match="exists: give --force"):
        export_reassessment(settings(tmp_path), INCIDENT, registry, out, ask=FakeClickHouse())
    assert out.read_text() == "kept"
    with pytest.raises(DampakError, match="is the registry export itself"):
        export_reassessment(
            settings(tmp_path), INCIDENT, registry, registry, force=True, ask=FakeClickHouse()
        )
    # Another key: nothing matches, and nothing is written.
    with pytest.raises(DampakError, match=r"none of the 8 households of dtsen\.csv is among the 6"):
        export_reassessment(
            settings(tmp_path), INCIDENT, registry, out, force=True,
            ask=FakeClickHouse(PrivacySettings(hmac_key="another-secret-1234567890", key_id="k2")),
        )  # fmt: skip
    # Another key id (the key was rotated since): said at once.
    with pytest.raises(DampakError, match="ClickHouse holds pseudonyms of key 'k3' and this key is 'k2'"):
        export_reassessment(
            settings(tmp_path), INCIDENT, registry, out, force=True,
            ask=FakeClickHouse(PrivacySettings(hmac_key="a-later-secret-1234567890", key_id="k3")),
        )  # fmt: skip
    # An incident without candidates (or a wrong id).
    with pytest.raises(DampakError, match="no households to re-assess in incident 'bmkg-1'"):
        export_reassessment(settings(tmp_path), "bmkg-1", registry, out, force=True, ask=FakeClickHouse())
    assert out.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_command_prints_counts_never_pseudonyms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeClickHouse()
    monkeypatch.setattr(export, "_analyst_query", lambda s: fake)
    out = tmp_path / "kunjungan.csv"
    args = argparse.Namespace(
        what="reassessment", incident=INCIDENT, registry=registry_csv(tmp_path / "dtsen.csv"), out=out,
        format=None, mapping=None, delimiter=",", encoding=None, force=False,
    )  # fmt: skip
    assert cmd_export(settings(tmp_path), args) == 0
    printed = capsys.readouterr()
    assert (
        f"5 of 6 households to re-assess in {INCIDENT} matched in dtsen.csv (8 rows) and written to {out}; "
        "1 pseudonyms not found in the file (1 unregistered)"
    ) in printed.out
    assert "k2:" not in printed.out + printed.err and "DTSEN" not in printed.out + printed.err
    assert read(out)[1:] == EXPECTED

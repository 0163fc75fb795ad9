"""``dampak import-registry`` without a broker: mapping, validation, rejects with line numbers,
Parquet, resuming an interrupted import without sending a row twice, snapshots that never remove
a rejected household, and hostile files (broken quotes, huge fields, encodings, NaN) that are
rejected line by line or stop with a clear error, never losing the rows after them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from schemas.households import PROGRAMS, Household
from streams.commands import registry_import
from streams.commands.registry_import import ColumnMapping, import_registry
from streams.errors import DampakError
from streams.ops import admin
from streams.settings import Settings
from tests.integration.registry_export import broken_lines, csv_lines, write_csv, write_parquet


class Recording:
    """A producer that records what it is sent; ``fail_at``: raise KeyboardInterrupt on that send."""

    def __init__(self, fail_at: int = 0) -> None:
        self.sent: list[tuple[bytes, bytes | None]] = []
        self.fail_at = fail_at

    def send(self, topic: str, key: bytes, value: bytes | None) -> None:
        if self.fail_at and len(self.sent) + 1 == self.fail_at:
            raise KeyboardInterrupt
        self.sent.append((key, value))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def run(tmp_path: Path, path: Path, prod: Recording, **kw: Any) -> registry_import.ImportStats:
    """Import ``path`` through ``prod``. The generated exports may write Kemendagri codes without
    dots, so they are imported with ``--codes kemendagri`` unless ``codes`` is given."""
    kw.setdefault("codes", "kemendagri")
    return import_registry(
        Settings(data_dir=tmp_path / "data"), path, topic="households", producer_factory=lambda s: prod,
        progress_stream=io.StringIO(), **kw,
    )  # fmt: skip


def rejects_of(path: Path) -> dict[int, str]:
    with open(path, newline="") as fh:
        return {int(row["line"]): row["field"] for row in csv.DictReader(fh)}


def test_a_csv_export_is_validated_row_by_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "dtsen.csv", 1_000, bad_every=97)
    prod = Recording()
    stats = run(tmp_path, path, prod)
    broken = broken_lines(1_000, 97)
    assert (stats.rows, stats.rejected, stats.published) == (1_000, len(broken), 1_000 - len(broken))
    # Every reject names its line and field, and no value (they may be personal data).
    assert rejects_of(path.with_name("dtsen.csv.rejects.csv")) == broken
    assert "3203" not in path.with_name("dtsen.csv.rejects.csv").read_text()
    assert len({key for key, _ in prod.sent}) == len(prod.sent)
    first = Household.model_validate_json(prod.sent[0][1] or b"")
    with open(path, newline="") as fh:
        raw = next(r for r in csv.DictReader(fh) if r["ID_KELUARGA"] == first.household_id)
    assert prod.sent[0][0] == first.household_id.encode()
    code = raw["KODE_DESA"].replace(".", "")
    assert first.village_code == f"{code[:2]}.{code[2:4]}.{code[4:6]}.{code[6:]}"
    sembako = "BPNT" if "BPNT" in PROGRAMS else "SEMBAKO"  # BPNT became Program Sembako in 2020
    want = {p for p, col in (("PKH", "PENERIMA_PKH"), (sembako, "PENERIMA_BPNT")) if raw[col] == "Y"}
    assert first.programs == want | ({"PBI"} if raw["PENERIMA_PBI"] == "1" else set())
    assert first.members == int(raw["JUMLAH_ART"])
    assert first.updated_at.isoformat() == "2022-09-30T17:00:00+00:00"  # midnight WIB


def test_parquet_gives_the_same_households(tmp_path: Path) -> None:
    csv_prod, pq_prod = Recording(), Recording()
    run(tmp_path, write_csv(tmp_path / "a.csv", 300, bad_every=40), csv_prod)
    stats = run(tmp_path, write_parquet(tmp_path / "a.parquet", 300, bad_every=40), pq_prod)
    assert stats.rejected == len(broken_lines(300, 40))
    assert [orjson.loads(v or b"") for _, v in pq_prod.sent] == [
        orjson.loads(v or b"") for _, v in csv_prod.sent
    ]


def test_an_interrupted_import_resumes_without_sending_a_row_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_import, "CHECKPOINT_ROWS", 100)
    path = write_csv(tmp_path / "dtsen.csv", 1_000, bad_every=61)
    first = Recording(fail_at=437)
    with pytest.raises(DampakError, match=r"interrupted at row .*run the same command again to resume"):
        run(tmp_path, path, first)
    second = Recording()
    stats = run(tmp_path, path, second)
    keys = [k for k, _ in first.sent + second.sent]
    broken = broken_lines(1_000, 61)
    assert len(keys) == len(set(keys)) == 1_000 - len(broken)
    assert stats.resumed_from > 0 and stats.rejected == len(broken)
    assert rejects_of(path.with_name("dtsen.csv.rejects.csv")) == broken  # none twice, none lost
    # Finished: the checkpoint is gone, so the next run imports the whole file again.
    third = Recording()
    assert run(tmp_path, path, third).resumed_from == 0 and len(third.sent) == len(keys)


def test_columns_are_mapped_and_a_missing_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "dtks.csv"
    path.write_text("IDDTKS;KDDESA;ART\nX-1;3203012001;3\nX-2;3203012001;2,0\n")
    mapping_file = tmp_path / "mapping.json"
    mapping = {"household_id": "IDDTKS", "village_code": "KDDESA", "members": "ART"}
    mapping_file.write_text(json.dumps(mapping))
    prod = Recording()
    stats = run(tmp_path, path, prod, mapping=ColumnMapping.load(mapping_file), delimiter=";")
    assert stats.published == 2 and [orjson.loads(v or b"")["members"] for _, v in prod.sent] == [3, 2]
    with pytest.raises(DampakError, match="no column 'ID_KELUARGA' for household_id"):
        run(tmp_path, path, Recording(), delimiter=";")
    mapping_file.write_text(json.dumps({"household": "X"}))
    with pytest.raises(DampakError, match="unknown fields"):
        ColumnMapping.load(mapping_file)


# ------------------------------------------------------------------ snapshots and hostile files
def ids(*numbers: int) -> list[str]:
    return [f"DTSEN-{n:08d}" for n in numbers]


def published(prod: Recording) -> list[str]:
    return [key.decode() for key, value in prod.sent if value is not None]


def tombstoned(prod: Recording) -> list[str]:
    return [key.decode() for key, value in prod.sent if value is None]


def registry_holds(monkeypatch: pytest.MonkeyPatch, households: list[str]) -> None:
    """The registry changelog a worker would have written: each household live in a village."""
    records = [
        SimpleNamespace(key=orjson.dumps(h), value=orjson.dumps({"village_code": "32.03.01.2001"}))
        for h in households
    ]
    monkeypatch.setattr(admin, "read_topic", lambda settings, topic: iter([records]))


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def set_cell(line: str, column: int, value: str) -> str:
    cells = line.split(",")
    cells[column] = value
    return ",".join(cells)


def reasons(path: Path) -> dict[int, str]:
    with open(path.with_name(path.name + ".rejects.csv"), newline="") as fh:
        return {int(row["line"]): row["reason"] for row in csv.DictReader(fh)}


def test_a_snapshot_keeps_a_rejected_household_and_removes_nothing_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = csv_lines(4)
    header = lines[0].split(",")
    lines[2] = set_cell(lines[2], header.index("DESIL_NASIONAL"), "11")  # DTSEN-00000001
    path = write(tmp_path / "dtsen.csv", lines)
    # The registry holds the four households of the file and one the file no longer lists.
    registry_holds(monkeypatch, [*ids(0, 1, 2, 3), "DTSEN-99999999"])
    first = Recording()
    with pytest.raises(DampakError) as refused:
        run(tmp_path, path, first, snapshot=True)
    message = str(refused.value)
    assert "1 of 4 rows were rejected" in message and "3 published" in message
    assert "the 1 households the registry holds that the file lacks were NOT removed" in message
    assert "--force" in message
    assert published(first) == ids(0, 2, 3) and tombstoned(first) == []
    # --force removes the absent household only, never the one whose row was rejected, and the
    # rows already published are not sent again.
    second = Recording()
    stats = run(tmp_path, path, second, snapshot=True, force=True)
    assert tombstoned(second) == ["DTSEN-99999999"] and published(second) == []
    assert (stats.tombstones, stats.rejected) == (1, 1)


def test_an_unclosed_quote_rejects_its_line_and_loses_no_later_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Line 5 (DTSEN-00000003) opens a quote in the unmapped remarks column and never closes it.
    lines = csv_lines(9)
    lines[4] = lines[4].replace("rumah permanen", '"rumah permanen')
    path = write(tmp_path / "dtsen.csv", lines)
    prod = Recording()
    stats = run(tmp_path, path, prod)
    assert (stats.rows, stats.published, stats.rejected) == (9, 8, 1)
    assert published(prod) == ids(0, 1, 2, 4, 5, 6, 7, 8)
    assert reasons(path) == {5: "a quote not closed before the end of the file"}
    # Its household is named on the broken line, so a snapshot does not remove it.
    registry_holds(monkeypatch, ids(*range(9)))
    again = Recording()
    run(tmp_path, path, again, snapshot=True, force=True)
    assert tombstoned(again) == [] and len(published(again)) == 8


def test_a_quote_with_more_than_128_kib_after_it_is_one_reject(tmp_path: Path) -> None:
    lines = csv_lines(2_000)
    lines[2] = lines[2].replace("rumah permanen", '"rumah permanen')
    path = write(tmp_path / "dtsen.csv", lines)
    assert path.stat().st_size > 128 * 1024
    prod = Recording()
    stats = run(tmp_path, path, prod)
    assert (stats.rows, stats.published, stats.rejected) == (2_000, 1_999, 1)
    from streams.commands.registry_files import MAX_RECORD_LINES

    assert reasons(path) == {3: f"a quote not closed within {MAX_RECORD_LINES} lines"}


def test_hostile_lines_are_rejects_with_their_line(tmp_path: Path) -> None:
    from streams.commands import registry_files

    lines = csv_lines(12)
    note = "rumah permanen"
    lines[1] = lines[1].replace(note, '"' + "x" * 200_000 + '"')  # a field over csv's limit
    lines[2] = lines[2].replace(note, "x" * (registry_files.MAX_LINE_BYTES + 10))
    lines[3] = lines[3].replace(note, "rumah\0permanen")
    lines[4] = lines[4].replace(note, '"rumah" permanen')  # text after a closing quote
    lines[5] = lines[5].replace(note, '"rumah\npermanen"')  # a quoted line break is fine
    lines[6] = lines[6].replace(note, "rumah,kayu")  # one field too many
    header = lines[0].split(",")
    lines[7] = set_cell(lines[7], header.index("JUMLAH_ART"), "nan")
    lines[8] = set_cell(lines[8], header.index("JUMLAH_LANSIA"), "9" * 5_000)
    lines[9] = set_cell(lines[9], header.index("LINTANG"), "-Infinity")
    lines[10] = set_cell(lines[10], header.index("ID_KELUARGA"), "DTSEN-\u202e00000009")
    path = write(tmp_path / "dtsen.csv", lines)
    prod = Recording()
    stats = run(tmp_path, path, prod)
    got = reasons(path)
    assert got == {
        2: "field larger than field limit (131072)",
        3: f"a line longer than {registry_files.MAX_LINE_BYTES:,} bytes",
        4: "a NUL byte (is the file UTF-16? give --encoding)",
        5: "a quote inside a quoted field (',' expected after '\"')",
        8: f"{len(header) + 1} fields where the header has {len(header)}",
        9: "not a finite number",
        10: "not a finite number",
        11: "not a finite number",
        12: "a control or format character",
    }
    assert published(prod) == ids(4, 10, 11) and (stats.rows, stats.rejected) == (12, 9)
    assert "1 records span more than one line (quoted line breaks)" in stats.notes


def test_encodings_are_detected_or_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = csv_lines(6)
    lines[3] = lines[3].replace("rumah permanen", '"pemilik José, rumah kayu"')
    for encoding in ("latin-1", "cp1252", "utf-16", "utf-8-sig", "utf-8"):
        prod = Recording()
        stats = run(tmp_path, write(tmp_path / f"{encoding}.csv", lines, encoding), prod, restart=True)
        assert published(prod) == ids(*range(6)) and stats.rejected == 0, encoding
        guessed = any("cp1252" in note for note in stats.notes)
        assert guessed == (encoding in ("latin-1", "cp1252")), encoding

    # UTF-8 at the start, Latin-1 further on: the guess is wrong, and the import says so.
    from streams.commands import registry_files

    monkeypatch.setattr(registry_files, "SAMPLE_BYTES", 64)
    path = write(tmp_path / "mixed.csv", lines)
    path.write_bytes(path.read_bytes().replace("José".encode(), "José".encode("latin-1")))
    first = Recording()
    with pytest.raises(
        DampakError, match=r"line 4: not utf-8 text \(byte 0xe9 at position \d+\): .*--encoding"
    ):
        run(tmp_path, path, first)
    assert published(first) == ids(0, 1)
    with pytest.raises(DampakError, match="--encoding 'klingon': no such encoding"):
        run(tmp_path, path, Recording(), encoding="klingon")
    # Given, it is read as such, and the rows published before are not sent again.
    second = Recording()
    run(tmp_path, path, second, encoding="latin-1")
    assert published(second) == ids(2, 3, 4, 5)


def test_hostile_parquet_files_are_rejected_with_a_reason(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(b"PAR1" + b"\0" * 100)
    with pytest.raises(DampakError, match=r"x\.parquet: not a readable Parquet file"):
        run(tmp_path, not_parquet, Recording())
    table = pa.table(
        {
            "ID_KELUARGA": pa.array([b"H-1", b"H-\xff", b"H-3", b"H-4", b"H-5"], pa.binary()),
            "KODE_DESA": ["3203012001"] * 5,
            "LINTANG": [-6.9, float("nan"), -6.9, -6.9, float("inf")],
            "JUMLAH_ART": [3, 3, 2**62, 3, 3],
        }
    )
    path = tmp_path / "hostile.parquet"
    pq.write_table(table, path)
    prod = Recording()
    stats = run(tmp_path, path, prod)
    assert published(prod) == ["H-1", "H-4"] and stats.rejected == 3
    assert rejects_of(path.with_name("hostile.parquet.rejects.csv")) == {
        2: "household_id",
        3: "members",
        5: "lat",
    }


# ------------------------------------------------------------------ BPS and Kemendagri codes
#: (village code as written, the Kemendagri village it is) of one export. Cijedil in Cugenang,
#: Cianjur is BPS 3203210014 and Kemendagri 32.03.11.2003; Sirnagalih in Cilaku is BPS 3203140007
#: and Kemendagri 32.03.04.2003. Split as Kemendagri, the BPS codes would land in Sindangbarang
#: (32.03.21) and Sukanagara (32.03.14).
CODED = [
    "32.03.11.2003",  # line 2: Kemendagri, dotted
    "3203210014",  # line 3: BPS, Cijedil
    "3203140007",  # line 4: BPS, Sirnagalih
    "32.03.210.014",  # line 5: BPS with separators
    "32-03-140-007",  # line 6: BPS with separators
    "3203112003",  # line 7: Kemendagri without dots (ambiguous by shape)
    " 32.03.04.2003 ",  # line 8: Kemendagri, dotted, with spaces around
]


def coded_export(path: Path) -> Path:
    lines = ["ID_KELUARGA,KODE_DESA,TANGGAL_PEMUTAKHIRAN"]
    lines += [f"H-{i},{code},2022-10-01" for i, code in enumerate(CODED, start=2)]
    return write(path, lines)


def villages_of(prod: Recording) -> dict[str, str]:
    return {
        key.decode(): orjson.loads(value)["village_code"] for key, value in prod.sent if value is not None
    }


def test_a_bps_code_is_rejected_never_mapped(tmp_path: Path) -> None:
    path = coded_export(tmp_path / "dtsen.csv")
    prod = Recording()
    stats = run(tmp_path, path, prod, codes="detect")  # the default of import-registry
    assert villages_of(prod) == {"H-2": "32.03.11.2003", "H-8": "32.03.04.2003"}
    assert (stats.published, stats.rejected) == (2, 5)
    undotted = "BPS code, not Kemendagri (write Kemendagri codes with dots, or pass --codes kemendagri)"
    assert reasons(path) == {
        3: undotted,
        4: undotted,
        5: "BPS code, not Kemendagri",
        6: "BPS code, not Kemendagri",
        7: undotted,
    }
    assert set(rejects_of(path.with_name("dtsen.csv.rejects.csv")).values()) == {"village_code"}
    assert "3203" not in path.with_name("dtsen.csv.rejects.csv").read_text()  # no value, ever
    # The function's default is the same.
    default = Recording()
    import_registry(
        Settings(data_dir=tmp_path / "data"), path, topic="households", producer_factory=lambda s: default,
        progress_stream=io.StringIO(), restart=True,
    )  # fmt: skip
    assert villages_of(default) == villages_of(prod)


def test_codes_kemendagri_reads_undotted_codes_and_still_rejects_bps_ones(tmp_path: Path) -> None:
    path = coded_export(tmp_path / "dtsen.csv")
    prod = Recording()
    stats = run(tmp_path, path, prod, codes="kemendagri")
    # The undotted Kemendagri code is read 2-2-2-4; the BPS codes read so name no village
    # (32.03.21.0014 and 32.03.14.0007: a Kemendagri village number starts with 1, 2 or 3), and
    # the contract rejects them.
    assert villages_of(prod) == {"H-2": "32.03.11.2003", "H-7": "32.03.11.2003", "H-8": "32.03.04.2003"}
    assert stats.rejected == 4
    pattern = r"String should match pattern '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[123][0-9]{3}$'"
    assert reasons(path) == {
        3: pattern,
        4: pattern,
        5: "BPS code, not Kemendagri",
        6: "BPS code, not Kemendagri",
    }
    assert not any(code.startswith(("32.03.21", "32.03.14")) for code in villages_of(prod).values())


def test_codes_bps_rejects_every_row_as_no_bridge_is_shipped(tmp_path: Path) -> None:
    path = coded_export(tmp_path / "dtsen.csv")
    prod = Recording()
    stats = run(tmp_path, path, prod, codes="bps")
    assert prod.sent == [] and (stats.rows, stats.rejected) == (7, 7)
    assert set(reasons(path).values()) == {registry_import.BPS_NO_BRIDGE}
    assert registry_import.BPS_NO_BRIDGE.startswith("BPS code, not Kemendagri (")
    assert "no bridge" in registry_import.BPS_NO_BRIDGE
    assert any(note.startswith("--codes bps: every row rejected") for note in stats.notes)
    with pytest.raises(DampakError, match="--codes 'bpss'"):
        run(tmp_path, path, Recording(), codes="bpss")


def test_a_bps_code_in_a_parquet_number_column_is_rejected(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dtsen.parquet"
    pq.write_table(pa.table({"ID_KELUARGA": ["H-1", "H-2"], "KODE_DESA": [3203210014, 3203112003]}), path)
    prod = Recording()
    run(tmp_path, path, prod, codes="detect")
    assert prod.sent == [] and set(reasons(path).values()) == {
        "BPS code, not Kemendagri (write Kemendagri codes with dots, or pass --codes kemendagri)"
    }
    kemendagri = Recording()
    run(tmp_path, path, kemendagri, restart=True)
    assert villages_of(kemendagri) == {"H-2": "32.03.11.2003"}


def test_a_mapping_may_name_the_visit_columns_which_the_import_ignores(tmp_path: Path) -> None:
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps({"household_id": "IDDTKS", "head_name": "NAMA_KRT", "address": None}))
    mapping = ColumnMapping.load(mapping_file)
    assert mapping.fields["household_id"] == "IDDTKS"
    assert not {"head_name", "address"} & set(mapping.fields)
    mapping_file.write_text(json.dumps(["IDDTKS"]))
    with pytest.raises(DampakError, match="a JSON object"):
        ColumnMapping.load(mapping_file)

"""``dampak import-registry`` without a broker: mapping, validation, rejects with line numbers,
Parquet, and resuming an interrupted import without sending a row twice."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.households import Household
from streams import registry_import
from streams.errors import DampakError
from streams.registry_import import ColumnMapping, import_registry
from streams.settings import Settings
from tests.integration.registry_export import broken_lines, write_csv, write_parquet


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
    code = raw["KODE_DESA"]
    assert first.village_code == f"{code[:2]}.{code[2:4]}.{code[4:6]}.{code[6:]}"
    want = {p for p, col in (("PKH", "PENERIMA_PKH"), ("BPNT", "PENERIMA_BPNT")) if raw[col] == "Y"}
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

"""Generated DTSEN-style registry exports (CSV or Parquet) for ``dampak import-registry``: the
default column names, 10-digit village codes as exports write them, programme flags as Y/T, and
a chosen share of broken rows whose line numbers are known."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schemas.regions import villages

COLUMNS = [
    "ID_KELUARGA", "KODE_DESA", "TANGGAL_PEMUTAKHIRAN", "NIK_KEPALA_KELUARGA", "NO_KK", "JUMLAH_ART",
    "DESIL_NASIONAL", "PENERIMA_PKH", "PENERIMA_BPNT", "PENERIMA_PBI", "JUMLAH_LANSIA",
    "JUMLAH_DISABILITAS", "JUMLAH_BALITA", "JUMLAH_IBU_HAMIL", "LINTANG", "BUJUR",
]  # fmt: skip

#: Ways a row breaks, each with the field its reject names.
BREAKS = {
    "village": ("KODE_DESA", "99.99.99.9999", "village_code"),
    "members": ("JUMLAH_ART", "empat", "members"),
    "desil": ("DESIL_NASIONAL", "11", "desil"),
    "nik": ("NIK_KEPALA_KELUARGA", "32030101", "nik_head"),
    "flag": ("PENERIMA_PKH", "mungkin", "programs.PKH"),
}


def rows(n: int, seed: int = 1, bad_every: int = 0, ids: range | None = None) -> Iterator[dict[str, Any]]:
    """``n`` rows; with ``bad_every`` every such row (the 1st, (k+1)th, ...) breaks one rule."""
    rng = random.Random(seed)
    codes = villages("32.03.")[:400]
    breaks = list(BREAKS.values())
    for i, number in enumerate(ids if ids is not None else range(n)):
        members = rng.randint(1, 8)
        # Plausible counts: each group within the members, and a child under five neither
        # elderly nor pregnant.
        elderly, pregnant = rng.randint(0, min(2, members)), rng.randint(0, min(1, members))
        under5 = rng.randint(0, min(2, members - max(elderly, pregnant)))
        row: dict[str, Any] = {
            "ID_KELUARGA": f"DTSEN-{number:08d}",
            "KODE_DESA": rng.choice(codes),  # Kemendagri, dotted (undotted 10 digits read as BPS)
            "TANGGAL_PEMUTAKHIRAN": "2022-10-01",
            "NIK_KEPALA_KELUARGA": f"3203{rng.randrange(10**12):012d}",
            "NO_KK": f"3203{rng.randrange(10**12):012d}",
            "JUMLAH_ART": members,
            "DESIL_NASIONAL": rng.choice(["", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            "PENERIMA_PKH": rng.choice("YT"),
            "PENERIMA_BPNT": rng.choice("YT"),
            "PENERIMA_PBI": rng.choice(["1", "0"]),
            "JUMLAH_LANSIA": elderly,
            "JUMLAH_DISABILITAS": rng.randint(0, 1),
            "JUMLAH_BALITA": under5,
            "JUMLAH_IBU_HAMIL": pregnant,
            "LINTANG": f"{-6.8 - rng.random() * 0.4:.5f}",
            "BUJUR": f"{107.0 + rng.random() * 0.3:.5f}",
        }
        if bad_every and i % bad_every == 0:
            column, value, _ = breaks[(i // bad_every) % len(breaks)]
            row[column] = value
        yield row


def write_csv(path: Path, n: int, **kw: Any) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for row in rows(n, **kw):
            writer.writerow(row)
    return path


def write_parquet(path: Path, n: int, **kw: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{k: str(v) for k, v in row.items()} for row in rows(n, **kw)])
    pq.write_table(table, path)
    return path


def broken_lines(n: int, bad_every: int) -> dict[int, str]:
    """CSV line number (the header is line 1) -> the field its reject names."""
    breaks = list(BREAKS.values())
    return {i + 2: breaks[(i // bad_every) % len(breaks)][2] for i in range(0, n, bad_every)}


def csv_lines(n: int, note: str = "CATATAN", **kw: Any) -> list[str]:
    """The lines (header first, without line endings) of an export of ``n`` rows with a free-text
    column ``note`` after the village code, which the mapping leaves unread: tests break lines by
    hand in it, as a surveyor's remark with a stray quote would."""
    out = io.StringIO()
    writer = csv.DictWriter(out, [*COLUMNS[:2], note, *COLUMNS[2:]], lineterminator="\n")
    writer.writeheader()
    for row in rows(n, **kw):
        writer.writerow({**row, note: "rumah permanen"})
    return out.getvalue().splitlines()

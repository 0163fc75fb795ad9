"""``dampak import-registry``: a DTSEN/DTKS export (CSV or Parquet) into ``households``.

The file is streamed (CSV row by row, Parquet batch by batch), each row mapped onto the
``households`` contract and validated as the worker will validate it, then published keyed by
``household_id``. A row that fails goes to the rejects file with its line number (CSV; row number
for Parquet), the field and the reason, never its values (they hold personal data).

Resume: every ``CHECKPOINT_ROWS`` rows the producer is flushed and the row reached is recorded in
``<data dir>/imports/<file fingerprint>.json``. Run the same command again after an interruption
and the rows before the checkpoint are read but not published again (Ctrl-C checkpoints the row it
stopped at; a killed import sends again at most the rows after its last checkpoint, which the
registry absorbs: the same household with the same ``updated_at`` changes nothing).

Snapshot (``--snapshot``): the file is the whole registry. Households the registry holds (read
from its changelog topic) that are absent from the file get a tombstone. Only 8 bytes per row of
the file are held for this.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, TextIO

import orjson
from pydantic import ValidationError

from schemas.households import PROGRAMS, Household
from streams.errors import DampakError
from streams.progress import Progress
from streams.settings import Settings

__all__ = [
    "DEFAULT_MAPPING",
    "ColumnMapping",
    "ImportStats",
    "import_registry",
    "row_to_household",
]

logger = logging.getLogger(__name__)

CHECKPOINT_ROWS = 50_000

#: Column names of a DTSEN-style export (upper case, Indonesian); ``--mapping FILE.json`` replaces
#: any of them. ``programs`` maps each programme to a flag column (1/0, Y/T, YA/TIDAK, TRUE/FALSE).
DEFAULT_MAPPING: dict[str, Any] = {
    "household_id": "ID_KELUARGA",
    "village_code": "KODE_DESA",
    "updated_at": "TANGGAL_PEMUTAKHIRAN",
    "nik_head": "NIK_KEPALA_KELUARGA",
    "kk_number": "NO_KK",
    "members": "JUMLAH_ART",
    "desil": "DESIL_NASIONAL",
    "programs": {"PKH": "PENERIMA_PKH", "BPNT": "PENERIMA_BPNT", "PBI": "PENERIMA_PBI"},
    "elderly": "JUMLAH_LANSIA",
    "disabled": "JUMLAH_DISABILITAS",
    "under5": "JUMLAH_BALITA",
    "pregnant": "JUMLAH_IBU_HAMIL",
    "lat": "LINTANG",
    "lon": "BUJUR",
}
WIB = timezone(timedelta(hours=7))
_INTS = ("members", "desil", "elderly", "disabled", "under5", "pregnant")
_FLOATS = ("lat", "lon")
_YES = {"1", "Y", "YA", "TRUE", "T1"}
_NO = {"", "0", "N", "T", "TIDAK", "FALSE"}


@dataclass(frozen=True)
class ColumnMapping:
    fields: dict[str, str]
    programs: dict[str, str]

    @classmethod
    def load(cls, path: Path | None) -> ColumnMapping:
        """The default mapping, with the entries of a JSON file (dampak field -> column) over it."""
        mapping = dict(DEFAULT_MAPPING)
        if path is not None:
            try:
                given = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise DampakError(f"--mapping {path}: {exc}") from exc
            unknown = set(given) - set(DEFAULT_MAPPING)
            if unknown:
                raise DampakError(f"--mapping {path}: unknown fields {sorted(unknown)}")
            mapping.update(given)
        programs = dict(mapping.pop("programs") or {})
        if set(programs) - set(PROGRAMS):
            raise DampakError(f"mapping: programmes are {', '.join(PROGRAMS)}")
        return cls({k: v for k, v in mapping.items() if v}, programs)

    def check_columns(self, columns: list[str]) -> None:
        """Raises DampakError when a required column is missing from the file's header."""
        for name in ("household_id", "village_code"):
            if self.fields.get(name) not in columns:
                raise DampakError(
                    f"the file has no column {self.fields.get(name)!r} for {name} "
                    f"(columns: {', '.join(columns[:20])}); map it with --mapping"
                )


def _village_code(text: str) -> str:
    """Kemendagri codes arrive dotted (``32.03.01.2001``) or as 10 digits (``3203012001``)."""
    text = text.strip()
    if len(text) == 10 and text.isdigit():
        return f"{text[:2]}.{text[2:4]}.{text[4:6]}.{text[6:]}"
    return text


def _updated_at(value: Any) -> str:
    """A date alone (``2022-10-01`` or ``01/10/2022``, as exports write it) is midnight in Jakarta
    (WIB); a datetime goes to the contract as it is."""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value).strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=WIB).isoformat()
        except ValueError:
            pass
    return text


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(str(value).replace(",", "."))
        except ValueError:
            raise ValueError(f"{name}: not a number") from None
    if name in _FLOATS:
        return number
    if not number.is_integer():
        raise ValueError(f"{name}: not a whole number")
    return int(number)


def _flag(text: Any) -> bool:
    value = str(text if text is not None else "").strip().upper()
    if value in _YES:
        return True
    if value in _NO or value == "NONE":
        return False
    raise ValueError("a programme flag is 1/0, Y/T, YA/TIDAK or TRUE/FALSE")


def row_to_household(row: dict[str, Any], mapping: ColumnMapping, as_of: datetime) -> dict[str, Any]:
    """One export row as a ``households`` document (not validated yet). Raises ValueError naming the
    field for a cell that cannot be read."""
    doc: dict[str, Any] = {}
    for name, column in mapping.fields.items():
        value = row.get(column)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        if name in _INTS or name in _FLOATS:
            doc[name] = _number(name, value)
        elif name == "village_code":
            doc[name] = _village_code(str(value))
        elif name == "updated_at":
            doc[name] = _updated_at(value)
        else:
            doc[name] = value if isinstance(value, str) else str(value)
    programs = []
    for program, column in mapping.programs.items():
        try:
            if _flag(row.get(column)):
                programs.append(program)
        except ValueError as exc:
            raise ValueError(f"programs.{program}: {exc}") from None
    doc["programs"] = programs
    doc.setdefault("updated_at", as_of.isoformat())
    return doc


def _reject(exc: ValueError) -> tuple[str, str]:
    """The field and the reason of a rejected row, without the input value (personal data)."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_input=False, include_url=False)[0]
        return ".".join(str(p) for p in first["loc"]) or "-", first["msg"]
    field_, _, reason = str(exc).partition(": ")
    return field_, reason


# ------------------------------------------------------------------ readers
Rows = Iterator[tuple[int, dict[str, Any]]]


def _csv_rows(fh: IO[bytes], delimiter: str) -> tuple[list[str], Rows]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text, delimiter=delimiter)
    columns = list(reader.fieldnames or [])

    def rows() -> Rows:
        for row in reader:
            yield reader.line_num, row

    return columns, rows()


def _parquet_rows(path: Path, batch_rows: int = 10_000) -> tuple[list[str], int, Rows]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    columns = parquet.schema_arrow.names

    def rows() -> Rows:
        number = 0
        for batch in parquet.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                number += 1
                yield number, row

    return columns, parquet.metadata.num_rows, rows()


# ------------------------------------------------------------------ checkpoints
@dataclass
class ImportStats:
    rows: int = 0
    published: int = 0
    rejected: int = 0
    tombstones: int = 0
    skipped: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    notes: list[str] = field(default_factory=list)


def _fingerprint(path: Path) -> str:
    """The file's identity for resuming: its path, size, modification time and first MiB."""
    st = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:24]


class Checkpoint:
    def __init__(self, directory: Path, path: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{_fingerprint(path)}.json"

    def load(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def save(self, **state: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------ the import
def import_registry(
    settings: Settings,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: ColumnMapping | None = None,
    rejects: Path | None = None,
    snapshot: bool = False,
    restart: bool = False,
    as_of: datetime | None = None,
    delimiter: str = ",",
    topic: str | None = None,
    producer_factory: Callable[[Settings], Any] | None = None,
    progress_stream: TextIO | None = None,
) -> ImportStats:
    import time

    from streams.admin import producer
    from streams.topics import Topic, physical_name

    mapping = mapping or ColumnMapping.load(None)
    fmt = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if not path.is_file():
        raise DampakError(f"no file {path}")
    as_of = as_of or datetime.fromtimestamp(path.stat().st_mtime, UTC)
    topic = topic or physical_name(Topic.HOUSEHOLDS, settings)
    rejects = rejects or path.with_name(path.name + ".rejects.csv")
    checkpoint = Checkpoint(settings.data_dir / "imports", path)
    state = {} if restart else checkpoint.load()
    stats = ImportStats(resumed_from=state.get("rows", 0))
    context = settings.contracts.context()
    ids = array("q")  # hash of every household id in the file (--snapshot)

    with contextlib.ExitStack() as stack:
        if fmt == "csv":
            fh = stack.enter_context(open(path, "rb"))
            columns, rows = _csv_rows(fh, delimiter)
            total, position = os.fstat(fh.fileno()).st_size, fh.tell
        elif fmt == "parquet":
            columns, total, rows = _parquet_rows(path)
            position = None
        else:
            raise DampakError(f"format {fmt!r}: csv or parquet")
        mapping.check_columns(columns)
        if stats.resumed_from and rejects.exists():
            out = stack.enter_context(open(rejects, "r+", encoding="utf-8", newline=""))
            out.truncate(state.get("rejects_bytes", 0))
            out.seek(0, os.SEEK_END)
        else:
            out = stack.enter_context(open(rejects, "w", encoding="utf-8", newline=""))
        stats.published, stats.rejected = state.get("published", 0), state.get("rejected", 0)
        writer = csv.writer(out)
        if out.tell() == 0:
            writer.writerow(["line", "field", "reason"])
        prod = (producer_factory or producer)(settings)
        stack.callback(prod.close)
        progress = Progress(f"import-registry {path.name}", total, stream=progress_stream)
        started = time.monotonic()

        def save() -> None:
            prod.flush()
            out.flush()
            checkpoint.save(
                rows=stats.rows, published=stats.published, rejected=stats.rejected, rejects_bytes=out.tell()
            )

        try:
            for number, row in rows:
                index = stats.rows + 1  # stats.rows counts rows fully handled (sent or rejected)
                if index % 4096 == 0:
                    progress.update(index, position() if position else index)
                try:
                    doc = row_to_household(row, mapping, as_of)
                    household = Household.model_validate_json(orjson.dumps(doc), context=context)
                except ValueError as exc:
                    if index > stats.resumed_from:
                        writer.writerow([number, *_reject(exc)])
                        stats.rejected += 1
                    stats.rows = index
                    continue
                if snapshot:
                    ids.append(hash(household.household_id))
                if index <= stats.resumed_from:
                    stats.skipped += 1
                else:
                    prod.send(
                        topic,
                        key=household.household_id.encode(),
                        value=household.model_dump_json(exclude_defaults=True).encode(),
                    )
                    stats.published += 1
                stats.rows = index
                if index % CHECKPOINT_ROWS == 0:
                    save()
        except KeyboardInterrupt:
            save()
            raise DampakError(
                f"interrupted at row {stats.rows:,} ({stats.published:,} published): run the same "
                "command again to resume"
            ) from None
        save()
        if snapshot:
            stats.tombstones = _tombstone_absent(settings, prod, topic, ids)
            prod.flush()
        progress.finish(stats.rows, total if position else stats.rows)
        stats.seconds = time.monotonic() - started
    checkpoint.clear()
    return stats


def _tombstone_absent(settings: Settings, prod: Any, topic: str, ids: array[int]) -> int:
    """Send a tombstone for every household the registry holds that the snapshot lacks. The
    registry is read from its compacted changelog topic (key: the household id as JSON; a removed
    household's state has no village)."""
    import numpy as np

    from streams.admin import read_topic

    present = np.sort(np.frombuffer(ids, dtype=np.int64)) if len(ids) else np.zeros(0, np.int64)
    changelog = f"{settings.app_id}-registry-changelog"
    absent: dict[str, bool] = {}
    try:
        for records in read_topic(settings, changelog):
            batch = [(k, r.value) for r in records if (k := _household_id(r.key)) is not None]
            hashes = np.fromiter((hash(key) for key, _ in batch), np.int64, len(batch))
            idx = np.searchsorted(present, hashes)
            found = (idx < len(present)) & (present[np.minimum(idx, len(present) - 1)] == hashes)
            for (key, value), in_file in zip(batch, found, strict=True):
                if not in_file:
                    absent[key] = _live(value)
    except DampakError as exc:
        raise DampakError(f"--snapshot: no registry changelog {changelog!r} (has a worker run?)") from exc
    removed = [key for key, live in absent.items() if live]
    for key in removed:
        prod.send(topic, key=key.encode(), value=None)
    return len(removed)


def _household_id(key: bytes | None) -> str | None:
    """A registry changelog key: the household id, JSON-encoded (Faust's table key codec)."""
    try:
        value = orjson.loads(key) if key is not None else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) else None


def _live(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        return bool(orjson.loads(value).get("village_code"))
    except (orjson.JSONDecodeError, AttributeError):
        return False

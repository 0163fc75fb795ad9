"""``dampak import-registry``: a DTSEN/DTKS export (CSV or Parquet) into ``households``.

The file is streamed (CSV row by row, Parquet batch by batch), each row mapped onto the
``households`` contract and validated as the worker will validate it, then published keyed by
``household_id``. A row that fails goes to the rejects file with its line number (CSV; row number
for Parquet), the field and the reason, never its values (they hold personal data). A CSV record
that breaks the format (``streams.commands.registry_files``) is a reject too, never lost with the rows after.

Village codes must be Kemendagri's. A BPS code (2-2-3-3 digits) is rejected with the reason
``BPS code, not Kemendagri``, never mapped; 10 digits without dots could be either, and are read
as Kemendagri's only with ``--codes kemendagri`` (``Codes``). No BPS-Kemendagri bridge is
shipped: BPS publishes it only as a web service (``sig.bps.go.id/bridging-kode``), with no
licence to copy it.

Resume: every ``CHECKPOINT_ROWS`` rows the producer is flushed and the row reached is recorded in
``<data dir>/imports/<file fingerprint>.json``. Run the same command again after an interruption
and the rows before the checkpoint are read but not published again (Ctrl-C checkpoints the row it
stopped at; a killed import sends again at most the rows after its last checkpoint, which the
registry absorbs: the same household with the same ``updated_at`` changes nothing).

Snapshot (``--snapshot``): the file is the whole registry. Households the registry holds (read
from its changelog topic) that are absent from the file get a tombstone. Only 8 bytes per row of
the file are held for this. Every row's household id counts as present, rejected rows' included,
and while any row was rejected nothing is removed without ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import re
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, TextIO

import orjson
from pydantic import ValidationError

from schemas.households import PROGRAMS, Household
from streams.commands.registry_files import Broken, file_format, open_source
from streams.errors import DampakError
from streams.ops.progress import Progress
from streams.settings import Settings
from streams.topics import LocalTable, Topic, changelog_name, physical_name

__all__ = [
    "BPS_CODE",
    "BPS_NO_BRIDGE",
    "BPS_UNDOTTED",
    "CODES",
    "DEFAULT_MAPPING",
    "VISIT_COLUMNS",
    "Codes",
    "ColumnMapping",
    "ImportStats",
    "cmd_import_registry",
    "household_id_of",
    "import_registry",
    "read_mapping",
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
    # When the family left PKH (graduasi); empty for a family that never did.
    "pkh_graduated_at": "TANGGAL_GRADUASI_PKH",
}
WIB = timezone(timedelta(hours=7))

#: How the village codes of a file are read (``--codes``). Kemendagri's village codes are 2-2-2-4
#: digits (``32.03.11.2003``: province, regency, district, village; Permendagri 72/2019), BPS's
#: 2-2-3-3 (``3203210014``, the same village, Cijedil in Cugenang, Cianjur; Peraturan Kepala BPS
#: 151/2014). Written without separators both are 10 digits, so the shape cannot tell them apart,
#: and a BPS code split as Kemendagri lands in another district (``32.03.21``, Sindangbarang, for
#: Cijedil) and, where the BPS district code does not end in 0 (a district split off later), can
#: name a real village elsewhere, silently. So:
#:
#: - ``detect`` (the default): a dotted ``PP.KK.CC.DDDD`` code is Kemendagri's; 10 digits without
#:   separators are rejected (``BPS_UNDOTTED``), as is a 2-2-3-3 code with separators (``BPS_CODE``).
#: - ``kemendagri``: the file's codes are Kemendagri's, and 10 undotted digits are read as
#:   2-2-2-4; a 2-2-3-3 code with separators is still BPS's, and rejected.
#: - ``bps``: the file's codes are BPS's; every row is rejected (``BPS_NO_BRIDGE``), since dampak
#:   ships no bridge from BPS to Kemendagri codes (see ``_village_code``).
Codes = Literal["detect", "kemendagri", "bps"]
CODES: tuple[Codes, ...] = ("detect", "kemendagri", "bps")
#: The reasons in the rejects file of a village code that is, or may be, BPS's.
BPS_CODE = "BPS code, not Kemendagri"
BPS_UNDOTTED = f"{BPS_CODE} (write Kemendagri codes with dots, or pass --codes kemendagri)"
BPS_NO_BRIDGE = (
    f"{BPS_CODE} (--codes bps: dampak ships no bridge from BPS to Kemendagri codes; "
    "convert them to Kemendagri's and import again)"
)
_BPS_SEPARATED = re.compile(r"[0-9]{2}[.\- ][0-9]{2}[.\- ][0-9]{3}[.\- ][0-9]{3}")
_UNDOTTED = re.compile(r"[0-9]{10}")
_INTS = ("members", "desil", "elderly", "disabled", "under5", "pregnant")
_FLOATS = ("lat", "lon")
_YES = {"1", "Y", "YA", "TRUE", "T1"}
_NO = {"", "0", "N", "T", "TIDAK", "FALSE"}


#: Columns ``import-registry`` never reads (no contract field holds them: the pipeline does not
#: need them) but ``dampak export reassessment`` writes out for the officer who visits: the name of
#: the head of the family, and the address. A mapping file may name them for both commands.
VISIT_COLUMNS: dict[str, str] = {"head_name": "NAMA_KEPALA_KELUARGA", "address": "ALAMAT"}
#: Programmes renamed since exports were first mapped: BPNT became Program Sembako in 2020.
_RENAMED_PROGRAMS: dict[str, str] = {"BPNT": "SEMBAKO"}


def read_mapping(path: Path | None) -> dict[str, Any]:
    """dampak field -> column: the defaults (``DEFAULT_MAPPING`` and ``VISIT_COLUMNS``) with the
    entries of a JSON file over them. Raises DampakError for a file that cannot be read, is not
    a JSON object, or names a field dampak does not know."""
    mapping: dict[str, Any] = {**DEFAULT_MAPPING, **VISIT_COLUMNS}
    if path is not None:
        try:
            given = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DampakError(f"--mapping {path}: {exc}") from exc
        if not isinstance(given, dict):
            raise DampakError(f"--mapping {path}: a JSON object of dampak field -> column")
        unknown = set(given) - set(mapping)
        if unknown:
            raise DampakError(f"--mapping {path}: unknown fields {sorted(unknown)}")
        mapping.update(given)
    return mapping


@dataclass(frozen=True)
class ColumnMapping:
    """The columns ``import-registry`` reads: each contract field's, and each programme's flag."""

    fields: dict[str, str]
    programs: dict[str, str]

    @classmethod
    def load(cls, path: Path | None) -> ColumnMapping:
        """The default mapping, with the entries of a JSON file (dampak field -> column) over it."""
        mapping = read_mapping(path)
        for name in VISIT_COLUMNS:
            mapping.pop(name)
        programs: dict[str, str] = {}
        for program, column in dict(mapping.pop("programs") or {}).items():
            name = str(program)
            programs[name if name in PROGRAMS else _RENAMED_PROGRAMS.get(name, name)] = str(column)
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


def _village_code(text: str, codes: Codes = "detect") -> str:
    """The Kemendagri village code a cell holds, dotted (``PP.KK.CC.DDDD``). Raises ValueError
    (``village_code: <reason>``) for a code that is, or may be, a BPS code; see ``Codes``.

    Nothing is converted from BPS to Kemendagri: BPS publishes its bridge between the two
    (``sig.bps.go.id/bridging-kode``) only as a web service, with no licence to copy it, so dampak
    ships none. Anything else goes to the contract as it is, which accepts only codes present in
    the Kemendagri reference."""
    text = text.strip()
    if codes == "bps":
        raise ValueError(f"village_code: {BPS_NO_BRIDGE}")
    if _BPS_SEPARATED.fullmatch(text):
        raise ValueError(f"village_code: {BPS_CODE}")
    if _UNDOTTED.fullmatch(text):
        if codes != "kemendagri":
            raise ValueError(f"village_code: {BPS_UNDOTTED}")
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
        except (ValueError, OverflowError):
            raise ValueError(f"{name}: not a number") from None
    if not math.isfinite(number):  # NaN, Infinity, or digits past a float's range
        raise ValueError(f"{name}: not a finite number")
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


def _cell(name: str, value: Any) -> Any:
    """A cell as text, stripped (bytes from a Parquet binary column decoded as UTF-8); other
    values as they are. Raises ValueError for bytes that are not UTF-8 and for text holding a
    control or format character (NUL, a right-to-left override): no contract field has one."""
    if type(value) is str:  # the common case first: this runs for every cell of every row
        value = value.strip()
    elif isinstance(value, bytes):
        try:
            value = value.decode().strip()
        except UnicodeDecodeError:
            raise ValueError(f"{name}: not UTF-8 text") from None
    elif isinstance(value, str):
        value = str(value).strip()
    else:
        return value
    if not value.isprintable():
        raise ValueError(f"{name}: a control or format character")
    return value


def household_id_of(row: dict[str, Any], mapping: ColumnMapping) -> str | None:
    """The household id a row gives, as ``row_to_household`` reads it, before any validation
    (``--snapshot`` counts it present even when the row is rejected)."""
    try:
        value = _cell("household_id", row.get(mapping.fields["household_id"]))
    except ValueError:
        return None
    return None if value is None or value == "" else str(value)


def row_to_household(
    row: dict[str, Any], mapping: ColumnMapping, as_of: datetime, codes: Codes = "detect"
) -> dict[str, Any]:
    """One export row as a ``households`` document (not validated yet). Raises ValueError naming the
    field for a cell that cannot be read, and for a village code that is, or may be, BPS's
    (``codes``: see ``Codes``)."""
    if codes == "bps":  # every row, whatever its cell holds
        raise ValueError(f"village_code: {BPS_NO_BRIDGE}")
    doc: dict[str, Any] = {}
    for name, column in mapping.fields.items():
        value = _cell(name, row.get(column))
        if value is None or value == "":
            continue
        if name in _INTS or name in _FLOATS:
            doc[name] = _number(name, value)
        elif name == "village_code":
            doc[name] = _village_code(str(value), codes)
        elif name in ("updated_at", "pkh_graduated_at"):
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
    force: bool = False,
    restart: bool = False,
    as_of: datetime | None = None,
    delimiter: str = ",",
    encoding: str | None = None,
    codes: Codes = "detect",
    topic: str | None = None,
    producer_factory: Callable[[Settings], Any] | None = None,
    progress_stream: TextIO | None = None,
) -> ImportStats:
    """Publish the export at ``path`` to ``households`` (or ``topic``), keyed by household id, and
    its rejects to ``rejects``; see the module docstring. Returns what was published, rejected,
    skipped (before the checkpoint resumed from) and removed (``snapshot``). ``codes`` says how
    village codes are read (``Codes``): a BPS code is rejected, never mapped.

    On failure it raises DampakError: when the file cannot be read (missing, its header, its
    encoding, a Parquet file's data), on Ctrl-C, and when ``snapshot`` would remove households
    while rows were rejected and ``force`` is not set (nothing is removed then, and the same
    command with ``force`` removes them without sending the rows again). The rows reached are
    checkpointed first (the producer flushed), so the same command resumes after them.

    Nothing is retried here: the Kafka producer retries delivery itself (until its delivery
    timeout). A Kafka error it raises (no metadata for the topic within its ``max_block_ms``)
    stops the import without a checkpoint; the same command then resumes from the last one (every
    ``CHECKPOINT_ROWS`` rows), and the registry absorbs the rows sent twice.
    """
    import time

    from streams.ops.admin import producer

    mapping = mapping or ColumnMapping.load(None)
    fmt = file_format(path, fmt)
    if codes not in CODES:
        raise DampakError(f"--codes {codes!r}: {', '.join(c for c in CODES if c != 'detect')}")
    if not path.is_file():
        raise DampakError(f"no file {path}")
    rejects = rejects or path.with_name(path.name + ".rejects.csv")
    checkpoint = Checkpoint(settings.data_dir / "imports", path)
    state = {} if restart else checkpoint.load()
    stats = ImportStats(resumed_from=state.get("rows", 0))

    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(path, fmt, delimiter, encoding, stats.notes))
        mapping.check_columns(source.columns)
        out = stack.enter_context(
            _opened_rejects(rejects, bool(stats.resumed_from), state.get("rejects_bytes", 0))
        )
        stats.published, stats.rejected = state.get("published", 0), state.get("rejected", 0)
        prod = (producer_factory or producer)(settings)
        stack.callback(prod.close)
        publisher = _Publisher(
            prod,
            topic or physical_name(Topic.HOUSEHOLDS, settings),
            mapping,
            as_of or datetime.fromtimestamp(path.stat().st_mtime, UTC),
            settings.contracts.context(),
            csv.writer(out),
            stats,
            array("q") if snapshot else None,
            codes,
        )
        progress = Progress(f"import-registry {path.name}", source.total, stream=progress_stream)
        started = time.monotonic()

        def save() -> None:
            prod.flush()
            out.flush()
            checkpoint.save(
                rows=stats.rows, published=stats.published, rejected=stats.rejected, rejects_bytes=out.tell()
            )

        try:
            for number, row in source.rows:
                index = stats.rows + 1  # stats.rows counts rows fully handled (sent or rejected)
                if index % 4096 == 0:
                    progress.update(index, source.position() if source.position else index)
                publisher.handle(index, number, row)
                if index % CHECKPOINT_ROWS == 0:
                    save()
        except KeyboardInterrupt:
            save()
            raise DampakError(
                f"interrupted at row {stats.rows:,} ({stats.published:,} published): run the same "
                "command again to resume"
            ) from None
        except DampakError as exc:
            save()  # the rows before stay published and are not sent again
            raise DampakError(
                f"{exc} (stopped after row {stats.rows:,}: {stats.published:,} published, "
                f"{stats.rejected:,} rejected)"
            ) from exc
        save()
        if codes == "bps":
            stats.notes.append(
                "--codes bps: every row rejected; dampak ships no bridge from BPS to Kemendagri codes "
                "(BPS publishes it only as a web service, without a licence to copy it)"
            )
        if source.csv_file is not None and source.csv_file.multiline:
            stats.notes.append(
                f"{source.csv_file.multiline:,} records span more than one line (quoted line breaks)"
            )
        if publisher.ids is not None:
            _remove_absent(settings, publisher, publisher.ids, rejects, force)
        progress.finish(stats.rows, source.total if source.position else stats.rows)
        stats.seconds = time.monotonic() - started
    checkpoint.clear()
    return stats


@contextlib.contextmanager
def _opened_rejects(rejects: Path, resumed: bool, checkpointed_bytes: int) -> Iterator[TextIO]:
    """The rejects file, open: on a resume, cut back to what it held at the checkpoint; else new,
    with its header."""
    resuming = resumed and rejects.exists()
    with open(rejects, "r+" if resuming else "w", encoding="utf-8", newline="") as out:
        if resuming:
            out.truncate(checkpointed_bytes)
            out.seek(0, os.SEEK_END)
        if out.tell() == 0:
            csv.writer(out).writerow(["line", "field", "reason"])
        yield out


@dataclass
class _Publisher:
    """Each row of the export: validated, then published (past the checkpoint resumed from) or
    written to the rejects file; counted in ``stats``."""

    prod: Any
    topic: str
    mapping: ColumnMapping
    as_of: datetime
    context: Any
    rejects: Any  # a csv writer
    stats: ImportStats
    #: The hash of every household id in the file (``--snapshot``), rejected rows' included.
    ids: array[int] | None
    codes: Codes = "detect"

    def handle(self, index: int, number: int, row: dict[str, Any] | Broken) -> None:
        """Handle row ``index`` of the export (``number``: its line in a CSV file, for the rejects)."""
        stats = self.stats
        if self.ids is not None:  # before validation: a rejected row's household is not absent
            key = household_id_of(row.row if isinstance(row, Broken) else row, self.mapping)
            if key is not None:
                self.ids.append(hash(key))
        try:
            if isinstance(row, Broken):
                raise _BrokenRow(row)
            doc = row_to_household(row, self.mapping, self.as_of, self.codes)
            household = Household.model_validate_json(orjson.dumps(doc), context=self.context)
        except ValueError as exc:
            if index > stats.resumed_from:
                self.rejects.writerow([number, *_reject(exc)])
                stats.rejected += 1
            stats.rows = index
            return
        if index <= stats.resumed_from:
            stats.skipped += 1
        else:
            self.prod.send(
                self.topic,
                key=household.household_id.encode(),
                value=household.model_dump_json(exclude_defaults=True).encode(),
            )
            stats.published += 1
        stats.rows = index


def _remove_absent(
    settings: Settings, publisher: _Publisher, ids: array[int], rejects: Path, force: bool
) -> None:
    """``--snapshot``: a tombstone for every household the registry holds that the file lacks.
    Raises DampakError, removing nothing, when rows were rejected and ``force`` is not set."""
    stats = publisher.stats
    absent = _absent_households(settings, ids)
    if absent and stats.rejected and not force:
        raise DampakError(
            f"--snapshot: {stats.rejected:,} of {stats.rows:,} rows were rejected (see "
            f"{rejects}; {stats.published:,} published), so the {len(absent):,} households "
            "the registry holds that the file lacks were NOT removed: a rejected row may be "
            "one of them. Correct the rejected rows and import again, or run the same "
            f"command with --force to remove those {len(absent):,} (rows are not sent again)"
        )
    for key in absent:
        publisher.prod.send(publisher.topic, key=key.encode(), value=None)
    stats.tombstones = len(absent)
    publisher.prod.flush()


class _BrokenRow(ValueError):
    """A record the reader could not read, rejected like a row that fails validation."""

    def __init__(self, broken: Broken) -> None:
        super().__init__(f"{broken.name}: {broken.reason}")


def _absent_households(settings: Settings, ids: array[int]) -> list[str]:
    """Every household the registry holds, live, that the snapshot lacks. The registry is read
    from its compacted changelog topic (key: the household id as JSON; a removed household's
    state has no village)."""
    import numpy as np

    from streams.ops.admin import read_topic

    present = np.sort(np.frombuffer(ids, dtype=np.int64)) if len(ids) else np.zeros(0, np.int64)
    changelog = changelog_name(LocalTable.REGISTRY, settings.app_id)
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
    return [key for key, live in absent.items() if live]


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


def cmd_import_registry(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import datetime

    from streams.ops.admin import check_kafka, check_topic_exists
    from streams.topics import Topic, physical_name

    mapping = ColumnMapping.load(args.mapping)
    check_kafka(settings)
    check_topic_exists(settings, physical_name(Topic.HOUSEHOLDS, settings))
    try:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    except ValueError as exc:
        raise DampakError(f"--as-of {args.as_of!r}: {exc}") from exc
    stats = import_registry(
        settings, args.file, fmt=args.format, mapping=mapping, rejects=args.rejects, snapshot=args.snapshot,
        force=args.force, restart=args.restart, as_of=as_of, delimiter=args.delimiter, encoding=args.encoding,
        codes=args.codes or "detect",
    )  # fmt: skip
    for note in stats.notes:
        print(f"dampak import-registry: {note}", file=sys.stderr)
    rate = stats.rows / stats.seconds if stats.seconds else 0.0
    print(
        f"{stats.rows:,} rows in {stats.seconds:.1f} s ({rate:,.0f} rows/s): {stats.published:,} published, "
        f"{stats.rejected:,} rejected"
        + (f" (see {args.rejects or str(args.file) + '.rejects.csv'})" if stats.rejected else "")
        + (f", resumed after row {stats.resumed_from:,}" if stats.resumed_from else "")
        + (f", {stats.tombstones:,} tombstones (absent from the snapshot)" if args.snapshot else "")
    )
    return 0

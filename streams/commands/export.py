"""``dampak export reassessment INCIDENT --registry FILE --out OUT.csv``: the households of an
incident to re-assess (``registry_candidates``), by name, for the officers who visit them.

ClickHouse holds each household only as its pseudonym (``household_ref``, HMAC-SHA256 of the id
under the pseudonym key); the raw ids are in the welfare office's own registry export. An
authorised officer who holds both the key (``DAMPAK_PRIVACY__HMAC_KEY``) and that export runs this
command: it reads the incident's candidates from ClickHouse (their pseudonyms, villages, reasons
and figures), pseudonymises every household id of the export here, in this process, with the
same key, and writes the households whose pseudonyms match to OUT.csv, sorted by district, then
village, then household id. ClickHouse never receives a raw id, and nothing is written back.

The export is read as ``dampak import-registry`` reads it (``streams.commands.registry_files``:
CSV or Parquet, an encoding detected or given, ``--mapping`` with the same JSON file); only the
household id column is required, and the head of the family's name and the address
(``VISIT_COLUMNS``) are copied when the file has them. A CSV record that breaks the format is
still matched by the id its first line shows, without its name and address.

The pseudonyms not found in the file (households the export does not list: unregistered ones,
or a registry older than the worker's) are counted, never printed. OUT.csv holds personal data:
it is created readable by its owner only (mode 0600) and never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from schemas.common import district_of
from schemas.regions import region_names
from streams.commands.registry_files import Broken, file_format, open_source
from streams.commands.registry_import import ColumnMapping, household_id_of, read_mapping
from streams.errors import DampakError
from streams.privacy import Pseudonymizer
from streams.settings import Settings

__all__ = [
    "CANDIDATES_SQL",
    "COLUMNS",
    "PAGE_ROWS",
    "REASONS",
    "Ask",
    "Candidate",
    "ExportStats",
    "cmd_export",
    "export_reassessment",
    "read_candidates",
]

logger = logging.getLogger(__name__)

#: Runs an analyst query with server-side parameters; returns (column names, rows).
Ask = Callable[[str, Mapping[str, Any]], tuple[list[str], list[tuple[Any, ...]]]]

#: Each reason code of ``registry_candidates`` in Indonesian, as the officers' list says it.
REASONS: dict[str, str] = {
    "unregistered": "tidak terdaftar",
    "unranked": "belum berperingkat",
    "above_desil_5": "desil di atas 5",
    "no_programme": "desil 1-5 tanpa program",
    "graduated": "keluar (graduasi) dari PKH",
}

#: The columns of OUT.csv. ``head_name`` and ``address`` are empty when the export has no such column.
COLUMNS = (
    "district_code", "district_name", "village_code", "village_name", "household_id", "head_name",
    "address", "reason", "reason_id", "heavy_damage", "displaced", "desil",
)  # fmt: skip

#: One incident's candidates, a page at a time (keyset pagination on the pseudonym), so that an
#: incident with more households than an analyst query's row cap is read whole.
CANDIDATES_SQL = """
SELECT household_ref, village_code, reason, heavy_damage, displacement, desil
FROM dampak.registry_candidates
WHERE incident_id = {incident:String} AND household_ref > {after:String}
ORDER BY household_ref
LIMIT {page:UInt32}
"""
#: Rows per page, at most: under the default analyst row cap (``DAMPAK_CLICKHOUSE__QUERY_MAX_ROWS``).
PAGE_ROWS = 5_000


@dataclass(frozen=True)
class Candidate:
    """A household to re-assess, as ClickHouse knows it: by its pseudonym only."""

    household_ref: str
    village_code: str
    reason: str
    heavy_damage: bool
    displaced: bool
    desil: int | None


@dataclass
class ExportStats:
    """What an export found: the incident's candidates, those matched in the file and those not
    (a count only), the file's rows and its unreadable records."""

    candidates: int = 0
    matched: int = 0
    not_found: int = 0
    rows: int = 0
    unreadable: int = 0
    not_found_by_reason: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Match:
    household_id: str
    head_name: str
    address: str
    #: Matched on a record that breaks the format: its id only (a later clean record replaces it).
    broken: bool


def read_candidates(ask: Ask, incident: str, page_rows: int = PAGE_ROWS) -> dict[str, Candidate]:
    """Every candidate of ``incident`` by pseudonym, read page by page."""
    candidates: dict[str, Candidate] = {}
    after = ""
    while True:
        columns, rows = ask(CANDIDATES_SQL, {"incident": incident, "after": after, "page": page_rows})
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            ref = str(record["household_ref"])
            desil = record["desil"]
            candidates[ref] = Candidate(
                household_ref=ref,
                village_code=str(record["village_code"]),
                reason=str(record["reason"]),
                heavy_damage=bool(record["heavy_damage"]),
                displaced=bool(record["displacement"]),
                desil=None if desil is None else int(desil),
            )
            after = max(after, ref)
        if len(rows) < page_rows:
            return candidates


def _check_refs(candidates: Mapping[str, Candidate], settings: Settings) -> None:
    """Raise DampakError when ClickHouse's pseudonyms were made under another key id than this
    process's (a rotated key): nothing could match."""
    prefix = f"{settings.privacy.key_id}:"
    other = {ref.partition(":")[0] for ref in candidates if not ref.startswith(prefix)}
    if other:
        raise DampakError(
            f"ClickHouse holds pseudonyms of key {sorted(other)[0]!r} and this key is "
            f"{settings.privacy.key_id!r}: set DAMPAK_PRIVACY__HMAC_KEY and __KEY_ID to the workers' key"
        )


def _match_file(
    registry: Path,
    fmt: str,
    columns: Mapping[str, str],
    delimiter: str,
    encoding: str | None,
    candidates: Mapping[str, Candidate],
    pseudo: Pseudonymizer,
    stats: ExportStats,
) -> dict[str, _Match]:
    """The rows of the export whose household id's pseudonym is a candidate's, by pseudonym. The
    file is streamed: only the matched rows are kept."""
    ids = ColumnMapping({"household_id": columns["household_id"]}, {})
    matches: dict[str, _Match] = {}
    with open_source(registry, fmt, delimiter, encoding, stats.notes) as source:
        if columns["household_id"] not in source.columns:
            raise DampakError(
                f"{registry.name} has no column {columns['household_id']!r} for household_id (columns: "
                f"{', '.join(source.columns[:20])}); map it with --mapping"
            )
        visit = {name: column for name in ("head_name", "address") if (column := columns.get(name, ""))}
        for name, column in list(visit.items()):
            if column not in source.columns:
                del visit[name]
        for _, row in source.rows:
            stats.rows += 1
            broken = isinstance(row, Broken)
            cells = row.row if isinstance(row, Broken) else row
            stats.unreadable += broken
            household_id = household_id_of(cells, ids)
            if household_id is None:
                continue
            ref = pseudo.ref("household_id", household_id)
            if ref not in candidates or (ref in matches and (broken or not matches[ref].broken)):
                continue
            found = {name: "" if broken else _text(cells.get(column)) for name, column in visit.items()}
            matches[ref] = _Match(household_id, found.get("head_name", ""), found.get("address", ""), broken)
    return matches


def _text(value: Any) -> str:
    """A cell as one line of text (a quoted line break in an address becomes a space)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


def _lines(candidates: Mapping[str, Candidate], matches: Mapping[str, _Match]) -> list[tuple[str, ...]]:
    """OUT.csv's rows, sorted by district, village and household id."""
    names = region_names()
    lines: list[tuple[str, ...]] = []
    for ref, match in matches.items():
        c = candidates[ref]
        district = district_of(c.village_code)
        lines.append(
            (
                district, names.get(district, ""), c.village_code, names.get(c.village_code, ""),
                match.household_id, match.head_name, match.address, c.reason, REASONS.get(c.reason, ""),
                str(int(c.heavy_damage)), str(int(c.displaced)), "" if c.desil is None else str(c.desil),
            )
        )  # fmt: skip
    return sorted(lines, key=lambda line: (line[0], line[2], line[4]))


@contextlib.contextmanager
def _private_file(out: Path, force: bool) -> Iterator[IO[str]]:
    """A new file that becomes ``out`` when the block ends without error, readable by its owner
    only; ``out`` is never left half-written. Raises DampakError when ``out`` exists and ``force``
    is not set."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crash: made anew, so that its mode is ours
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        if out.exists() and not force:
            raise DampakError(f"{out} exists (written meanwhile?): give --force to overwrite it")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def export_reassessment(
    settings: Settings,
    incident: str,
    registry: Path,
    out: Path,
    *,
    fmt: str | None = None,
    mapping: Path | None = None,
    delimiter: str = ",",
    encoding: str | None = None,
    force: bool = False,
    ask: Ask | None = None,
) -> ExportStats:
    """Write the households of ``incident`` to re-assess that the export at ``registry`` lists
    to ``out`` (see the module docstring); ``ask`` runs the query (default: an analyst query on
    the configured ClickHouse). Returns the counts.

    Raises DampakError, writing nothing, when the pseudonym key is the built-in development key
    (or another placeholder) outside development, when ``out`` exists and ``force`` is not set,
    when the export cannot be read or lacks the household id column, when the incident has no
    candidates, when ClickHouse's pseudonyms are of another key id, and when the file has rows
    but none matches (the wrong key, or the wrong file)."""
    if settings.privacy.uses_placeholder_key and not settings.dev_mode:
        which = "the built-in development key" if settings.privacy.uses_default_key else "a placeholder"
        raise DampakError(
            f"the pseudonym key is {which}: set DAMPAK_PRIVACY__HMAC_KEY (and __KEY_ID) to the key the "
            "workers use"
        )
    if out.exists() and not force:
        raise DampakError(f"{out} exists: give --force to overwrite it")
    if not registry.is_file():
        raise DampakError(f"no file {registry}")
    if out.resolve() == registry.resolve():
        raise DampakError(f"--out {out} is the registry export itself")
    if not out.parent.is_dir():
        raise DampakError(f"no directory {out.parent} for --out")
    columns = {k: str(v) for k, v in read_mapping(mapping).items() if k != "programs" and v}
    if "household_id" not in columns:
        raise DampakError("the mapping gives no column for household_id")
    fmt = file_format(registry, fmt)
    if ask is None:
        ask = _analyst_query(settings)

    stats = ExportStats()
    candidates = read_candidates(ask, incident, min(PAGE_ROWS, settings.clickhouse.query_max_rows))
    stats.candidates = len(candidates)
    if not candidates:
        raise DampakError(
            f"no households to re-assess in incident {incident!r} (is the id right? `dampak incident list`)"
        )
    _check_refs(candidates, settings)
    pseudo = Pseudonymizer(settings.privacy)
    matches = _match_file(registry, fmt, columns, delimiter, encoding, candidates, pseudo, stats)
    stats.matched = len(matches)
    stats.not_found = stats.candidates - stats.matched
    stats.not_found_by_reason.update(c.reason for ref, c in candidates.items() if ref not in matches)
    if not matches and stats.rows:
        raise DampakError(
            f"none of the {stats.rows:,} households of {registry.name} is among the {stats.candidates:,} "
            f"to re-assess: is DAMPAK_PRIVACY__HMAC_KEY the workers' key, and is the file the registry "
            "they imported? Nothing was written"
        )
    if any(m.broken for m in matches.values()):
        stats.notes.append(
            f"{sum(m.broken for m in matches.values()):,} households were matched on a record that "
            "breaks the CSV format: their name and address are left empty"
        )
    unknown = sorted({c.reason for c in candidates.values()} - set(REASONS))
    if unknown:
        stats.notes.append(
            f"reasons without an Indonesian label (reason_id left empty): {', '.join(unknown)}"
        )
    with _private_file(out, force) as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(_lines(candidates, matches))
    return stats


def _analyst_query(settings: Settings) -> Ask:
    """An analyst query on the configured ClickHouse (through the worker that holds the embedded
    engine, when one does)."""
    from sinks.analyst import query
    from sinks.errors import QueryRejected

    token = settings.web.token.get_secret_value() if settings.web.token else None

    def ask(sql: str, parameters: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            return query(settings.clickhouse_target, sql, parameters, "analyst", token)
        except QueryRejected as exc:
            raise DampakError(f"ClickHouse: {exc}") from exc

    return ask


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """``dampak export reassessment``: see the module docstring."""
    if args.what != "reassessment":
        raise DampakError(f"export {args.what!r}: reassessment")
    stats = export_reassessment(
        settings, args.incident, args.registry, args.out, fmt=args.format, mapping=args.mapping,
        delimiter=args.delimiter, encoding=args.encoding, force=args.force,
    )  # fmt: skip
    for note in stats.notes:
        print(f"dampak export: {note}", file=sys.stderr)
    by_reason = ", ".join(f"{n:,} {reason}" for reason, n in sorted(stats.not_found_by_reason.items()))
    print(
        f"{stats.matched:,} of {stats.candidates:,} households to re-assess in {args.incident} matched in "
        f"{args.registry.name} ({stats.rows:,} rows) and written to {args.out}; {stats.not_found:,} "
        "pseudonyms not found in the file" + (f" ({by_reason})" if by_reason else "")
    )
    return 0

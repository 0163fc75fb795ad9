"""Rendering query results for the terminal: an aligned table, JSON lines or TSV.

Times are stored and read in UTC. Given a ``zone`` (a place's legal zone, from
``schemas.regions.time_zone``: ("WIB", 7), ("WITA", 8) or ("WIT", 9), Keputusan Presiden No. 41
Tahun 1987), datetime values are printed on that zone's clock with its name
("2022-11-21 13:21:10 WIB"); without one, as they are read (UTC).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

__all__ = ["print_rows"]

logger = logging.getLogger(__name__)


def print_rows(
    columns: list[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    out: IO[str],
    zone: tuple[str, int] | None = None,
) -> None:
    """Write ``rows`` to ``out`` as ``fmt`` ("json" lines, "tsv" or an aligned "table"); datetime
    values in ``zone`` (name, hours ahead of UTC) when given. A naive datetime is UTC."""
    if zone is not None:
        rows = [[_in_zone(v, zone) for v in row] for row in rows]
    if fmt == "json":
        for row in rows:
            out.write(
                json.dumps(dict(zip(columns, row, strict=True)), default=str, ensure_ascii=False) + "\n"
            )
    elif fmt == "tsv":
        out.write("\t".join(columns) + "\n")
        for row in rows:
            out.write("\t".join("" if v is None else str(v) for v in row) + "\n")
    else:
        cells = [[("" if v is None else str(v)) for v in row] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
        out.write("  ".join("-" * w for w in widths) + "\n")
        for r in cells:
            out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
        out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _in_zone(value: Any, zone: tuple[str, int]) -> Any:
    """A datetime as the clock of ``zone`` shows it, named ("2022-11-21 13:21:10 WIB"); any other
    value as it is."""
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    name, hours = zone
    return f"{value + timedelta(hours=hours)} {name}"

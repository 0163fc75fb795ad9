"""Rendering query results for the terminal: an aligned table, JSON lines or TSV."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["print_rows"]

logger = logging.getLogger(__name__)


def print_rows(columns: list[str], rows: Sequence[Sequence[Any]], fmt: str, out: IO[str]) -> None:
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

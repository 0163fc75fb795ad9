"""Reading registry exports: encodings detected from their bytes, and CSV records checked against
the physical lines they came from (a broken record gives back the lines it took)."""

from __future__ import annotations

import codecs
import io

import pytest

from streams.commands.registry_files import Broken, CsvFile, detect_encoding
from streams.errors import DampakError


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (codecs.BOM_UTF8 + b"ID,KODE\n", ("utf-8", 3, False)),
        ("ID,KODE\n".encode("utf-16"), ("utf-16", 0, False)),
        ("ID,KODE\n".encode("utf-32"), ("utf-32", 0, False)),
        ("ID,KODE\n".encode("utf-16-le"), ("utf-16-le", 0, True)),
        ("ID,KODE\n".encode("utf-16-be"), ("utf-16-be", 0, True)),
        ("ID,José\n".encode(), ("utf-8", 0, True)),
        ("ID,José\n".encode("latin-1"), ("cp1252", 0, True)),
    ],
)
def test_the_encoding_is_read_from_the_bytes(head: bytes, expected: tuple[str, int, bool]) -> None:
    assert detect_encoding(head) == expected


def read(text: str) -> list[tuple[int, list[str] | str]]:
    file = CsvFile(io.BytesIO(text.encode()))
    return [(n, r.reason if isinstance(r, Broken) else list(r.values())) for n, r in file.rows()]


def test_a_broken_record_rejects_its_first_line_and_gives_back_the_others() -> None:
    rows = read('A,B,C\n1,"x,2\n3,y,z\n\n4,"p\nq",r\n5,"a"b,c\n6,t,u\n')
    assert rows == [
        # The quote opened on line 2 closes on line 5, before "p": text after a closing quote.
        (2, "a quote inside a quoted field (',' expected after '\"')"),
        (3, ["3", "y", "z"]),
        (5, ["4", "p\nq", "r"]),
        (7, "a quote inside a quoted field (',' expected after '\"')"),
        (8, ["6", "t", "u"]),
    ]


def test_a_stray_quote_does_not_swallow_the_records_after_it() -> None:
    # The quote opened on line 2 closes cleanly at the end of line 5, taking lines 3 and 4 along.
    rows = read('A,B,C\n1,"x,2\n3,y,z\n4,y,z\n5,y,z"\n')
    assert rows[0] == (2, "a quote that runs into the next records")
    assert [n for n, _ in rows[1:]] == [3, 4, 5]


def test_an_unreadable_header_stops_the_import() -> None:
    with pytest.raises(DampakError, match="line 1: the header cannot be read: a quote not closed"):
        CsvFile(io.BytesIO(b'"A,B\n1,2\n'))
    with pytest.raises(DampakError, match="--delimiter ';;'"):
        CsvFile(io.BytesIO(b"A,B\n"), ";;")

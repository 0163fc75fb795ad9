"""``dampak feed bmkg`` trusts nothing it fetches: only http(s), a byte cap and a total deadline
per fetch, no DTD in XML, malformed state records skipped, and BMKG's "-" read as nothing. Driven
against a local HTTP server (tests/bmkg_http.py) with a fake producer."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.alerts import parse_alerts
from streams.commands.feeds import BmkgFeed
from streams.settings import Settings
from tests.bmkg_http import BILLION_LAUGHS, BmkgServer, drip, endless, header_drip, redirect
from tests.unit.fakes import FakeRecord

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "disaster-alerts"
DTD = "it declares a DTD; entities are never expanded"
CIANJUR = (FIXTURES / "bmkg-autogempa-cianjur-2022.json").read_bytes()
BANJIR = (FIXTURES / "cap-nowcast-banjir.xml").read_bytes()


class FakeProducer:
    """kafka-python's producer as the feed uses it; refuses what its 1 MiB request cannot hold."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, bytes]]] = []

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        from kafka.errors import MessageSizeTooLargeError

        if len(value) > 1024 * 1024:
            raise MessageSizeTooLargeError("The message is larger than max_request_size")
        self.sent.append((key.decode(), value, dict(headers)))

    def flush(self) -> None:
        pass

    @property
    def keys(self) -> list[str]:
        return [k for k, _, _ in self.sent]


@pytest.fixture
def server() -> Iterator[BmkgServer]:
    s = BmkgServer()
    yield s
    s.close()


def feed(
    tmp_path: Path, *, json_urls: Sequence[str] = (), nowcast: str = "", **limits: Any
) -> tuple[BmkgFeed, FakeProducer]:
    settings = Settings(
        data_dir=tmp_path,
        feed={"bmkg_json_urls": list(json_urls), "bmkg_nowcast_url": nowcast, "tries": 2,
              "retry_initial_s": 0.05, "timeout_s": 2, **limits},
    )  # fmt: skip
    producer = FakeProducer()
    return BmkgFeed(settings, producer, "disaster-alerts"), producer


def gempa(**fields: str) -> dict[str, str]:
    return {**orjson.loads(CIANJUR)["Infogempa"]["gempa"], **fields}


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def rss(*links: str) -> bytes:
    items = "".join(f"<item><link>{link}</link></item>" for link in links)
    return f"<?xml version='1.0'?><rss version='2.0'><channel>{items}</channel></rss>".encode()


# ---------------------------------------------------------------------------- only http(s)
def test_an_rss_link_to_a_local_file_is_refused(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    local = tmp_path / "polygon.xml"
    local.write_bytes((FIXTURES / "cap-nowcast-polygon.xml").read_bytes())
    server.routes["/rss.xml"] = (200, rss(local.as_uri(), f"{server.url}/banjir.xml"))
    server.routes["/banjir.xml"] = (200, BANJIR)
    bmkg, producer = feed(tmp_path, nowcast=f"{server.url}/rss.xml")

    result = bmkg.poll()

    assert producer.keys == ["cap-CJB20200225010000"]  # the local file was never opened
    assert result.failed == [local.as_uri()]
    assert f"bmkg: {local.as_uri()} refused: only http and https URLs are fetched" in warnings(caplog)


def test_a_redirect_to_a_local_file_is_refused(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/autogempa.json"] = redirect("file:///etc/hostname")
    bmkg, producer = feed(tmp_path, json_urls=[f"{server.url}/autogempa.json"])

    result = bmkg.poll()

    assert producer.sent == [] and result.failed == [f"{server.url}/autogempa.json"]
    [line] = warnings(caplog)
    assert line == (f"bmkg: {server.url}/autogempa.json refused: redirected to file:///etc/hostname, "
                    "not an http(s) URL")  # fmt: skip


# ---------------------------------------------------------------------------- bytes and time
def test_a_body_larger_than_the_cap_is_refused(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A valid bulletin, padded past the cap: announced by Content-Length, or streamed without one.
    server.routes["/padded.json"] = (200, CIANJUR + b" " * 100_000)
    server.routes["/endless.json"] = endless(limit=16 * 1024 * 1024)
    bmkg, producer = feed(tmp_path, json_urls=[f"{server.url}/padded.json", f"{server.url}/endless.json"],
                          max_bytes=64 * 1024)  # fmt: skip

    result = bmkg.poll()

    assert producer.sent == [] and len(result.failed) == 2
    assert warnings(caplog) == [
        f"bmkg: {server.url}/padded.json refused: {len(CIANJUR) + 100_000} bytes announced, more than the "
        "65536 accepted",
        f"bmkg: {server.url}/endless.json refused: the body is larger than the 65536 bytes accepted",
    ]


def test_a_fetch_ends_at_its_deadline_however_slowly_bytes_come(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Each piece arrives well within the 2 s socket timeout; the whole takes 4 s.
    server.routes["/drip.json"] = drip(CIANJUR, seconds=4)
    server.routes["/headers.json"] = header_drip(seconds=4)
    bmkg, producer = feed(tmp_path, json_urls=[f"{server.url}/drip.json", f"{server.url}/headers.json"],
                          deadline_s=1)  # fmt: skip

    started = time.monotonic()
    result = bmkg.poll()

    assert time.monotonic() - started < 5  # two 1 s deadlines; the whole drips take 8 s
    assert producer.sent == [] and len(result.failed) == 2
    assert warnings(caplog) == [
        f"bmkg: {server.url}/{name}.json failed: no complete answer within the 1s deadline"
        for name in ("drip", "headers")
    ]


def test_a_url_is_logged_without_its_query(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/gone.json?token=s3cret"] = (500, b"Internal Server Error\n\x1b[31mforged line")
    bmkg, _ = feed(tmp_path, json_urls=[f"{server.url}/gone.json?token=s3cret"])

    bmkg.poll()

    [line] = warnings(caplog)
    assert "s3cret" not in line and "\n" not in line and "\x1b" not in line
    assert line.startswith(f"bmkg: {server.url}/gone.json?... failed after 2 tries:")


# ---------------------------------------------------------------------------- XML
def test_xml_that_declares_a_dtd_is_refused_before_it_is_parsed(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A harmless-looking internal entity is refused like a bomb: no entity is ever expanded.
    entity = BANJIR.replace(b"<alert ", b'<!DOCTYPE alert [<!ENTITY h "Hujan">]><alert ', 1).replace(
        b"<event>Hujan", b"<event>&h;"
    )
    server.routes["/entity.xml"] = (200, entity)
    server.routes["/bomb.xml"] = (200, BILLION_LAUGHS)
    server.routes["/invalid.xml"] = (200, BANJIR.replace(b"Bekasi", b"Bek\xff\xfesi"))
    server.routes["/rss.xml"] = (200, rss(*(f"{server.url}/{n}.xml" for n in ("entity", "bomb", "invalid"))))
    bmkg, producer = feed(tmp_path, nowcast=f"{server.url}/rss.xml")

    result = bmkg.poll()

    assert producer.sent == [] and result.invalid == 3
    lines = warnings(caplog)
    assert lines[0] == f"bmkg: {server.url}/entity.xml is not a CAP warning ({DTD})"
    assert lines[1] == f"bmkg: {server.url}/bomb.xml is not a CAP warning ({DTD})"
    assert lines[2].startswith(f"bmkg: {server.url}/invalid.xml is not a CAP warning (not well-formed XML")


def test_an_rss_index_that_declares_a_dtd_is_refused(
    server: BmkgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bomb = (
        BILLION_LAUGHS.replace(b"<alert", b"<rss")
        .replace(b"</alert>", b"</rss>")
        .replace(
            b"<identifier>&lol9;</identifier>",
            f"<item><link>{server.url}/banjir.xml</link></item>&lol9;".encode(),
        )
    )
    server.routes["/rss.xml"] = (200, bomb)
    server.routes["/banjir.xml"] = (200, BANJIR)
    bmkg, producer = feed(tmp_path, nowcast=f"{server.url}/rss.xml")

    bmkg.poll()

    assert producer.sent == []
    assert warnings(caplog) == [f"bmkg: the nowcast index {server.url}/rss.xml is refused ({DTD})"]


# ---------------------------------------------------------------------------- JSON
def test_hostile_entries_are_one_warning_and_the_good_ones_are_published(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deep: dict[str, Any] = gempa(DateTime="2022-11-22T00:00:00+00:00")
    node = deep
    for _ in range(300):  # deeper than orjson writes (255), shallower than it reads (1024)
        node["x"] = node = {}
    entries = [deep, {"Magnitude": "x"}, gempa(), *[{"not": "a bulletin"}] * 1000]
    bodies = {"a": json.dumps({"Infogempa": {"gempa": entries}}).encode(), "b": b"\xff\xfe{" + b"[" * 5000}
    settings = Settings(data_dir=tmp_path, feed={"bmkg_json_urls": ["http://bmkg/a", "http://bmkg/b"],
                                                   "bmkg_nowcast_url": ""})  # fmt: skip
    producer = FakeProducer()
    bmkg = BmkgFeed(settings, producer, "disaster-alerts", fetch=lambda url: bodies[url[-1]])

    result = bmkg.poll()

    # Of the first 100 entries, 99 are not bulletins; the second body is not JSON.
    assert producer.keys == ["bmkg-20221121062110"] and result.invalid == 100
    assert warnings(caplog) == [
        "bmkg: http://bmkg/a lists 1003 entries; the first 100 are read",
        "bmkg: http://bmkg/a: 99 entries are not bulletins (Recursion limit reached)",
        "bmkg: http://bmkg/b answered with something other than JSON",
    ]


def test_entries_past_max_items_are_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entries = [gempa(DateTime=f"2022-11-21T06:{m:02d}:00+00:00") for m in range(30)]
    settings = Settings(data_dir=tmp_path, feed={"bmkg_json_urls": ["http://bmkg/a"], "bmkg_nowcast_url": "",
                                                   "max_items": 20})  # fmt: skip
    producer = FakeProducer()
    bmkg = BmkgFeed(settings, producer, "disaster-alerts", fetch=lambda url: orjson.dumps(entries))

    bmkg.poll()

    assert len(producer.sent) == 20
    assert warnings(caplog) == ["bmkg: http://bmkg/a lists 30 entries; the first 20 are read"]


# ---------------------------------------------------------------------------- "-"
def test_an_unfelt_bulletin_is_published_with_no_felt_places(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, feed={"bmkg_json_urls": ["http://bmkg/a"], "bmkg_nowcast_url": ""})
    producer = FakeProducer()
    unfelt = orjson.dumps({"Infogempa": {"gempa": gempa(Dirasakan="-")}})
    bmkg = BmkgFeed(settings, producer, "disaster-alerts", fetch=lambda url: unfelt)

    bmkg.poll()

    [(key, value, _)] = producer.sent
    [alert] = parse_alerts(value)
    assert key == "bmkg-20221121062110" and alert.felt == () and alert.magnitude == 5.6


def test_a_dash_never_erases_what_the_felt_list_said(tmp_path: Path) -> None:
    bodies = {"felt": orjson.dumps([gempa()]), "latest": orjson.dumps(gempa(Dirasakan="-"))}
    settings = Settings(data_dir=tmp_path, feed={"bmkg_json_urls": ["http://bmkg/felt", "http://bmkg/latest"],
                                                   "bmkg_nowcast_url": ""})  # fmt: skip
    producer = FakeProducer()
    BmkgFeed(settings, producer, "disaster-alerts", fetch=lambda url: bodies[url.rsplit("/", 1)[1]]).poll()

    [(_, value, _)] = producer.sent
    assert orjson.loads(value)["Infogempa"]["gempa"]["Dirasakan"] == gempa()["Dirasakan"]


# ---------------------------------------------------------------------------- state
def test_malformed_state_records_on_the_topic_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import streams.ops.admin
    from streams.commands.feeds import _digest  # the digest the connector writes

    good = orjson.dumps({"Infogempa": {"gempa": gempa()}}, option=orjson.OPT_SORT_KEYS)
    header = ("dampak-feed", b"bmkg")
    records = [
        FakeRecord("disaster-alerts", 0, 0, b"bmkg-1", good, headers=[header]),
        FakeRecord("disaster-alerts", 0, 1, b"bmkg-2", good, headers=[header, ("dampak-digest", b"0" * 32)]),
        FakeRecord("disaster-alerts", 0, 2, None, good, headers=[header, ("dampak-digest", b"0" * 32)]),
        FakeRecord("disaster-alerts", 0, 3, b"bmkg-20221121062110", good,
                   headers=[header, ("dampak-digest", _digest(good).encode())]),
    ]  # fmt: skip
    monkeypatch.setattr(streams.ops.admin, "read_topic", lambda settings, topic: iter([records]))
    bmkg, producer = feed(tmp_path, json_urls=["http://bmkg/a"])
    bmkg.fetch = lambda url: CIANJUR

    assert bmkg.recover_from_topic() == 1
    skipped = "bmkg: skipped a malformed record on disaster-alerts (partition 0, offset"
    assert warnings(caplog) == [
        f"{skipped} 0): no dampak-digest header",
        f"{skipped} 1): its dampak-digest is not its value's",
        f"{skipped} 2): no key or no value",
    ]
    assert bmkg.poll().unchanged == 1 and producer.sent == []  # what the good record says holds


@pytest.mark.parametrize("content", [b"[1]", b'{"bmkg-20221121062110": "x"}', b"[" * 100_000, b"\xff"])
def test_a_malformed_state_file_is_skipped_and_the_bulletin_published(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "bmkg.json").write_bytes(content)
    bmkg, producer = feed(tmp_path, json_urls=["http://bmkg/a"])
    bmkg.fetch = lambda url: CIANJUR

    bmkg.poll()

    assert producer.keys == ["bmkg-20221121062110"]
    assert any(str(tmp_path / "feeds" / "bmkg.json") in line for line in warnings(caplog))

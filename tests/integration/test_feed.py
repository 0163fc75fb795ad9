"""``dampak feed bmkg`` against a local HTTP server serving recorded BMKG bulletins, publishing to
the real broker: each bulletin once, a revision once more, a failing feed one clear line, and no
repeat after a restart, even one that lost the state file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.admin import ensure_topics, read_topic
from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka]

FIXTURES = ROOT / "tests" / "fixtures" / "disaster-alerts"
FEEDS = {
    "autogempa": "bmkg-autogempa-cianjur-2022.json",
    "gempaterkini": "bmkg-gempaterkini-tsunami.json",
    "gempadirasakan": "bmkg-gempadirasakan-sumedang-2024.json",
}


class Bmkg:
    """Routes path -> (status, body); change them between polls."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        bmkg = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = bmkg.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def bmkg() -> Iterator[Bmkg]:
    server = Bmkg()
    for name, fixture in FEEDS.items():
        server.routes[f"/{name}.json"] = (200, (FIXTURES / fixture).read_bytes())
    rss = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Nowcast</title>"
        f"<item><link>{server.url}/cap/polygon.xml</link></item>"
        f"<item><link>{server.url}/cap/banjir.xml</link></item></channel></rss>"
    )
    server.routes["/rss.xml"] = (200, rss.encode())
    server.routes["/cap/polygon.xml"] = (200, (FIXTURES / "cap-nowcast-polygon.xml").read_bytes())
    server.routes["/cap/banjir.xml"] = (200, (FIXTURES / "cap-nowcast-banjir.xml").read_bytes())
    yield server
    server.server.shutdown()


def published(dep: Deployment) -> list[tuple[str, bytes]]:
    return [(r.key.decode(), r.value) for records in read_topic(dep.settings, dep.topic("disaster-alerts"))
            for r in records]  # fmt: skip


def test_each_bulletin_is_published_once_and_a_revision_once_more(
    deployment: Deployment, bmkg: Bmkg, tmp_path: Path
) -> None:
    ensure_topics(deployment.settings)
    urls = [f"{bmkg.url}/{n}.json" for n in ("autogempa", "gempaterkini", "gempadirasakan")]
    deployment.env.update(
        DAMPAK_FEED__BMKG_JSON_URLS=json.dumps(urls), DAMPAK_FEED__BMKG_NOWCAST_URL=f"{bmkg.url}/rss.xml",
        DAMPAK_FEED__TRIES="2", DAMPAK_FEED__RETRY_INITIAL_S="0.1", DAMPAK_FEED__TIMEOUT_S="2",
    )  # fmt: skip

    first = deployment.dampak("feed", "bmkg", "--once")
    records = published(deployment)
    keys = [k for k, _ in records]
    assert len(keys) == len(set(keys)) and f"bmkg: {len(keys)} published, 0 unchanged" in first.stdout
    assert (
        "bmkg-20221121062110" in keys and "cap-CJR20221124153000" in keys and "cap-CJB20200225010000" in keys
    )

    # A restart with nothing new publishes nothing.
    again = deployment.dampak("feed", "bmkg", "--once")
    assert f"bmkg: 0 published, {len(keys)} unchanged" in again.stdout
    assert len(published(deployment)) == len(keys)

    # BMKG revises the Cianjur bulletin; meanwhile the felt feed answers 500.
    cianjur = orjson.loads(bmkg.routes["/autogempa.json"][1])
    cianjur["Infogempa"]["gempa"]["Magnitude"] = "5.7"
    bmkg.routes["/autogempa.json"] = (200, orjson.dumps(cianjur))
    bmkg.routes["/gempadirasakan.json"] = (500, b"Internal Server Error")
    revised = deployment.dampak("feed", "bmkg", "--once")
    assert "bmkg: 1 published" in revised.stdout and "1 feeds failed" in revised.stdout
    failures = [line for line in revised.stderr.splitlines() if "gempadirasakan.json failed" in line]
    assert len(failures) == 1 and "after 2 tries" in failures[0]
    records = published(deployment)
    assert len(records) == len(keys) + 1
    value = next(v for k, v in reversed(records) if k == "bmkg-20221121062110")
    gempa = orjson.loads(value)["Infogempa"]["gempa"]
    assert gempa["Magnitude"] == "5.7"
    assert gempa.get("Dirasakan") == cianjur["Infogempa"]["gempa"].get("Dirasakan")

    # The state file lost (a crash between publishing and writing it): the topic tells.
    (deployment.settings.data_dir / "feeds" / "bmkg.json").unlink()
    bmkg.routes["/gempadirasakan.json"] = (200, (FIXTURES / FEEDS["gempadirasakan"]).read_bytes())
    after_crash = deployment.dampak("feed", "bmkg", "--once")
    assert "bmkg: 0 published" in after_crash.stdout

"""``dampak feed bmkg`` against a local HTTP server serving recorded BMKG bulletins, publishing to
the real broker: each bulletin once, a revision once more, a failing feed one clear line, and no
repeat after a restart, even one that lost the state file; and a server that answers with
hostile bodies (endless, dripping, huge, deep, invalid, redirected to ``file:``, entity bombs) is
one warning line each, in bounded time and memory, while the good bulletins around them land."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.ops.admin import ensure_topics, producer, read_topic
from tests.bmkg_http import BILLION_LAUGHS, BmkgServer, Route, drip, endless, header_drip, redirect
from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka]

FIXTURES = ROOT / "tests" / "fixtures" / "disaster-alerts"
FEEDS = {
    "autogempa": "bmkg-autogempa-cianjur-2022.json",
    "gempaterkini": "bmkg-gempaterkini-tsunami.json",
    "gempadirasakan": "bmkg-gempadirasakan-sumedang-2024.json",
}


@pytest.fixture
def bmkg() -> Iterator[BmkgServer]:
    server = BmkgServer()
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
    server.close()


def published(dep: Deployment) -> list[tuple[str, bytes]]:
    return [(r.key.decode(), r.value) for records in read_topic(dep.settings, dep.topic("disaster-alerts"))
            for r in records]  # fmt: skip


def test_each_bulletin_is_published_once_and_a_revision_once_more(
    deployment: Deployment, bmkg: BmkgServer, tmp_path: Path
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
    cianjur = orjson.loads((FIXTURES / FEEDS["autogempa"]).read_bytes())
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


DTD = "it declares a DTD; entities are never expanded"
#: The feed's peak RSS over the hostile run below (README, *BMKG's feeds*).
MAX_RSS_MB = 150


def feed_once(dep: Deployment, tmp_path: Path) -> tuple[int, str, str, float, float]:
    """``dampak feed bmkg --once``: exit code, stdout, stderr, seconds, and its own peak RSS (MB)."""
    out, err = (tmp_path / "feed.out").open("w+"), (tmp_path / "feed.err").open("w+")
    hwm = tmp_path / "feed.hwm"
    started = time.monotonic()
    # The peak is read by the process itself at exit (VmHWM of its own memory): the rusage a
    # parent gets counts the memory of the process that forked it, here all of pytest's.
    command = [sys.executable, "-c", _WITH_PEAK, str(hwm), "feed", "bmkg", "--once"]
    proc = subprocess.Popen(command, env=dep.env, cwd=ROOT, stdout=out, stderr=err)
    proc.wait()
    elapsed = time.monotonic() - started
    out.seek(0), err.seek(0)
    return proc.returncode, out.read(), err.read(), elapsed, int(hwm.read_text()) / 1024


# ``dampak ARGS`` that writes its peak RSS (kB) to the file named first.
_WITH_PEAK = """
import atexit, sys
path = sys.argv.pop(1)
def peak():
    kb = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    open(path, "w").write(kb)
atexit.register(peak)
from streams.cli import main
main()
"""


def test_hostile_bodies_are_one_warning_each_and_good_bulletins_still_land(
    deployment: Deployment, bmkg: BmkgServer, tmp_path: Path
) -> None:
    ensure_topics(deployment.settings)
    # A record with the feed's header and no digest (another client's, or a truncated write).
    with producer(deployment.settings) as prod:
        header = [("dampak-feed", b"bmkg")]
        prod.send(deployment.topic("disaster-alerts"), key=b"bmkg-1", value=b"{}", headers=header)
        prod.flush()
    local_cap = tmp_path / "polygon.xml"
    local_cap.write_bytes((FIXTURES / "cap-nowcast-polygon.xml").read_bytes())
    cianjur = orjson.loads((FIXTURES / FEEDS["autogempa"]).read_bytes())["Infogempa"]["gempa"]
    unfelt = {**cianjur, "DateTime": "2024-01-09T13:17:26+00:00", "Dirasakan": "-", "Magnitude": "4.1"}
    nested = json.loads("[" * 300 + "]" * 300)
    deep = json.dumps({**cianjur, "DateTime": "2024-01-10T00:00:00+00:00", "x": nested})
    banjir = (FIXTURES / "cap-nowcast-banjir.xml").read_bytes()
    hostile: dict[str, Route] = {
        "/endless.json": endless(),
        "/huge.json": (200, orjson.dumps([cianjur] * 2000)),  # valid, 1.3 MB: past the cap
        "/deep.json": (200, b"[" * 100_000),
        "/deep-entry.json": (200, deep.encode()),  # deeper than orjson writes
        "/invalid.json": (200, b'{"Infogempa": {"gempa": {"Wilayah": "\xff\xfe"}}}'),
        "/to-file.json": redirect("file:///etc/hostname"),
        "/drip.json": drip(orjson.dumps({"Infogempa": {"gempa": unfelt}}), seconds=6),
        "/headers.json": header_drip(seconds=6),
        "/cap/bomb.xml": (200, BILLION_LAUGHS),
        "/cap/endless.xml": endless(),
        "/cap/drip.xml": drip(banjir, seconds=6),
        "/cap/invalid.xml": (200, banjir.replace(b"Bekasi", b"Bek\xff\xfesi")),
        "/cap/to-file.xml": redirect(local_cap.as_uri()),
        "/unfelt.json": (200, orjson.dumps({"Infogempa": {"gempa": unfelt}})),
    }
    bmkg.routes.update(hostile)
    json_urls = [f"{bmkg.url}{path}" for path in hostile if path.endswith(".json")] + [
        f"{bmkg.url}/{name}.json" for name in FEEDS
    ]
    links = [local_cap.as_uri()] + [f"{bmkg.url}{p}" for p in hostile if p.startswith("/cap/")] + [
        f"{bmkg.url}/cap/polygon.xml", f"{bmkg.url}/cap/banjir.xml"
    ]  # fmt: skip
    bmkg.routes["/rss.xml"] = (200, (
        "<?xml version='1.0'?><rss version='2.0'><channel>"
        + "".join(f"<item><link>{link}</link></item>" for link in links) + "</channel></rss>"
    ).encode())  # fmt: skip
    deployment.env.update(
        DAMPAK_FEED__BMKG_JSON_URLS=json.dumps(json_urls),
        DAMPAK_FEED__BMKG_NOWCAST_URL=f"{bmkg.url}/rss.xml",
        DAMPAK_FEED__TRIES="2", DAMPAK_FEED__RETRY_INITIAL_S="0.1", DAMPAK_FEED__TIMEOUT_S="1",
        DAMPAK_FEED__DEADLINE_S="2", DAMPAK_FEED__MAX_BYTES=str(256 * 1024),
    )  # fmt: skip

    code, stdout, stderr, elapsed, rss_mb = feed_once(deployment, tmp_path)

    assert code == 0, stderr[-3000:]
    keys = [k for k, _ in published(deployment)]
    good = ["bmkg-20240109131726", "bmkg-20221121062110", "cap-CJR20221124153000", "cap-CJB20200225010000"]
    assert set(good) <= set(keys) and len(keys) == len(set(keys))
    assert "bmkg-20240110000000" not in keys and "bmkg-1" in keys  # only the planted record
    unfelt_value = next(v for k, v in published(deployment) if k == "bmkg-20240109131726")
    assert orjson.loads(unfelt_value)["Infogempa"]["gempa"]["Dirasakan"] == "-"
    # Failed: 5 JSON feeds and 4 links (endless, huge, redirected, dripping); the rest were invalid.
    assert f"bmkg: {len(keys) - 1} published, 0 unchanged, 9 feeds failed" in stdout
    lines = stderr.splitlines()
    warnings = [
        line.split(" WARNING streams.commands.feeds: ", 1)[1]
        for line in lines
        if " WARNING streams.commands.feeds: " in line
    ]
    u = bmkg.url
    expected = [
        f"bmkg: skipped a malformed record on {deployment.topic('disaster-alerts')} (partition ",
        f"bmkg: {u}/endless.json refused: the body is larger than the 262144 bytes accepted",
        f"bmkg: {u}/huge.json refused: {len(orjson.dumps([cianjur] * 2000))} bytes announced, more than the "
        "262144 accepted",
        f"bmkg: {u}/deep.json answered with something other than JSON",
        f"bmkg: {u}/deep-entry.json: 1 entries are not bulletins (Recursion limit reached)",
        f"bmkg: {u}/invalid.json answered with something other than JSON",
        f"bmkg: {u}/to-file.json refused: redirected to file:///etc/hostname, not an http(s) URL",
        f"bmkg: {u}/drip.json failed: no complete answer within the 2s deadline",
        f"bmkg: {u}/headers.json failed: no complete answer within the 2s deadline",
        f"bmkg: {local_cap.as_uri()} refused: only http and https URLs are fetched",
        f"bmkg: {u}/cap/bomb.xml is not a CAP warning ({DTD})",
        f"bmkg: {u}/cap/endless.xml refused: the body is larger than the 262144 bytes accepted",
        f"bmkg: {u}/cap/drip.xml failed: no complete answer within the 2s deadline",
        f"bmkg: {u}/cap/invalid.xml is not a CAP warning (not well-formed XML",
        f"bmkg: {u}/cap/to-file.xml refused: redirected to {local_cap.as_uri()}, not an http(s) URL",
    ]
    assert len(warnings) == len(expected), stderr[-4000:]
    assert warnings[0].endswith("offset 0): no dampak-digest header")
    for line, want in zip(warnings, expected, strict=True):
        assert line.startswith(want), (line, want)
    assert "Traceback" not in stderr
    # Three deadlines of 2 s, and the rest at once; memory bounded by the cap, not by what was sent.
    assert elapsed < 30 and rss_mb < MAX_RSS_MB, (elapsed, rss_mb)

    # An RSS index that is an entity bomb: one warning, and everything else as before.
    bomb = BILLION_LAUGHS.replace(b"<alert", b"<rss").replace(b"</alert>", b"</rss>")
    bmkg.routes["/rss.xml"] = (200, bomb)
    code, stdout, stderr, _, _ = feed_once(deployment, tmp_path)
    earthquakes = len([k for k in keys if k.startswith("bmkg-2")])
    assert code == 0 and f"bmkg: 0 published, {earthquakes} unchanged, 5 feeds failed" in stdout
    assert f"bmkg: the nowcast index {u}/rss.xml is refused ({DTD})" in stderr

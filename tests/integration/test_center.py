"""The command-center page in headless Chromium (Debian's ``chromium``), on the demo's Cianjur
scenario through a real worker: it loads with no console message; every headline figure and every
estimate's range equals a query's; Leaflet draws every village of ``data.json`` where it is
shipped (its boundary, or its centroid); the map's layers colour the villages by their own
figures; ``dampak report`` writes the same page as one file that works offline and prints to A4."""

from __future__ import annotations

import html
import json
import math
import os
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.demo import _BULLETIN, CIANJUR_EVENT, scenario
from streams.ops.center import LIBRARIES, library
from tests.integration.browser import CHROMIUM, dump, pdf, pdf_pages
from tests.integration.harness import Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("chromium is not installed (make test installs it)", allow_module_level=True)

KPIS = {
    "households": "reported_households_affected",
    "displaced": "reported_displaced",
    "dead": "reported_dead",
    "injured": "reported_injured",
    "missing": "reported_missing",
    "heavy": "reported_houses_heavy",
}
A4_POINTS = (595.28, 841.89)


def shown(dom: str) -> dict[str, int]:
    """The page's headline figures, whatever the locale's digit grouping."""
    return {m[1]: int(re.sub(r"\D", "", m[2])) for m in re.finditer(r'id="kpi-(\w+)">([^<]*)<', dom)}


def drawn(dom: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """What the page recorded Leaflet drew: per village code its layer's attributes, and the map's."""
    part = dom.split('<div id="drawn" hidden="">', 1)[1].split("</div>", 1)[0]
    attrs = lambda tag: dict(re.findall(r'data-(\w+)="([^"]*)"', tag))  # noqa: E731
    villages = {a["code"]: a for a in map(attrs, re.findall(r"<i [^>]*>", part))}
    [whole] = re.findall(r"<b [^>]*>", part)
    return villages, attrs(whole)


def bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    """South, west, north, east of a GeoJSON (lon, lat) polygon or multipolygon."""
    flat = re.findall(r"\[\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\]", json.dumps(geometry["coordinates"]))
    lons, lats = [float(x) for x, _ in flat], [float(y) for _, y in flat]
    return min(lats), min(lons), max(lats), max(lons)


def without_libraries(page: str) -> str:
    # Leaflet and plotly.js hold numeric constants of 16 digits: they are the libraries, not data.
    for name in LIBRARIES:
        page = page.replace(library(name).decode(), "")
    return page


def private(text: str) -> bool:
    """A household's pseudonym or a NIK-long run of digits (not the decimals of a number)."""
    return "k1:" in text or re.search(r"(?<![\d.])\d{16}", text) is not None


def bounded(deployment: Deployment, event: str | None, **bounds: int) -> dict[str, Any]:
    """``figures`` for ``event`` with ``sinks.center``'s bounds set to ``bounds`` (``MAP_VILLAGES``,
    ``LISTED_EVENTS``), through the worker's ``/query`` as ``dampak report`` asks when a worker
    holds the engine."""
    from sinks import center
    from sinks.analyst import query

    target, before = deployment.settings.clickhouse_target, {k: getattr(center, k) for k in bounds}
    for name, value in bounds.items():
        setattr(center, name, value)
    try:
        return center.figures(lambda sql, params: query(target, sql, params), event)
    finally:
        for name, value in before.items():
            setattr(center, name, value)


def test_the_page_shows_the_demo_event_as_the_queries_do(deployment: Deployment, tmp_path: Path) -> None:
    deployment.start_worker()
    # The demo's reports with a tenth of its registry: the same BNPB totals, loaded faster.
    households, messages, current = scenario(registry_households=6_000)
    deployment.produce(("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households)
    deployment.wait_for(
        "SELECT sum(households) AS n FROM dampak.village_stats", [{"n": len(households)}], 120
    )
    deployment.produce([("disaster-alerts", CIANJUR_EVENT.encode(), _BULLETIN)])
    deployment.produce(messages)
    deployment.wait_for(
        "SELECT count() AS n FROM dampak.field_reports WHERE report_id LIKE 'CJR-%'", [{"n": current}], 180
    )
    [summary] = deployment.query(
        f"SELECT {', '.join(KPIS.values())} FROM dampak.event_summary WHERE event_id = {{event:String}}",
        event=CIANJUR_EVENT,
    )
    want = {kpi: summary[column] for kpi, column in KPIS.items()}
    assert want["households"] > 0 and want["displaced"] > 0
    ranges = deployment.query(
        "SELECT model, outcome, range_low, range_high, label FROM dampak.estimate_ranges"
        " WHERE event_id = {event:String}",
        event=CIANJUR_EVENT,
    )
    assert ranges
    base = f"http://127.0.0.1:{deployment.settings.web.port}/pusat/"
    raw = urllib.request.urlopen(f"{base}data.json?event={CIANJUR_EVENT}", timeout=30).read().decode()
    data = json.loads(raw)
    assert data["event"]["event_id"] == CIANJUR_EVENT and not private(raw)
    # Read once and shared: a second page asking right after gets the same read, stamped with
    # when it was read.
    again = json.loads(urllib.request.urlopen(f"{base}data.json?event={CIANJUR_EVENT}", timeout=30).read())
    read_at = datetime.fromisoformat(data["as_of"].replace("Z", "+00:00"))
    assert again["as_of"] == data["as_of"]
    assert timedelta(0) <= datetime.now(UTC) - read_at < timedelta(minutes=5)
    # Cianjur (province 32, West Java) keeps WIB, UTC+7.
    assert (data["event"]["province_code"], data["event"]["time_zone"], data["event"]["utc_offset_h"]) == (
        "32", "WIB", 7,
    )  # fmt: skip
    other = json.loads(urllib.request.urlopen(f"{base}data.json?event=no-such-event", timeout=30).read())
    assert other["event"] is None and [e["event_id"] for e in other["events"]] == [CIANJUR_EVENT]
    with urllib.request.urlopen(f"{base}lib/leaflet.css", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/css") and b"images/" not in resp.read()

    dom, console = dump(base)
    assert console == []
    assert "Pusat Komando" in dom and CIANJUR_EVENT in dom
    assert shown(dom) == want
    # Every estimate's range as its query has it, labelled.
    rows = re.findall(
        r'<tr data-model="([^"]*)" data-outcome="([^"]*)" data-low="([^"]*)" data-high="([^"]*)"', dom
    )
    assert sorted(rows) == sorted(
        (r["model"], r["outcome"], repr(float(r["range_low"])).removesuffix(".0"),
         "null" if r["range_high"] is None else repr(float(r["range_high"])).removesuffix(".0"))
        for r in ranges
    )  # fmt: skip
    assert all(html.escape(r["label"]) in dom for r in ranges)

    # The map: every village with reports or an estimate, drawn where it is shipped: its boundary
    # where one is shipped, else a marker at its centroid; all of them inside the map's frame.
    layers, frame = drawn(dom)
    codes = deployment.query(
        "SELECT village_code FROM dampak.impact_village WHERE event_id = {event:String}"
        " UNION DISTINCT SELECT village_code FROM dampak.alert_exposure WHERE event_id = {event:String}",
        event=CIANJUR_EVENT,
    )
    assert set(layers) == {r["village_code"] for r in codes} == {v["code"] for v in data["villages"]}
    assert data["villages_total"] == len(data["villages"]) and 'id="villages-left-out">desa' not in dom
    # An event reaching more villages than the map draws: the reported villages first, the most
    # households first, and the count of all of them.
    few = bounded(deployment, CIANJUR_EVENT, MAP_VILLAGES=5)
    assert few["villages_total"] == len(codes) and len(few["villages"]) == 5
    ranked = sorted(
        data["villages"], key=lambda v: (v["reports"] > 0, v["households_affected"]), reverse=True
    )
    assert [(v["reports"] > 0, v["households_affected"]) for v in few["villages"]] == [
        (v["reports"] > 0, v["households_affected"]) for v in ranked[:5]
    ]
    shapes = {
        f["properties"]["code"]: f["geometry"]
        for f in data.get("geo", {}).get("villages", {}).get("features", [])
    }
    for v in data["villages"]:
        layer = layers[v["code"]]
        assert 0 <= float(layer["x"]) <= int(frame["width"]) and 0 <= float(layer["y"]) <= int(
            frame["height"]
        )
        if v["code"] in shapes:
            s, w, n, e = map(float, layer["bounds"].split(","))
            assert layer["kind"] == "polygon"
            assert (s, w, n, e) == pytest.approx(bounds(shapes[v["code"]]), abs=1e-6)
            assert s <= v["lat"] <= n and w <= v["lon"] <= e  # its centroid lies in its box
        else:
            assert layer["kind"] == "marker"
            assert (float(layer["lat"]), float(layer["lon"])) == pytest.approx((v["lat"], v["lon"]), abs=1e-9)
    assert not private(without_libraries(dom))

    report = tmp_path / "cianjur.html"
    deployment.env["DAMPAK_WEB__LANGUAGE"] = "en"
    deployment.dampak("report", CIANJUR_EVENT, "--out", str(report))
    text = report.read_text()
    # Offline: everything inline, no script or stylesheet to fetch, from the worker or the web.
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", text)
    assert not private(without_libraries(text))
    with ThreadPoolExecutor(4) as pool:
        runs = [
            pool.submit(dump, f"{report.as_uri()}#layer={layer}") for layer in ("damage", "mmi", "coverage")
        ]
        printed = pool.submit(pdf, report.as_uri(), tmp_path / "cianjur.pdf")
        (offline, console), (mmi, console_mmi), (coverage, console_coverage) = (r.result() for r in runs)
    assert console == console_mmi == console_coverage == []
    assert "Command center" in offline and shown(offline) == want
    assert "const DATA = null" not in offline  # the figures are inside the file: nothing is fetched
    # The layers colour the same villages by different figures.
    fills = {name: {c: a["fill"] for c, a in drawn(page)[0].items()} for name, page in
             (("damage", offline), ("mmi", mmi), ("coverage", coverage))}  # fmt: skip
    assert [drawn(p)[1]["layer"] for p in (offline, mmi, coverage)] == ["damage", "mmi", "coverage"]
    assert set(fills["damage"]) == set(fills["mmi"]) == set(fills["coverage"]) == set(layers)
    assert fills["damage"] != fills["mmi"] != fills["coverage"]
    by_code = {v["code"]: v for v in data["villages"]}
    # Intensity: one colour per MMI level, a different colour for each level.
    levels = {  # PAGER's bin of each village's MMI (level k covers [k - 0.5, k + 0.5))
        math.floor(by_code[c]["mmi"] + 0.5): f
        for c, f in fills["mmi"].items()
        if by_code[c]["mmi"] is not None
    }
    assert len(levels) == len(set(levels.values())) > 1
    assert all(
        f == levels[math.floor(by_code[c]["mmi"] + 0.5)]
        for c, f in fills["mmi"].items()
        if by_code[c]["mmi"] is not None
    )
    # Coverage: the struck villages no one reported from stand out, and only they.
    gap = {c for c, f in fills["coverage"].items() if f == fills["coverage"].get(_a_gap(data), "")}
    assert gap == {c for c, v in by_code.items() if _struck(v) and not _reported(v)}
    # Damage: the villages with no report share one colour, which no reported village has.
    unreported = {fills["damage"][c] for c, v in by_code.items() if not _reported(v)}
    assert len(unreported) <= 1 and not unreported & {
        fills["damage"][c] for c, v in by_code.items() if _reported(v)
    }

    document = printed.result()
    pages = pdf_pages(document)
    assert document.startswith(b"%PDF-") and len(pages) >= 1
    assert all(p == pytest.approx(A4_POINTS, abs=1.5) for p in pages)

    # A newer event: the page lists the most recent events, and an older one asked for is still
    # found, and listed, however many came after it.
    newer = {"event_id": "test-banjir-newer", "hazard": "flood", "source": "test", "areas": [],
             "issued_at": "2026-01-02T00:00:00Z", "event_time": "2026-01-02T00:00:00Z"}  # fmt: skip
    deployment.produce([("disaster-alerts", b"test-banjir-newer", json.dumps(newer).encode())])
    deployment.wait_for("SELECT count() AS n FROM dampak.event_summary", [{"n": 2}], 60)
    old = bounded(deployment, CIANJUR_EVENT, LISTED_EVENTS=1, MAP_VILLAGES=1)
    assert [e["event_id"] for e in old["events"]] == [CIANJUR_EVENT] == [old["event"]["event_id"]]
    latest = bounded(deployment, None, LISTED_EVENTS=1, MAP_VILLAGES=1)
    assert [e["event_id"] for e in latest["events"]] == ["test-banjir-newer"] == [latest["event"]["event_id"]]
    both = bounded(deployment, CIANJUR_EVENT)
    assert [e["event_id"] for e in both["events"]] == ["test-banjir-newer", CIANJUR_EVENT]


def _struck(v: dict[str, Any]) -> bool:
    return bool(v["exposed"]) if "exposed" in v else (v["mmi"] is not None and v["mmi"] >= 5.5)


def _reported(v: dict[str, Any]) -> bool:
    if "reported" in v:
        return bool(v["reported"])
    return v["households_affected"] > 0 or v["houses_heavy"] + v["houses_moderate"] + v["houses_light"] > 0


def _a_gap(data: dict[str, Any]) -> str | None:
    return next((v["code"] for v in data["villages"] if _struck(v) and not _reported(v)), None)

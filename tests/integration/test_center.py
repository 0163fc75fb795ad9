"""The command-center page in headless Chromium (Debian's ``chromium``), on the demo's Cianjur
scenario through a real worker: it loads with no console message, and every figure it shows
equals a query's; ``dampak report`` writes the same page as one file that works offline."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from deploy.local.demo import _BULLETIN, CIANJUR_EVENT, scenario
from tests.integration.browser import CHROMIUM, dump
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


def shown(dom: str) -> dict[str, int]:
    """The page's headline figures, whatever the locale's digit grouping."""
    return {m[1]: int(re.sub(r"\D", "", m[2])) for m in re.finditer(r'id="kpi-(\w+)">([^<]*)<', dom)}


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

    dom, console = dump(f"http://127.0.0.1:{deployment.settings.web.port}/pusat/")
    assert console == []
    assert "Pusat Komando" in dom and CIANJUR_EVENT in dom
    assert shown(dom) == want
    # The map: one dot per village with reports or an estimate, where the registry locates it.
    mapped = deployment.query(
        "SELECT count() AS n FROM (SELECT village_code FROM dampak.impact_village"
        " WHERE event_id = {event:String} UNION DISTINCT SELECT village_code"
        " FROM dampak.alert_exposure WHERE event_id = {event:String}) AS v WHERE v.village_code"
        " IN (SELECT village_code FROM dampak.village_stats WHERE lat IS NOT NULL)",
        event=CIANJUR_EVENT,
    )[0]["n"]
    rendered = dom.split("<script>")[0]
    assert len(re.findall(r'<circle class="village"', rendered)) == mapped > 0
    # No personal data: no pseudonym, no NIK-long digit run.
    assert "k1:" not in dom and not re.search(r"\d{16}", dom)

    page = tmp_path / "cianjur.html"
    deployment.env["DAMPAK_WEB__LANGUAGE"] = "en"
    deployment.dampak("report", CIANJUR_EVENT, "--out", str(page))
    offline, console = dump(page.as_uri())
    assert console == [] and "Command center" in offline and shown(offline) == want
    assert "const DATA = null" not in offline  # the figures are inside the file: nothing is fetched

"""Acceptance of what the ministry acts on, on the real broker and chDB: entitlements equal an
independent computation from the reported figures (at the rates configured), coverage lists
exactly the struck villages no one has reported from and a new report removes its village, and
BNPB's DIBI categories add up."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.geo import village_positions
from tests.integration.harness import ROOT, Deployment
from tests.integration.scenario import nearest_villages

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

EVENT = "bmkg-20221121062110"
EPI = (-6.84, 107.05)
#: A setting changed from the default (90 days): the entitlement follows it.
JADUP_DAYS = 60
RATES = {
    "santunan_ahli_waris": 15_000_000,
    "bantuan_luka_berat": 5_000_000,
    "jaminan_hidup": 10_000,
    "isi_hunian": 3_000_000,
}


def _bulletin() -> bytes:
    doc = json.loads((ROOT / "tests/fixtures/disaster-alerts/bmkg-autogempa-cianjur-2022.json").read_text())
    del doc["Infogempa"]["gempa"]["Dirasakan"]  # the prediction alone: MMI from AWW 2012
    return json.dumps(doc).encode()


def _summary(rid: str, village: str, **counts: Any) -> dict[str, Any]:
    return {
        "report_id": rid, "event_id": EVENT, "reported_at": "2022-11-22T03:00:00Z", "village_code": village,
        "reporter_role": "tksk", **counts,
    }  # fmt: skip


def _expected_entitlements(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Written out from the figures: per village and kind, the basis and the amount."""
    out: dict[tuple[str, str], int] = {}
    for r in reports:
        basis = {
            "santunan_ahli_waris": r.get("dead", 0),
            "bantuan_luka_berat": r.get("injured_severe", 0),
            "jaminan_hidup": r.get("displaced", 0) * JADUP_DAYS,
            "isi_hunian": r.get("houses_heavy", 0),
        }
        for kind, n in basis.items():
            out[(r["village_code"], kind)] = out.get((r["village_code"], kind), 0) + n
    return [
        {"village_code": v, "kind": k, "basis_count": n, "amount_idr": n * RATES[k]}
        for (v, k), n in sorted(out.items())
        if n
    ]


def test_entitlements_coverage_and_dibi_figures(deployment: Deployment) -> None:
    dep = deployment
    dep.env["DAMPAK_ENTITLEMENTS__LIVING_ALLOWANCE_DAYS"] = str(JADUP_DAYS)
    near = nearest_villages("32.03.", EPI, 24)
    positions = village_positions()
    households = [
        {"household_id": f"MH-{code}-{i}", "village_code": code, "updated_at": "2022-11-01T00:00:00Z",
         "members": 4, "lat": positions[code][0], "lon": positions[code][1]}
        for code in near
        for i in range(2)
    ]  # fmt: skip
    reported = near[:10]
    reports = [
        _summary(f"S-{i}", v, dead=i % 3, injured=2, injured_severe=i % 2, displaced=10 + i, houses_heavy=i,
                 affected_persons=40, affected_families=11, houses_submerged=1, facilities={"bridge": 1})
        for i, v in enumerate(reported)
    ]  # fmt: skip
    # A report from before the split: its injured count as light; a shelter with its displaced.
    reports.append(
        _summary("S-old", reported[0], injured=3, displaced=5,
                 shelter={"name": "Lapangan Cugenang", "village_code": reported[0], "displaced": 120})
    )  # fmt: skip
    dep.start_worker()
    dep.produce([("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households])
    dep.wait_for("SELECT sum(households) AS n FROM dampak.village_stats", [{"n": len(households)}], 60)
    dep.produce([("disaster-alerts", EVENT.encode(), _bulletin())])
    dep.produce([("field-reports", r["report_id"].encode(), json.dumps(r).encode()) for r in reports])
    dep.wait_for("SELECT count() AS n FROM dampak.field_reports", [{"n": len(reports)}], 120)

    # Entitlements: per village and kind, equal to the figures times the configured rates.
    rows = dep.wait_for(
        "SELECT village_code, kind, basis_count, amount_idr FROM dampak.entitlements "
        "WHERE incident_id = {e:String} ORDER BY village_code, kind",
        _expected_entitlements(reports),
        60,
        e=EVENT,
    )
    assert {r["kind"] for r in rows} == set(RATES)
    basis = dep.query("SELECT DISTINCT legal_basis FROM dampak.entitlements")
    assert [b["legal_basis"] for b in basis] == [
        "Permensos No. 4 Tahun 2015 tentang Bantuan Langsung Berupa Uang Tunai bagi Korban Bencana"
    ]

    # DIBI categories: families affected count the summaries' families; injured split.
    [summary] = dep.query(
        "SELECT reported_injured, reported_injured_severe, reported_families_affected, "
        "reported_affected_persons, reported_houses_submerged FROM dampak.event_summary "
        "WHERE event_id = {e:String}",
        e=EVENT,
    )
    assert summary == {
        "reported_injured": 2 * len(reported) + 3,
        "reported_injured_severe": sum(i % 2 for i in range(len(reported))),
        "reported_families_affected": 11 * len(reported),
        "reported_affected_persons": 40 * len(reported),
        "reported_houses_submerged": len(reported),
    }
    assert dep.query("SELECT name, village_code, displaced FROM dampak.shelters") == [
        {"name": "Lapangan Cugenang", "village_code": reported[0], "displaced": 120}
    ]

    # Coverage: exactly the villages the quake struck (estimated MMI VI or more) with no report.
    struck = {
        r["village_code"]
        for r in dep.query(
            "SELECT village_code FROM dampak.alert_exposure WHERE event_id = {e:String} AND mmi >= 5.5",
            e=EVENT,
        )
    }
    assert len(struck - set(reported)) >= 3, "the scenario needs struck villages without a report"
    unreported_sql = (
        "SELECT arraySort(groupArray(village_code)) AS v FROM dampak.exposed_villages "
        "WHERE incident_id = {e:String} AND reports = 0"
    )
    dep.wait_for(unreported_sql, [{"v": sorted(struck - set(reported))}], 60, e=EVENT)
    coverage = dep.query(
        "SELECT sum(exposed_villages) AS exposed, sum(unreported_villages) AS unreported "
        "FROM dampak.coverage WHERE incident_id = {e:String}",
        e=EVENT,
    )
    assert coverage == [{"exposed": len(struck), "unreported": len(struck - set(reported))}]
    # A report from one of them removes it.
    newly = sorted(struck - set(reported))[0]
    dep.produce([("field-reports", b"S-new", json.dumps(_summary("S-new", newly, displaced=1)).encode())])
    dep.wait_for(unreported_sql, [{"v": sorted(struck - set(reported) - {newly})}], 60, e=EVENT)
    out = dep.dampak("coverage", EVENT).stdout
    assert f"{len(struck - set(reported)) - 1} exposed villages with no report yet" in out
    assert "Rp" in dep.dampak("entitlements", EVENT).stdout
    assert dep.stop_worker() == 0

"""What the ministry acts on, without services: the report and registry contracts' new fields,
the entitlement rates, and the notice for struck villages no one has reported from."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from schemas.field_reports import FieldReport
from schemas.households import Household
from streams.domain.notifications import unreported_notices
from streams.domain.registry import household_state
from streams.domain.reports import enrich, report_doc
from streams.features.notifications import Notifier
from streams.settings import EntitlementSettings
from tests.unit.fakes import FAST, FakeForwarder, FakeReader, FakeWriter

NOW = datetime(2022, 11, 22, tzinfo=UTC)

BASE = {"report_id": "R", "reported_at": "2022-11-22T03:00:00Z", "village_code": "32.03.01.2001"}
HOUSEHOLD = {"household_id": "H", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}


def test_a_report_from_before_the_new_fields_keeps_its_digest() -> None:
    doc = report_doc(FieldReport.model_validate_json(json.dumps({**BASE, "injured": 3})))
    assert "injured_severe" not in doc and "facilities" not in doc and "shelter" not in doc
    # The digest of the first contract's fields, as it was computed before they existed.
    before = {k: v for k, v in doc.items() if k != "digest"}
    expected = hashlib.blake2b(orjson.dumps(before, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()
    assert doc["digest"] == expected
    assert doc["injured"] == 3  # counts as lightly injured


def test_dibi_fields_validate_and_household_level_limits_hold() -> None:
    report = FieldReport.model_validate_json(
        json.dumps({**BASE, "injured_severe": 2, "affected_families": 40, "facilities": {"bridge": 1},
                    "shelter": {"name": "Lapangan", "village_code": "32.03.01.2001", "displaced": 90}})
    )  # fmt: skip
    assert report.facilities.bridge == 1 and report.shelter is not None and report.shelter.displaced == 90
    with pytest.raises(ValidationError, match="one family and one house"):
        FieldReport.model_validate_json(json.dumps({**BASE, "household_id": "H", "affected_families": 2}))
    with pytest.raises(ValidationError, match="injured_severe"):
        FieldReport.model_validate_json(json.dumps({**BASE, "household_id": "H", "injured_severe": 101}))
    with pytest.raises(ValidationError):
        FieldReport.model_validate_json(json.dumps({**BASE, "shelter": {"name": "x", "village_code": "99"}}))


def test_bpnt_is_sembako_and_pbi_alone_is_no_kpm_family() -> None:
    sembako = Household.model_validate_json(json.dumps({**HOUSEHOLD, "programs": ["bpnt", "PBI"]}))
    assert sembako.programs == {"SEMBAKO", "PBI"} and sembako.kpm
    pbi = Household.model_validate_json(json.dumps({**HOUSEHOLD, "programs": ["PBI"]}))
    assert not pbi.kpm
    # A registry state written before the rename still counts BPNT as a family programme.
    state = household_state(sembako, position=1, seq=1)
    assert enrich({**state, "programs": ["BPNT"]}).kpm and not enrich({**state, "programs": ["PBI"]}).kpm


def test_a_graduated_family_out_of_pkh_is_marked() -> None:
    left = Household.model_validate_json(
        json.dumps({**HOUSEHOLD, "pkh_graduated_at": "2021-06-01T00:00:00Z"})
    )
    assert enrich(household_state(left, 1, 1)).graduated
    back = Household.model_validate_json(
        json.dumps({**HOUSEHOLD, "programs": ["PKH"], "pkh_graduated_at": "2021-06-01T00:00:00Z"})
    )
    assert not enrich(household_state(back, 1, 1)).graduated


def test_entitlement_rates_follow_the_settings() -> None:
    rates = {r["kind"]: r for r in EntitlementSettings().rates()}
    assert {k: r["unit_amount_idr"] for k, r in rates.items()} == {
        "santunan_ahli_waris": 15_000_000, "bantuan_luka_berat": 5_000_000,
        "jaminan_hidup": 10_000, "isi_hunian": 3_000_000,
    }  # fmt: skip
    assert rates["jaminan_hidup"]["days"] == 90
    changed = {r["kind"]: r for r in EntitlementSettings(living_allowance_days=60).rates()}
    assert changed["jaminan_hidup"]["days"] == 60 and "60 hari" in changed["jaminan_hidup"]["basis"]
    assert all(r["legal_basis"].startswith("Permensos No. 4 Tahun 2015") for r in rates.values())


def test_a_struck_village_unreported_past_the_hours_is_notified_once() -> None:
    reader, writer, forwarder = FakeReader(), FakeWriter(), FakeForwarder()
    notifier = Notifier(reader, writer, forwarder, "impact-notifications", FAST, lambda: NOW)
    reader.unreported = [
        ("bmkg-1", "32.03.11.2003", "Cijedil", "Cugenang", 3, 9),
        ("bmkg-1", "32.03.11.2004", "Mangunkerta", "Cugenang", 1, 30),  # below the level
        ("bmkg-1", "32.03.11.2005", "Sarampad", "Cugenang", 2, 2),  # not long enough yet
    ]
    assert asyncio.run(notifier.check_unreported(2, 6.0, 14)) == 1
    [note] = forwarder.on("impact-notifications")
    assert note.key == b"bmkg-1:32.03.11.2003:unreported>=6h"
    body = orjson.loads(note.value or b"")
    assert body["kind"] == "unreported_village" and "Cijedil, Cugenang" in body["message"]
    reader.sent |= {"bmkg-1:32.03.11.2003:unreported>=6h"}
    assert asyncio.run(notifier.check_unreported(2, 6.0, 14)) == 0
    assert unreported_notices([], 6.0) == []

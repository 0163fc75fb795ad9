"""Revision decisions, row versions, enrichment and their rows, without Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.field_reports import FieldReport
from schemas.households import Household
from streams.domain.registry import household_state, should_apply, tombstone_state
from streams.domain.reports import Enrichment, Revision, decide_revision, enrich, report_doc, row_version
from streams.privacy import Pseudonymizer
from streams.rows import registry_row, report_row
from streams.settings import PrivacySettings

PSEUDO = Pseudonymizer(PrivacySettings())
NOW = datetime(2022, 11, 22, tzinfo=UTC)


def _report(**kw: object) -> FieldReport:
    base = {"report_id": "r1", "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001"}
    return FieldReport.model_validate_json(json.dumps({**base, **kw}))


def _household(**kw: object) -> Household:
    base = {"household_id": "h1", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}
    return Household.model_validate_json(json.dumps({**base, **kw}))


def test_revision_decisions() -> None:
    d = report_doc(_report())
    assert decide_revision(None, 1, d["digest"]) is Revision.NEW
    assert decide_revision((1, d["digest"]), 2, "x") is Revision.NEW
    assert decide_revision((2, "x"), 1, d["digest"]) is Revision.STALE
    assert decide_revision((1, d["digest"]), 1, d["digest"]) is Revision.DUPLICATE
    # Same revision, different content: the copy received last stands.
    assert decide_revision((1, d["digest"]), 1, "other") is Revision.NEW


def test_digest_ignores_nothing_but_is_stable() -> None:
    assert report_doc(_report(displaced=3))["digest"] == report_doc(_report(displaced=3))["digest"]
    assert report_doc(_report(displaced=3))["digest"] != report_doc(_report(displaced=4))["digest"]


def test_versions_order_revision_first_then_registry_changes() -> None:
    assert row_version(2, -1) > row_version(1, 10**9)
    assert row_version(1, 5) > row_version(1, 4) > row_version(1, -1)


def test_enrichment_with_a_registered_household() -> None:
    h = _household(desil=3, programs=["PKH"], elderly=1, under5=2, nik_head="3203010101800001")
    e = enrich(household_state(h, offset=41))
    assert e == Enrichment(registered=True, desil=3, programs=("PKH",), members=1, vulnerable_persons=3)
    assert e.kpm
    row = report_row(
        report_doc(_report(household_id="h1", houses_heavy=1)), e, row_version(1, 41), PSEUDO, NOW
    )
    assert row["registered"] and row["kpm"] and row["desil"] == 3
    assert row["vulnerable_persons"] == 3
    assert row["version"] == row_version(1, 41)
    assert row["household_ref"].startswith("k1:") and "h1" not in row["household_ref"]
    assert row["regency_code"] == "32.03" and row["district_code"] == "32.03.01"


def test_enrichment_of_unknown_and_removed_households() -> None:
    assert enrich(None) == enrich(tombstone_state(7)) == Enrichment()
    row = report_row(report_doc(_report(household_id="h1", displaced=2)), Enrichment(), 1, PSEUDO, NOW)
    assert not row["registered"] and not row["kpm"] and row["desil"] is None


def test_notes_with_identity_numbers_are_masked() -> None:
    doc = report_doc(_report(notes="NIK 3203010101800001 minta bantuan"))
    row = report_row(doc, Enrichment(), 1, PSEUDO, NOW)
    assert "3203010101800001" not in row["notes"]


def test_registry_update_rules() -> None:
    old = household_state(_household(), 1)
    assert should_apply(None, _household())
    assert should_apply(old, _household())  # equal timestamp re-applies (replay safety)
    assert not should_apply(old, _household(updated_at="2022-10-01T00:00:00Z"))
    assert should_apply(tombstone_state(2), _household(updated_at="2020-01-01T00:00:00Z"))


def test_registry_rows_hold_pseudonyms_only() -> None:
    state = household_state(_household(nik_head="3203010101800001", kk_number="3203010101800002"), 3)
    row = registry_row("h1", state, PSEUDO)
    text = repr(row)
    assert "3203010101800001" not in text and "3203010101800002" not in text and "'h1'" not in text
    assert registry_row("h1", tombstone_state(4), PSEUDO)["deleted"] is True

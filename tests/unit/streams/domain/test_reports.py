"""Copy decisions, row versions, registry rules, enrichment and their rows, without Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from schemas.field_reports import FieldReport
from schemas.households import Household
from streams.domain.registry import decide_change, household_state, should_apply, tombstone_state
from streams.domain.reports import Enrichment, enrich, report_doc
from streams.domain.revision import Revision, decide_copy, report_version
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


def test_copy_decisions() -> None:
    assert decide_copy(None, 1, "a", 0) is Revision.NEW
    assert decide_copy((1, "a", 5), 2, "b", 6) is Revision.NEW
    assert decide_copy((2, "a", 5), 1, "b", 6) is Revision.STALE
    assert decide_copy((1, "a", 5), 1, "a", 6) is Revision.DUPLICATE
    # Same revision, other content: the copy received last stands.
    assert decide_copy((1, "a", 5), 1, "b", 6) is Revision.NEW
    # A replay after a crash: the copy that stands again, an earlier one ignored.
    assert decide_copy((1, "a", 5), 1, "a", 5) is Revision.DUPLICATE
    assert decide_copy((1, "a", 5), 3, "z", 4) is Revision.STALE


def test_an_earlier_copy_received_again_is_seen_not_new() -> None:
    """Copies a then b of revision 1; b stands. a again at a later position (a replay of the input
    hop, or a publisher's retry) is a copy seen before: b still stands."""
    seen = ["a", "b"]
    assert decide_copy((1, "b", 6), 1, "a", 9, seen) is Revision.SEEN
    assert decide_copy((1, "b", 6), 1, "b", 9, seen) is Revision.DUPLICATE
    assert decide_copy((1, "b", 6), 1, "c", 9, seen) is Revision.NEW
    # Only copies of the stored revision are remembered: a's content at a higher revision is new.
    assert decide_copy((1, "b", 6), 2, "a", 9, seen) is Revision.NEW


def test_digest_ignores_nothing_but_is_stable() -> None:
    assert report_doc(_report(displaced=3))["digest"] == report_doc(_report(displaced=3))["digest"]
    assert report_doc(_report(displaced=3))["digest"] != report_doc(_report(displaced=4))["digest"]


def test_versions_order_revision_then_copy_then_registry_changes() -> None:
    assert report_version(2, 1, 0) > report_version(1, 10**6, 10**6)
    assert report_version(1, 3, 0) > report_version(1, 2, 10**6)
    assert report_version(1, 2, 5) > report_version(1, 2, 4)
    assert report_version(2**23 - 1, 2**30, 2**30) < 2**63  # saturates, fits UInt64 and Int64


def test_registry_change_decisions() -> None:
    stored = household_state(_household(updated_at="2022-11-05T00:00:00Z"), 7, 2)
    newer, older = stored["updated_ms"] + 1, stored["updated_ms"] - 1
    assert decide_change(None, older, 0) is Revision.NEW
    assert decide_change(stored, newer, 8) is Revision.NEW
    assert decide_change(stored, stored["updated_ms"], 8) is Revision.NEW  # equal re-applies
    assert decide_change(stored, older, 8) is Revision.STALE
    assert decide_change(stored, None, 8) is Revision.NEW  # a tombstone
    assert decide_change(stored, newer, 7) is Revision.DUPLICATE  # the replayed message itself
    assert decide_change(stored, newer, 6) is Revision.STALE  # an earlier one, replayed
    # Ordered by publish time against a tombstone (0: unknown, arrival order decides).
    live = household_state(_household(), 7, 2, published_ms=500)
    assert decide_change(live, None, 8, 400) is Revision.STALE  # deleted before the record was sent
    assert decide_change(live, None, 8, 500) is Revision.NEW  # a tie: the tombstone wins
    assert decide_change(live, None, 8, 0) is Revision.NEW
    same = live["updated_ms"]
    assert decide_change(live, same, 8, 499) is Revision.STALE  # same updated_at, sent before
    assert decide_change(live, same, 8, 500) is Revision.NEW  # ... at the same time: received last
    assert decide_change(live, same + 1, 8, 1) is Revision.NEW  # updated_at decides between records
    gone = tombstone_state(7, 3, published_ms=500)
    assert decide_change(gone, older, 8, 499) is Revision.STALE  # sent before the tombstone
    assert decide_change(gone, older, 8, 500) is Revision.STALE
    assert decide_change(gone, older, 8, 501) is Revision.NEW  # recreated
    assert decide_change(gone, older, 8, 0) is Revision.NEW


def test_enrichment_with_a_registered_household() -> None:
    h = _household(desil=3, programs=["PKH"], members=4, elderly=1, under5=2, nik_head="3203010101800001")
    e = enrich(household_state(h, position=41, seq=4))
    assert e == Enrichment(
        registered=True, desil=3, programs=("PKH",), members=4, vulnerable_persons=3, seq=4
    )
    assert e.kpm
    doc = report_doc(_report(household_id="h1", houses_heavy=1))
    row = report_row(doc, e, report_version(1, 1, e.seq), PSEUDO, NOW, 9)
    assert row["registered"] and row["kpm"] and row["desil"] == 3
    assert row["vulnerable_persons"] == 3 and row["arrival"] == 9
    assert row["version"] == report_version(1, 1, 4)
    assert row["household_ref"].startswith("k1:") and "h1" not in row["household_ref"]
    assert row["regency_code"] == "32.03" and row["district_code"] == "32.03.01"


def test_enrichment_of_unknown_and_removed_households() -> None:
    assert enrich(None) == Enrichment()
    assert enrich(tombstone_state(7, 3)) == Enrichment(seq=3)
    row = report_row(report_doc(_report(household_id="h1", displaced=2)), Enrichment(), 1, PSEUDO, NOW, 0)
    assert not row["registered"] and not row["kpm"] and row["desil"] is None


def test_notes_with_identity_numbers_are_masked() -> None:
    for notes in ("NIK 3203010101800001 minta bantuan", "KK 3203 0101 0180 0001", "hp 081234567890"):
        row = report_row(report_doc(_report(notes=notes)), Enrichment(), 1, PSEUDO, NOW, 0)
        assert not any(ch.isdigit() for ch in row["notes"]), row["notes"]


def test_registry_update_rules() -> None:
    old = household_state(_household(), 1, 1)
    ms = old["updated_ms"]
    assert should_apply(None, ms)
    assert should_apply(old, ms)  # equal timestamp re-applies
    assert not should_apply(old, ms - 1)
    assert should_apply(tombstone_state(2, 2), 0)


def test_registry_rows_hold_pseudonyms_only() -> None:
    state = household_state(_household(nik_head="3203010101800001", kk_number="3203010101800002"), 3, 5)
    row = registry_row("h1", state, PSEUDO)
    text = repr(row)
    assert "3203010101800001" not in text and "3203010101800002" not in text and "'h1'" not in text
    assert row["version"] == 5
    assert registry_row("h1", tombstone_state(4, 6), PSEUDO)["deleted"] is True

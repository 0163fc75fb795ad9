"""Which copy of a field report stands when copies come again (a replay of the input hop), and the
bounds on a report's copies and a household's reports: route, decide and enrich chained over
fakes, as the worker runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sinks.tables import REPORT_STATE
from streams.engine import Message, Outcome
from streams.features.field_reports import ReportDeps, decide_report, enrich_report, route_report
from streams.features.household_reports import MAX_REPORTS, HouseholdReports
from tests.unit.fakes import PSEUDO, message, run

NOW = datetime(2022, 11, 22, tzinfo=UTC)


def _report(rid: str = "r", **kw: Any) -> bytes:
    doc = {"report_id": rid, "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001", **kw}
    return json.dumps(doc).encode()


class Chain:
    """``field-reports`` -> ``field-reports-by-id`` -> ``field-reports-by-household``, each internal
    topic at consecutive offsets, over shared tables."""

    def __init__(self) -> None:
        self.deps = ReportDeps({}, {}, {}, PSEUDO, now=lambda: NOW)
        self.by_id: list[tuple[bytes | None, bytes | None]] = []
        self.by_household: list[tuple[bytes | None, bytes | None]] = []
        self.decided: list[Outcome] = []
        self.enriched: list[Outcome] = []
        self.rows: list[dict[str, Any]] = []
        self.dead_letters: list[str] = []

    def route(self, *values: bytes, first_offset: int = 0) -> list[Message]:
        """Route ``values`` read from ``field-reports``; returns what lands on ``field-reports-by-id``."""
        msgs = [message("field-reports", v, None, first_offset + i) for i, v in enumerate(values)]
        outcomes, _, forwarder = run(route_report, self.deps, msgs)
        assert outcomes == [Outcome.OK] * len(values)
        return self._append(self.by_id, "field-reports-by-id", forwarder.on("field-reports-by-id"))

    def decide(self, msgs: list[Message]) -> None:
        outcomes, writer, forwarder = run(decide_report, self.deps, msgs)
        self.decided += outcomes
        self._keep(writer)
        landed = self._append(
            self.by_household, "field-reports-by-household", forwarder.on("field-reports-by-household")
        )
        if landed:
            outcomes, writer, _ = run(enrich_report, self.deps, landed)
            self.enriched += outcomes
            self._keep(writer)

    def _append(
        self, log: list[tuple[bytes | None, bytes | None]], topic: str, forwards: Any
    ) -> list[Message]:
        first = len(log)
        log += [(f.key, f.value) for f in forwards]
        return [message(topic, v, k, first + i) for i, (k, v) in enumerate(log[first:])]

    def _keep(self, writer: Any) -> None:
        self.rows += writer.table(REPORT_STATE.name)
        self.dead_letters += [r["reason"] for r in writer.table("dead_letter_state")]

    def standing(self, report_id: str = "r") -> dict[str, Any]:
        """The row ClickHouse keeps for the report (ReplacingMergeTree: the highest version)."""
        return max((r for r in self.rows if r["report_id"] == report_id), key=lambda r: r["version"])


def test_a_replayed_earlier_copy_is_a_duplicate_and_the_later_copy_still_stands() -> None:
    """Issue 27, case 5: copies A and B of one revision, B received last, stands. A replay of the
    input hop (its offsets were not committed) forwards B and then A again, at new positions: both
    are copies seen before, so B still stands."""
    chain = Chain()
    a, b = _report(displaced=3), _report(displaced=5)
    chain.decide(chain.route(a, b, first_offset=10))
    assert chain.standing()["displaced"] == 5
    chain.decide(chain.route(b, a, first_offset=20))
    assert chain.decided == [Outcome.OK, Outcome.OK, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert chain.standing()["displaced"] == 5
    assert chain.deps.report_copies["r"]["copy"] == 2  # no third copy


def test_a_replayed_earlier_copy_leaves_the_household_with_the_later_one() -> None:
    """The same for a household-level report: the household keeps B, and the rows stand with B."""
    chain = Chain()
    a = _report(household_id="h1", houses_heavy=1, displaced=3)
    b = _report(household_id="h2", houses_light=1, displaced=4)
    chain.decide(chain.route(a, b, first_offset=10))
    chain.decide(chain.route(b, a, first_offset=20))
    standing = chain.standing()
    assert (standing["household_ref"], standing["displaced"]) == (PSEUDO.ref("household_id", "h2"), 4)
    reports = HouseholdReports(chain.deps.household_reports)
    assert (reports.ids("h1"), reports.ids("h2")) == ([], ["r"])
    assert chain.decided[2:] == [Outcome.DUPLICATE, Outcome.DUPLICATE]


def test_a_higher_revision_still_replaces_and_its_earlier_content_may_come_back() -> None:
    """What is remembered is a copy of a revision: the content of revision 1 published again as
    revision 2 is a new copy, and stands."""
    chain = Chain()
    chain.decide(chain.route(_report(displaced=3), _report(displaced=5)))
    chain.decide(chain.route(_report(revision=2, displaced=3), first_offset=2))
    assert chain.decided == [Outcome.OK, Outcome.OK, Outcome.OK]
    assert (chain.standing()["revision"], chain.standing()["displaced"]) == (2, 3)
    chain.decide(chain.route(_report(displaced=5), first_offset=3))  # revision 1, late
    assert chain.decided[-1] == Outcome.STALE and chain.standing()["displaced"] == 3


def test_a_report_holds_a_bounded_number_of_copies_per_revision() -> None:
    from streams.domain.revision import MAX_COPIES_PER_REVISION  # the bound this test is about

    chain = Chain()
    copies = [_report(displaced=i) for i in range(MAX_COPIES_PER_REVISION + 1)]
    chain.decide(chain.route(*copies))
    assert chain.decided == [Outcome.OK] * MAX_COPIES_PER_REVISION + [Outcome.DEAD_LETTER]
    assert chain.dead_letters == [
        f"the report already has {MAX_COPIES_PER_REVISION} different copies at revision 1 (the limit): "
        "publish a correction as a higher revision"
    ]
    assert chain.standing()["displaced"] == MAX_COPIES_PER_REVISION - 1
    assert len(chain.deps.report_copies["r"]["seen"]) == MAX_COPIES_PER_REVISION
    # A higher revision is accepted, and starts its own count.
    chain.decide(chain.route(_report(revision=2, displaced=7), first_offset=len(copies)))
    assert chain.decided[-1] == Outcome.OK and chain.deps.report_copies["r"]["seen"] == [
        chain.deps.report_copies["r"]["digest"]
    ]


def test_a_household_beyond_its_report_limit_gets_a_dead_letter_not_a_crash() -> None:
    chain = Chain()
    reports = [_report(f"r{i}", household_id="h1") for i in range(MAX_REPORTS + 1)]
    chain.decide(chain.route(*reports))
    assert chain.enriched == [Outcome.OK] * MAX_REPORTS + [Outcome.DEAD_LETTER]
    assert chain.dead_letters == [
        f"the household already has {MAX_REPORTS:,} current reports (the limit per household): "
        "retract one, or correct it to another household, first"
    ]
    assert len(HouseholdReports(chain.deps.household_reports).ids("h1")) == MAX_REPORTS
    assert f"r{MAX_REPORTS}" not in {r["report_id"] for r in chain.rows}

"""A report in transit is the validated report as pydantic writes it in JSON mode: ``report_doc``
builds it without ``model_dump`` (a fifth of the time), and must build the same values, or a
report's digest would change and a copy re-sent across an upgrade would count as a new one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.field_reports import REPORTER_ROLES, FieldReport
from streams.domain.reports import report_doc
from streams.settings import ContractSettings

_CONTEXT = ContractSettings().context()
_COUNT = st.integers(0, 2**32 - 1)
_FLOAT = st.floats(-90, 90, allow_nan=False) | st.none()
_TEXT = st.text(max_size=40)
_ID = st.from_regex(r"\A[ -~]{1,20}\Z")
_NO_FACILITIES = {"education": 0, "health": 0, "worship": 0, "office": 0, "bridge": 0}


def _when() -> st.SearchStrategy[str]:
    moments = st.datetimes(datetime(1900, 1, 2), datetime(2026, 1, 1))
    offsets = st.sampled_from(["", "Z", "+07:00", "-03:30", "+00:00"])
    return st.builds(lambda d, o: d.isoformat(timespec="microseconds" if d.microsecond else "seconds") + o,
                     moments, offsets)  # fmt: skip


_REPORT = st.fixed_dictionaries(
    {"report_id": _ID, "reported_at": _when(), "village_code": st.just("32.03.01.2001")},
    optional={
        "revision": st.integers(1, 2**23 - 1),
        "retracted": st.booleans(),
        "event_id": _ID,
        "hazard": st.sampled_from(["gempa", "flood", "Tanah Longsor"]),
        "reporter_id": st.from_regex(r"\A[ -~]{0,20}\Z"),
        "reporter_role": st.sampled_from(REPORTER_ROLES),
        "houses_light": _COUNT, "displaced": _COUNT, "dead": _COUNT, "injured_severe": _COUNT,
        "affected_families": _COUNT, "houses_submerged": _COUNT,
        "facilities": st.fixed_dictionaries({}, optional={"education": _COUNT, "bridge": _COUNT}),
        "shelter": st.none() | st.fixed_dictionaries(
            {"name": st.text(min_size=1, max_size=20), "village_code": st.just("32.03.01.2001")},
            optional={"displaced": _COUNT},
        ),
        "needs": st.lists(st.text(max_size=10), max_size=4),
        "lat": _FLOAT, "lon": _FLOAT, "notes": _TEXT,
    },
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_REPORT)
def test_report_doc_holds_what_model_dump_writes(fields: dict[str, Any]) -> None:
    report = FieldReport.model_validate_json(json.dumps(fields), context=_CONTEXT)
    expected = report.model_dump(mode="json")
    doc = dict(report_doc(report))
    del doc["digest"]
    for name in set(expected) - set(doc):  # left out at their defaults, for the digest
        assert expected[name] in (None, 0, _NO_FACILITIES)
        del expected[name]
    assert doc == expected
    assert [type(v) for v in doc.values()] == [type(expected[k]) for k in doc]


def test_a_report_at_a_whole_second_and_one_with_microseconds() -> None:
    for at, written in [
        (datetime(2022, 11, 21, 8, tzinfo=UTC), "2022-11-21T08:00:00Z"),
        (datetime(1900, 1, 1, 23, 59, 59, 5, tzinfo=timezone(timedelta(hours=-1))),
         "1900-01-02T00:59:59.000005Z"),
    ]:  # fmt: skip
        fields = {"report_id": "r", "reported_at": at.isoformat(), "village_code": "32.03.01.2001"}
        report = FieldReport.model_validate_json(json.dumps(fields), context=_CONTEXT)
        assert report_doc(report)["reported_at"] == written == report.model_dump(mode="json")["reported_at"]

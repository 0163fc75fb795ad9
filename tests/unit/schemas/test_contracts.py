"""Every fixture parses; each kind of invalid input is rejected with a reason naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.alerts import parse_alerts
from schemas.export import TOPIC_MODELS, json_schema
from schemas.field_reports import FieldReport
from schemas.households import Household
from streams.features.decode import describe_validation_error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.parametrize("topic", ["households", "field-reports"])  # alerts: see test_alerts.py
def test_every_fixture_parses(topic: str) -> None:
    lines = (FIXTURES / f"{topic}.jsonl").read_bytes().splitlines()
    assert lines
    for line in lines:
        TOPIC_MODELS[topic].model_validate_json(line)


def test_naive_and_offset_datetimes_become_utc() -> None:
    h = Household.model_validate_json(
        b'{"household_id":"a","village_code":"32.03.01.2001","updated_at":"2022-11-01T07:00:00+07:00"}'
    )
    assert h.updated_at == datetime(2022, 11, 1, tzinfo=UTC)
    h = Household.model_validate_json(
        b'{"household_id":"a","village_code":"32.03.01.2001","updated_at":"2022-11-01T00:00:00"}'
    )
    assert h.updated_at.tzinfo is UTC


GOOD = {"report_id": "r", "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"displaced": "5"}, "displaced"),
        ({"dead": -1}, "dead"),
        ({"village_code": "3203012001"}, "village_code"),
        ({"village_code": "32.03.01.4001"}, "village_code"),
        ({"village_code": "32.03.01"}, "village_code"),
        ({"reporter_role": "polisi"}, "reporter_role"),
        ({"revision": 0}, "revision"),
        ({"reported_at": None}, "reported_at"),
    ],
)
def test_invalid_reports_are_rejected_with_the_field_named(change: dict[str, object], field: str) -> None:
    doc = {**GOOD, **change}
    with pytest.raises(ValidationError) as err:
        FieldReport.model_validate_json(json.dumps(doc))
    assert field in describe_validation_error(err.value)


def test_household_level_report_covers_at_most_one_house() -> None:
    FieldReport.model_validate_json(json.dumps({**GOOD, "household_id": "h", "houses_heavy": 1}))
    FieldReport.model_validate_json(json.dumps({**GOOD, "houses_heavy": 40}))  # village summary: any number
    with pytest.raises(ValidationError, match="one house"):
        FieldReport.model_validate_json(
            json.dumps({**GOOD, "household_id": "h", "houses_heavy": 1, "houses_light": 1})
        )


def test_validation_reason_never_contains_the_input_value() -> None:
    with pytest.raises(ValidationError) as err:
        Household.model_validate_json(
            b'{"household_id":"a","village_code":"32.03.01.2001","updated_at":"2022-11-01T00:00:00Z",'
            b'"nik_head":"320301010180000"}'
        )
    reason = describe_validation_error(err.value)
    assert "nik_head" in reason and "320301010180000" not in reason


def test_programs_subset_and_desil_range() -> None:
    base = {"household_id": "a", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}
    assert Household.model_validate_json(json.dumps({**base, "programs": ["PKH", "PBI"]})).kpm
    for bad in ({"programs": ["BLT"]}, {"desil": 11}, {"desil": 0}, {"members": 0}):
        with pytest.raises(ValidationError):
            Household.model_validate_json(json.dumps({**base, **bad}))


@pytest.mark.parametrize("topic", sorted(TOPIC_MODELS))
def test_json_schema_is_exported_and_committed(topic: str) -> None:
    committed = Path(__file__).resolve().parents[3] / "schemas" / "json" / f"{topic}.v1.schema.json"
    assert json.loads(committed.read_text()) == json_schema(topic), "run `make schemas` and commit the result"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"reported_at": "0001-01-01T00:00:00+01:00"}, "outside the supported range"),
        ({"reported_at": "9999-12-31T23:30:00-01:00"}, "outside the supported range"),
        ({"reported_at": "1899-12-31T23:59:59Z"}, "between 1900-01-01 and now + 1 day"),
        ({"reported_at": "2999-01-01T00:00:00Z"}, "between 1900-01-01 and now + 1 day"),
        ({"village_code": "99.99.99.1999"}, "unknown village_code"),
        ({"village_code": "\uff13\uff12.03.01.2001"}, "String should match pattern"),
        ({"displaced": 2**32}, "less than or equal to 4294967295"),
        ({"household_id": "h", "injured": 101}, "at most 100 persons (injured)"),
        ({"needs": ["a"] * 33}, "at most 32 items"),
    ],
)
def test_contract_bounds(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        FieldReport.model_validate_json(json.dumps({**GOOD, **change}))
    assert reason in describe_validation_error(err.value)


def test_datetime_bounds_come_from_the_validation_context() -> None:
    from datetime import timedelta

    doc = json.dumps({**GOOD, "reported_at": "1850-01-01T00:00:00Z"})
    context = {"earliest": datetime(1800, 1, 1, tzinfo=UTC), "max_future": timedelta(0)}
    assert FieldReport.model_validate_json(doc, context=context).reported_at.year == 1850
    with pytest.raises(ValidationError):
        FieldReport.model_validate_json(doc)


def test_households_are_bounded_too() -> None:
    base = {"household_id": "a", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}
    for bad in (
        {"members": 101},
        {"elderly": 101},
        {"updated_at": "9999-01-01T00:00:00Z"},
        {"nik_head": "\uff13" * 16},
    ):
        with pytest.raises(ValidationError):
            Household.model_validate_json(json.dumps({**base, **bad}))


HOUSEHOLD = {"household_id": "a", "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}


def test_vulnerable_counts_never_exceed_the_members() -> None:
    """Issue 27, case 11: one member and 100 elderly, disabled, under five and pregnant."""
    with pytest.raises(ValidationError) as err:
        Household.model_validate_json(
            json.dumps(
                {**HOUSEHOLD, "members": 1, "elderly": 100, "disabled": 100, "under5": 100, "pregnant": 100}
            )
        )
    assert describe_validation_error(err.value) == (
        "message: Value error, more elderly, disabled, under5, pregnant than members"
    )
    with pytest.raises(ValidationError, match="more disabled than members"):
        Household.model_validate_json(json.dumps({**HOUSEHOLD, "members": 2, "disabled": 3}))
    # A child under five is neither elderly nor pregnant, so those groups add up within members.
    for bad in ({"under5": 2, "elderly": 2}, {"under5": 3, "pregnant": 1}):
        with pytest.raises(ValidationError) as err:
            Household.model_validate_json(json.dumps({**HOUSEHOLD, "members": 3, **bad}))
        assert "under5 plus elderly or pregnant exceed members" in describe_validation_error(err.value)
    # Other groups overlap: two elderly, a pregnant mother and a toddler, three of them disabled.
    ok = Household.model_validate_json(
        json.dumps({**HOUSEHOLD, "members": 4, "elderly": 2, "disabled": 3, "under5": 1, "pregnant": 1})
    )
    assert ok.vulnerable == 7


@pytest.mark.parametrize("value", ["20221121", "1669000000", 1669000000, "2022-11-21", "21/11/2022 08:00"])
def test_datetimes_are_iso_8601_strings_only(value: object) -> None:
    """Issue 27, case 11: a digit string was read as a Unix time ("20221121" -> 1970-08-23)."""
    reason = "a datetime is an ISO 8601 string, e.g. 2022-11-21T08:00:00+07:00"
    with pytest.raises(ValidationError) as err:
        FieldReport.model_validate_json(json.dumps({**GOOD, "reported_at": value}))
    assert describe_validation_error(err.value) == f"reported_at: Value error, {reason}"
    with pytest.raises(ValidationError) as err:
        Household.model_validate_json(json.dumps({**HOUSEHOLD, "updated_at": value}))
    assert describe_validation_error(err.value) == f"updated_at: Value error, {reason}"


@pytest.mark.parametrize(
    "value",
    ["2022-11-21T08:00:00+07:00", "2022-11-21 01:00:00Z", "2022-11-21T01:00", "2022-11-21t01:00:00.5z"],
)
def test_iso_8601_datetimes_still_parse(value: str) -> None:
    report = FieldReport.model_validate_json(json.dumps({**GOOD, "reported_at": value}))
    assert report.reported_at.replace(second=0, microsecond=0) == datetime(2022, 11, 21, 1, tzinfo=UTC)


@pytest.mark.parametrize("field", ["report_id", "event_id", "household_id", "reporter_id"])
@pytest.mark.parametrize("value", ["bmkg-20221121062110\u202e", "r\u200b1", "\u04401", "r\x001", "r\n1"])
def test_report_ids_are_printable_ascii(field: str, value: str) -> None:
    """Issue 27, case 11: an event_id with a right-to-left override became an event of its own."""
    with pytest.raises(ValidationError) as err:
        FieldReport.model_validate_json(json.dumps({**GOOD, field: value}))
    assert (
        describe_validation_error(err.value)
        == f"{field}: Value error, an id is printable ASCII only (U+0020 to U+007E)"
    )


def test_household_ids_are_printable_ascii() -> None:
    with pytest.raises(ValidationError, match="printable ASCII"):
        Household.model_validate_json(json.dumps({**HOUSEHOLD, "household_id": "HH-1\u202e"}))
    assert Household.model_validate_json(json.dumps({**HOUSEHOLD, "household_id": "KK 32/03 'a'~"}))


def test_ids_keep_their_length_bounds() -> None:
    FieldReport.model_validate_json(json.dumps({**GOOD, "report_id": "r" * 128, "reporter_id": ""}))
    for field in ("report_id", "event_id", "household_id", "reporter_id"):
        with pytest.raises(ValidationError, match="at most 128 characters"):
            FieldReport.model_validate_json(json.dumps({**GOOD, field: "r" * 129}))
    with pytest.raises(ValidationError, match="at least 1 character"):
        FieldReport.model_validate_json(json.dumps({**GOOD, "event_id": ""}))


ALERT = {"event_id": "flood-1", "hazard": "flood", "issued_at": "2022-11-21T08:00:00Z",
         "areas": [{"village_code": "32.03"}]}  # fmt: skip


def test_alerts_take_the_same_ids_and_datetimes() -> None:
    """The rules hold on every topic: ``disaster-alerts`` uses the same types."""
    assert [a.event_id for a in parse_alerts(json.dumps(ALERT).encode())] == ["flood-1"]
    for change, reason in (
        ({"event_id": "flood-1\u202e"}, "event_id: Value error, an id is printable ASCII only"),
        ({"issued_at": "20221121"}, "issued_at: Value error, a datetime is an ISO 8601 string"),
        ({"event_time": "1669000000"}, "event_time: Value error, a datetime is an ISO 8601 string"),
    ):
        with pytest.raises(ValidationError) as err:
            parse_alerts(json.dumps({**ALERT, **change}).encode())
        assert describe_validation_error(err.value).startswith(reason)

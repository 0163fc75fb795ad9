"""Every fixture parses; each kind of invalid input is rejected with a reason naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

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

"""Shared field types of the topic contracts: Kemendagri region codes, ids, bounded counts, bounded
UTC datetimes written as ISO 8601 strings, and the one way a validation error becomes a reason."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core.core_schema import ValidationInfo

from schemas.regions import is_known_region

__all__ = [
    "EARLIEST",
    "HOUSEHOLD_PERSONS_MAX",
    "ID_MAX_LENGTH",
    "ID_RE",
    "ISO_DATETIME_RE",
    "MAX_FUTURE",
    "REGION_CODE_RE",
    "UINT32_MAX",
    "VILLAGE_CODE_RE",
    "Contract",
    "Count",
    "Id",
    "OptionalId",
    "RegionCode",
    "UtcDatetime",
    "VillageCode",
    "describe_validation_error",
    "district_of",
    "is_id",
    "province_of",
    "regency_of",
]

logger = logging.getLogger(__name__)

#: Kemendagri "kode wilayah" at any level (Permendagri 72/2019, Kepmendagri 300.2.2-2430/2025):
#: PP[.KK[.CC[.DDDD]]]; the village part starts with 1 (kelurahan), 2 (desa) or 3 (desa adat).
#: ASCII digits only: ``\d`` would also take other scripts' digits.
REGION_CODE_RE = re.compile(r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[123][0-9]{3})?)?)?$")
#: A full village code, PP.KK.CC.DDDD.
VILLAGE_CODE_RE = r"^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[123][0-9]{3}$"

#: The largest count a UInt32 column holds.
UINT32_MAX = 2**32 - 1
#: A household (kartu keluarga) with more members than this is a data error: it caps the members
#: of a registry household and each person count of a household-level field report.
HOUSEHOLD_PERSONS_MAX = 100
#: Datetimes are accepted from ``EARLIEST`` to ``MAX_FUTURE`` after the time of validation; the
#: worker's ``DAMPAK_CONTRACTS__*`` settings pass other bounds as validation context.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)

#: Ids (``household_id``, ``report_id``, ``event_id``, ``reporter_id``) are printable ASCII, U+0020
#: to U+007E: a right-to-left override (U+202E), a zero-width space or a look-alike letter from
#: another script would otherwise make an id that looks like another one but is a different key,
#: so a different household, report or event (Unicode TR 36, "Unicode Security Considerations",
#: section 2: visual spoofing).
ID_RE = r"^[ -~]+$"
ID_MAX_LENGTH = 128
#: The one datetime form the contracts take: ISO 8601 / RFC 3339 (``2022-11-21T08:00:00+07:00``,
#: the offset optional, ``T`` or a space between date and time). pydantic alone also reads a
#: string of digits as a Unix time, so ``"20221121"`` (a date written without dashes) became
#: 1970-08-23; such strings are refused instead. ASCII digits only (``\d`` takes other scripts').
ISO_DATETIME_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"  # date, time
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?$"  # offset
)
_ID = re.compile(ID_RE)
_ISO_DATETIME = re.compile(ISO_DATETIME_RE)


def _known(code: str) -> str:
    if not is_known_region(code):
        raise ValueError("unknown village_code")
    return code


def _known_region(code: str) -> str:
    if not is_known_region(code):
        raise ValueError("unknown region code")
    return code


VillageCode = Annotated[str, StringConstraints(pattern=VILLAGE_CODE_RE), AfterValidator(_known)]
RegionCode = Annotated[str, StringConstraints(pattern=REGION_CODE_RE.pattern), AfterValidator(_known_region)]
Count = Annotated[int, Field(ge=0, le=UINT32_MAX)]


def is_id(value: str) -> bool:
    """True for 1 to ``ID_MAX_LENGTH`` printable ASCII characters (a message key used as an id)."""
    return len(value) <= ID_MAX_LENGTH and _ID.match(value) is not None


def _printable_ascii(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("an id is printable ASCII only (U+0020 to U+007E)")
    return value


def _empty_or_printable_ascii(value: str) -> str:
    return _printable_ascii(value) if value else value


#: An id: 1 to ``ID_MAX_LENGTH`` printable ASCII characters.
Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_MAX_LENGTH),
    AfterValidator(_printable_ascii),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH, "pattern": ID_RE}),
]
#: An id that may be empty (``reporter_id``): "" or an ``Id``.
OptionalId = Annotated[
    str,
    StringConstraints(max_length=ID_MAX_LENGTH),
    AfterValidator(_empty_or_printable_ascii),
    WithJsonSchema({"type": "string", "maxLength": ID_MAX_LENGTH, "pattern": "^[ -~]*$"}),
]


def _iso_only(value: object) -> object:
    # A datetime object comes from dampak's own parsers (the BMKG bulletin's local time); what a
    # publisher sends is a string, and only an ISO 8601 one.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError("a datetime is an ISO 8601 string, e.g. 2022-11-21T08:00:00+07:00")
    return value


def _to_utc(value: datetime, info: ValidationInfo) -> datetime:
    # Upstream systems sometimes omit the offset; the contract says UTC in that case.
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime outside the supported range") from None
    context: dict[str, Any] = info.context if isinstance(info.context, dict) else {}
    earliest: datetime = context.get("earliest", EARLIEST)
    max_future: timedelta = context.get("max_future", MAX_FUTURE)
    if not earliest <= utc <= datetime.now(UTC) + max_future:
        raise ValueError(f"datetime must be between {earliest:%Y-%m-%d} and now + {max_future}")
    return utc


#: A datetime: an ISO 8601 string, converted to UTC (no offset: UTC), within the bounds above.
UtcDatetime = Annotated[
    datetime,
    # Lax inside: the string has passed ``_iso_only``, and a strict datetime takes no string in
    # Python mode, which a before-validator hands on.
    Strict(False),
    BeforeValidator(_iso_only),
    AfterValidator(_to_utc),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": ISO_DATETIME_RE}),
]


class Contract(BaseModel):
    """Base of every topic model: immutable, strict types, unknown fields ignored (forward-compatible)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", allow_inf_nan=False)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line reason built from locations and messages only: input values (which may hold a NIK)
    never reach logs or dead letters."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:1000]


def province_of(village_code: str) -> str:
    return village_code[:2]


def regency_of(village_code: str) -> str:
    return village_code[:5]


def district_of(village_code: str) -> str:
    return village_code[:8]

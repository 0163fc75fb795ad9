"""Shared field types of the topic contracts: Kemendagri region codes, bounded counts, bounded UTC
datetimes, and the one way a validation error becomes a reason."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core.core_schema import ValidationInfo

from schemas.regions import is_known_region

__all__ = [
    "EARLIEST",
    "HOUSEHOLD_PERSONS_MAX",
    "MAX_FUTURE",
    "REGION_CODE_RE",
    "UINT32_MAX",
    "VILLAGE_CODE_RE",
    "Contract",
    "Count",
    "RegionCode",
    "UtcDatetime",
    "VillageCode",
    "describe_validation_error",
    "district_of",
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


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]


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

"""Shared field types of the topic contracts: Kemendagri region codes, counts, UTC datetimes."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "REGION_CODE_RE",
    "VILLAGE_CODE_RE",
    "Contract",
    "Count",
    "UtcDatetime",
    "VillageCode",
    "district_of",
    "province_of",
    "regency_of",
]

logger = logging.getLogger(__name__)

#: Kemendagri "kode wilayah" at any level (Permendagri 72/2019, Kepmendagri 300.2.2-2430/2025):
#: PP[.KK[.CC[.DDDD]]]; the village part starts with 1 (kelurahan), 2 (desa) or 3 (desa adat).
REGION_CODE_RE = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.[123]\d{3})?)?)?$")
#: A full village code, PP.KK.CC.DDDD.
VILLAGE_CODE_RE = r"^\d{2}\.\d{2}\.\d{2}\.[123]\d{3}$"

VillageCode = Annotated[str, StringConstraints(pattern=VILLAGE_CODE_RE)]
Count = Annotated[int, Field(ge=0)]


def _to_utc(value: datetime) -> datetime:
    # Upstream systems sometimes omit the offset; the contract says UTC in that case.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]


class Contract(BaseModel):
    """Base of every topic model: immutable, strict types, unknown fields ignored (forward-compatible)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


def province_of(village_code: str) -> str:
    return village_code[:2]


def regency_of(village_code: str) -> str:
    return village_code[:5]


def district_of(village_code: str) -> str:
    return village_code[:8]

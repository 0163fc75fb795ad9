"""Contract of the ``households`` topic: one DTSEN/DTKS registry record, keyed by ``household_id``.

A tombstone (null value) removes the household. An update older than the stored one is ignored.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from schemas.common import HOUSEHOLD_PERSONS_MAX, Contract, Id, UtcDatetime, VillageCode

__all__ = ["FAMILY_PROGRAMS", "PROGRAMS", "Household", "Program"]

logger = logging.getLogger(__name__)

Program = Literal["PKH", "SEMBAKO", "PBI"]
PROGRAMS: tuple[str, ...] = ("PKH", "SEMBAKO", "PBI")
#: Programmes a family receives as a family (a KPM): PKH and Sembako. PBI-JK (the health-insurance
#: premium subsidy, PP 101/2012) covers persons, and is counted by person, not as a KPM family.
FAMILY_PROGRAMS: frozenset[str] = frozenset({"PKH", "SEMBAKO"})
#: Earlier names: BPNT became Program Sembako in 2020.
_PROGRAM_ALIASES = {"BPNT": "SEMBAKO"}


def _program_names(value: object) -> object:
    """A programme list with BPNT named Sembako (older exports), any case. Anything else is left
    for validation to refuse."""
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return frozenset(_PROGRAM_ALIASES.get(v.strip().upper(), v.strip().upper()) for v in value)
    return value


Digits16 = Annotated[str, StringConstraints(pattern=r"^[0-9]{16}$")]
Persons = Annotated[int, Field(ge=0, le=HOUSEHOLD_PERSONS_MAX)]


class Household(Contract):
    """A registry household. ``nik_head`` and ``kk_number`` are personal data: never stored in clear."""

    schema_version: Literal[1] = 1
    household_id: Id
    village_code: VillageCode
    updated_at: UtcDatetime
    nik_head: Digits16 | None = None
    kk_number: Digits16 | None = None
    members: Annotated[int, Field(ge=1, le=HOUSEHOLD_PERSONS_MAX)] = 1
    desil: Annotated[int, Field(ge=1, le=10)] | None = None
    programs: Annotated[frozenset[Program], BeforeValidator(_program_names)] = frozenset()
    #: When the family left PKH (graduasi): a family that graduated and is now hit is re-assessed.
    pkh_graduated_at: UtcDatetime | None = None
    elderly: Persons = 0
    disabled: Persons = 0
    under5: Persons = 0
    pregnant: Persons = 0
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None

    @model_validator(mode="after")
    def _plausible(self) -> Household:
        """Each vulnerable group is a subset of the members, and a child under five is neither
        elderly nor pregnant (so under5 and either other group together fit in the members too).
        A person may be in several groups otherwise (an elderly person with a disability)."""
        over = [n for n in ("elderly", "disabled", "under5", "pregnant") if getattr(self, n) > self.members]
        if over:
            raise ValueError(f"more {', '.join(over)} than members")
        if self.under5 + max(self.elderly, self.pregnant) > self.members:
            raise ValueError("under5 plus elderly or pregnant exceed members (a child under five is neither)")
        return self

    @property
    def vulnerable(self) -> int:
        return self.elderly + self.disabled + self.under5 + self.pregnant

    @property
    def kpm(self) -> bool:
        """A KPM (keluarga penerima manfaat) receives a family programme (PKH or Sembako)."""
        return bool(self.programs & FAMILY_PROGRAMS)

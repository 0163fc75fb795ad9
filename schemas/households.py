"""Contract of the ``households`` topic: one DTSEN/DTKS registry record, keyed by ``household_id``.

A tombstone (null value) removes the household. An update older than the stored one is ignored.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.common import HOUSEHOLD_PERSONS_MAX, Contract, Id, UtcDatetime, VillageCode

__all__ = ["PROGRAMS", "Household", "Program"]

logger = logging.getLogger(__name__)

Program = Literal["PKH", "BPNT", "PBI"]
PROGRAMS: tuple[str, ...] = ("PKH", "BPNT", "PBI")
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
    programs: frozenset[Program] = frozenset()
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
        """A KPM (keluarga penerima manfaat) receives at least one programme."""
        return bool(self.programs)

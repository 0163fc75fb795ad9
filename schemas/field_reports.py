"""Contract of the ``field-reports`` topic: a social worker's report, keyed by ``report_id``.

A higher ``revision`` replaces the report; ``retracted`` removes its contribution. A report with a
``household_id`` is household-level (at most one damaged house); without one it is a village summary.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.common import HOUSEHOLD_PERSONS_MAX, Contract, Count, Id, OptionalId, UtcDatetime, VillageCode

__all__ = ["REPORTER_ROLES", "FieldReport", "ReporterRole"]

logger = logging.getLogger(__name__)

ReporterRole = Literal["tagana", "tksk", "pkh", "psm", "karang_taruna", "slrt", "other"]
REPORTER_ROLES: tuple[str, ...] = ("tagana", "tksk", "pkh", "psm", "karang_taruna", "slrt", "other")


class FieldReport(Contract):
    schema_version: Literal[1] = 1
    report_id: Id
    revision: Annotated[int, Field(ge=1, lt=2**23)] = 1
    retracted: bool = False
    event_id: Id | None = None
    reported_at: UtcDatetime
    reporter_id: OptionalId = ""
    reporter_role: ReporterRole = "other"
    village_code: VillageCode
    household_id: Id | None = None
    houses_light: Count = 0
    houses_moderate: Count = 0
    houses_heavy: Count = 0
    displaced: Count = 0
    dead: Count = 0
    injured: Count = 0
    missing: Count = 0
    needs: Annotated[tuple[Annotated[str, StringConstraints(max_length=64)], ...], Field(max_length=32)] = ()
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    notes: Annotated[str, StringConstraints(max_length=4000)] = ""

    @model_validator(mode="after")
    def _one_household(self) -> FieldReport:
        if self.household_id is None:
            return self
        if self.houses_damaged > 1:
            raise ValueError(
                f"a household-level report covers one house, got {self.houses_damaged} damaged houses"
            )
        too_many = [
            name
            for name in ("displaced", "dead", "injured", "missing")
            if getattr(self, name) > HOUSEHOLD_PERSONS_MAX
        ]
        if too_many:
            raise ValueError(
                f"a household-level report counts at most {HOUSEHOLD_PERSONS_MAX} persons "
                f"({', '.join(too_many)})"
            )
        return self

    @property
    def houses_damaged(self) -> int:
        return self.houses_light + self.houses_moderate + self.houses_heavy

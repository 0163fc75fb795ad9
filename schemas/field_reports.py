"""Contract of the ``field-reports`` topic: a social worker's report, keyed by ``report_id``.

A higher ``revision`` replaces the report; ``retracted`` removes its contribution. A report with a
``household_id`` is household-level (at most one damaged house); without one it is a village summary.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from schemas.alerts import HAZARDS, Hazard
from schemas.common import HOUSEHOLD_PERSONS_MAX, Contract, Count, Id, OptionalId, UtcDatetime, VillageCode

__all__ = ["HAZARD_NAMES", "REPORTER_ROLES", "Facilities", "FieldReport", "ReporterRole", "Shelter"]

logger = logging.getLogger(__name__)

ReporterRole = Literal["tagana", "tksk", "pkh", "psm", "karang_taruna", "slrt", "other"]
REPORTER_ROLES: tuple[str, ...] = ("tagana", "tksk", "pkh", "psm", "karang_taruna", "slrt", "other")

#: The hazard a report may name, in the words of the field (BNPB's hazard names) or dampak's own.
HAZARD_NAMES: dict[str, Hazard] = {
    **{h: h for h in HAZARDS},  # type: ignore[misc]
    "gempa": "earthquake",
    "gempa_bumi": "earthquake",
    "banjir": "flood",
    "banjir_bandang": "flood",
    "longsor": "landslide",
    "tanah_longsor": "landslide",
    "erupsi": "volcano",
    "letusan_gunung_api": "volcano",
    "gunung_api": "volcano",
    "cuaca_ekstrem": "extreme_weather",
}


def _hazard_name(value: object) -> object:
    """A hazard named in the field's words (``gempa``, ``Tanah Longsor``) as dampak's hazard."""
    if isinstance(value, str):
        key = "_".join(value.strip().lower().replace("-", " ").split())
        return HAZARD_NAMES.get(key, value)
    return value


class Facilities(Contract):
    """Damaged public facilities, by BNPB's DIBI categories (kerusakan fasilitas)."""

    education: Count = 0  # fasilitas pendidikan
    health: Count = 0  # fasilitas kesehatan
    worship: Count = 0  # fasilitas peribadatan
    office: Count = 0  # kantor
    bridge: Count = 0  # jembatan


class Shelter(Contract):
    """An evacuation site (pos pengungsian) and the displaced persons counted there."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    village_code: VillageCode
    displaced: Count = 0


class FieldReport(Contract):
    schema_version: Literal[1] = 1
    report_id: Id
    revision: Annotated[int, Field(ge=1, lt=2**23)] = 1
    retracted: bool = False
    event_id: Id | None = None
    #: The hazard the report is about (``gempa``, ``banjir``, ``longsor``, ... or dampak's English
    #: names): chooses between overlapping incidents for a report without ``event_id``.
    hazard: Annotated[Hazard, BeforeValidator(_hazard_name)] | None = None
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
    #: Lightly injured persons (luka ringan); a report from before the split counts its injured here.
    injured: Count = 0
    #: Severely injured persons (luka berat): the basis of Kemensos's payment for severe injury.
    injured_severe: Count = 0
    missing: Count = 0
    #: BNPB's DIBI categories: persons affected (menderita/terdampak), families affected (KK
    #: terdampak, a village summary's count of families), houses submerged (terendam), damaged
    #: facilities, and an evacuation site with its displaced persons.
    affected_persons: Count = 0
    affected_families: Count = 0
    houses_submerged: Count = 0
    facilities: Facilities = Facilities()
    shelter: Shelter | None = None
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
            for name in ("displaced", "dead", "injured", "injured_severe", "missing", "affected_persons")
            if getattr(self, name) > HOUSEHOLD_PERSONS_MAX
        ]
        if self.affected_families > 1 or self.houses_submerged > 1:
            raise ValueError("a household-level report covers one family and one house")
        if too_many:
            raise ValueError(
                f"a household-level report counts at most {HOUSEHOLD_PERSONS_MAX} persons "
                f"({', '.join(too_many)})"
            )
        return self

    @property
    def houses_damaged(self) -> int:
        return self.houses_light + self.houses_moderate + self.houses_heavy

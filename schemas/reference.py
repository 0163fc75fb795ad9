"""Public reference figures shared by the domain code and the analyst views.

Minimum needs of displaced people: Peraturan Kepala BNPB No. 7/2008 (Pedoman Tata Cara Pemberian
Bantuan Pemenuhan Kebutuhan Dasar), per displaced person.

Aftershock windows: Gardner, J. K., Knopoff, L. (1974), "Is the sequence of earthquakes in
Southern California, with aftershocks removed, Poissonian?", Bull. Seismol. Soc. Am.
64(5):1363-1367: aftershocks fall in a space-time window after their main shock that grows with its
magnitude. The windows are the fit to the paper's table given by van Stiphout, T., Zhuang, J.,
Marsan, D. (2012), "Seismicity declustering", Community Online Resource for Statistical Seismicity
Analysis, doi:10.5078/corssa-52382934 (as OpenQuake's hmtk ``GardnerKnopoffWindow`` uses them):
``L = 10^(0.1238 M + 0.983)`` km; ``T = 10^(0.032 M + 2.7389)`` days for M >= 6.5, else
``10^(0.5409 M - 0.547)`` days. ``streams.domain.incidents`` applies them; the analyst views write
them into their SQL.
"""

from __future__ import annotations

import logging

__all__ = [
    "ATTRIBUTION_DAYS",
    "GK_DISTANCE",
    "GK_TIME_LARGE",
    "GK_TIME_LARGE_FROM",
    "GK_TIME_SMALL",
    "NEEDS_PER_PERSON",
    "PREGNANT_EXTRA_RICE_KG_WEEK",
    "SECONDARY_MIN_MMI",
]

logger = logging.getLogger(__name__)

#: Per displaced person: weekly rations, and one-off items (toilets: one per 20 persons).
NEEDS_PER_PERSON: dict[str, float] = {
    "rice_kg_week": 2.8,
    "drinking_water_l_week": 17.5,
    "clean_water_l_week": 67.0,
    "family_kits_week": 0.2,  # one per family of five
    "toilets": 0.05,
}
#: Extra rice per week for each pregnant or lactating woman among the displaced.
PREGNANT_EXTRA_RICE_KG_WEEK = 2.7

#: log10 of the aftershock distance window in km: (slope, intercept) in magnitude.
GK_DISTANCE = (0.1238, 0.983)
#: log10 of the time window in days below ``GK_TIME_LARGE_FROM``, and from it.
GK_TIME_SMALL = (0.5409, -0.547)
GK_TIME_LARGE = (0.032, 2.7389)
GK_TIME_LARGE_FROM = 6.5

#: A secondary hazard (landslide, flood, tsunami, eruption) joins an earthquake's incident when
#: it begins within the quake's time window and reaches a village the quake shook at MMI VI or
#: more (PAGER bin VI: [5.5, 6.5)), the intensity from which damage begins.
SECONDARY_MIN_MMI = 5.5

#: An untagged report joins an incident that covers its village from the incident's first event
#: there until this many days after its latest one.
ATTRIBUTION_DAYS = 14

"""dampak's earthquake loss models against what happened in Indonesia: PAGER's fatality model (its
median, its five ranges and their probabilities, its alert colour) and InaSAFE's ITB model, run on
USGS EXPO-CAT exposure and compared with the deaths EXPO-CAT records; and, for named recent
events, the intensity dampak predicts at the epicentre beside the intensity BMKG reported.

    python -m tests.bench.validation [--doc docs/validation.md] [--no-write]

Prints the tables and writes them into ``docs/validation.md`` between ``<!-- generated -->`` and
``<!-- /generated -->``; the text around the markers is kept, so a re-run changes nothing else.

Sources:
- USGS PAGER, EXPO-CAT (github.com/usgs/pager, ``losspager/data/expocat.csv``; public domain):
  per-event population exposed to each MMI level (Atlas ShakeMaps and LandScan population) with
  PAGER-CAT deaths, ``ShakingDeaths`` being the deaths attributed to shaking. Allen, T. I.,
  Marano, K. D., Earle, P. S., Wald, D. J. (2009), "PAGER-CAT: A composite earthquake catalog for
  calibrating global fatality models", Seismol. Res. Lett. 80(1):57-62; Allen, T. I., Wald, D. J.,
  Earle, P. S., Marano, K. D., Hotovec, A. J., Lin, K., Hearne, M. G. (2009), "An Atlas of
  ShakeMaps and population exposure catalog for earthquake loss modeling", Bull. Earthquake Eng.
  7:701-718. The catalogue's last bin, ``MMI9+``, is read as MMI IX.
- Jaiswal, K., Wald, D. (2010), Earthquake Spectra 26(4):1017-1037 (the fatality model); Jaiswal,
  K. S., Wald, D. J., Hearne, M. (2009), USGS Open-File Report 2009-1136 (country rates fitted to
  the fatal earthquakes of the catalogue since 1973): most EXPO-CAT events are in-sample.
- InaSAFE's ITB Bayesian fatality rates and PAGER's ranges: ``streams.domain.estimates``.
- Allen, T. I., Wald, D. J., Worden, C. B. (2012), J. Seismology 16:409-433: the intensity at
  epicentral distance 0 (``streams.domain.hazard.mmi_aww2012``).
- BMKG parameters, BMKG felt intensities and BNPB tolls of the named events:
  ``tests/fixtures/validation/earthquakes.json`` (their sources are listed there and in
  ``docs/validation-sources.md``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streams.domain.estimates import (
    FATALITY_RANGES,
    itb_fatality,
    most_likely,
    pager_alert,
    pager_fatality_median,
    pager_fatality_ranges,
)
from streams.domain.hazard import mmi_aww2012

__all__ = [
    "BEGIN",
    "END",
    "EVENTS",
    "EXPOCAT",
    "MATCH_SECONDS",
    "Assessment",
    "ExpocatRow",
    "Summary",
    "assess",
    "epicentral_mmi",
    "exposure_of",
    "main",
    "match_expocat",
    "range_index",
    "read_events",
    "read_expocat",
    "render",
    "splice",
    "summarize",
]

ROOT = Path(__file__).resolve().parents[2]
EXPOCAT = ROOT / "tests" / "fixtures" / "validation" / "expocat_indonesia.csv"
EVENTS = ROOT / "tests" / "fixtures" / "validation" / "earthquakes.json"
DOC = ROOT / "docs" / "validation.md"
BEGIN = "<!-- generated -->"
END = "<!-- /generated -->"
#: A named event is the EXPO-CAT event whose origin time is this close to BMKG's or USGS's.
MATCH_SECONDS = 90.0

_LEVELS = tuple(range(1, 10))
_DASH = "\u2013"
_RANGE_LABELS = tuple(
    f"{low:,.0f}+" if high is None else ("0" if low == 0 else f"{low:,.0f}{_DASH}{high - 1:,.0f}")
    for low, high in FATALITY_RANGES
)
_P_HEADER = f"P % ({' / '.join(_RANGE_LABELS)})"
_MINUS = "\u2212"
_ROMAN = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")


@dataclass(frozen=True)
class ExpocatRow:
    """One EXPO-CAT event: origin, exposure per MMI level 1..9 (9 = IX+) and recorded deaths."""

    event_id: str
    time: datetime
    lat: float
    lon: float
    depth_km: float
    magnitude: float
    shaking_deaths: float | None
    total_deaths: float | None
    persons: tuple[float, ...]


@dataclass(frozen=True)
class Assessment:
    """Both models on one exposure, beside the deaths that were recorded."""

    median: float
    probabilities: tuple[float, ...]
    likely: int
    alert: str
    itb: float
    observed: float | None

    @property
    def observed_index(self) -> int | None:
        return None if self.observed is None else range_index(self.observed)

    @property
    def observed_probability(self) -> float | None:
        index = self.observed_index
        return None if index is None else self.probabilities[index]


@dataclass(frozen=True)
class Summary:
    """Agreement of one set of assessments with the recorded deaths (events with a record only)."""

    events: int
    pager_hits: int
    pager_near: int
    pager_observed_probability: float
    pager_likely_probability: float
    pager_factor10: int
    pager_below: int
    pager_above: int
    itb_hits: int
    itb_factor10: int
    itb_below: int
    itb_above: int
    observed_total: float
    pager_total: float
    itb_total: float


def _number(value: str) -> float | None:
    return float(value) if value.strip() else None


def read_expocat(path: Path = EXPOCAT) -> list[ExpocatRow]:
    """The rows of an EXPO-CAT extract, in file order."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        ExpocatRow(
            event_id=row["EventID"],
            time=datetime.strptime(row["Time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC),
            lat=float(row["Lat"]),
            lon=float(row["Lon"]),
            depth_km=float(row["Depth"]),
            magnitude=float(row["Magnitude"]),
            shaking_deaths=_number(row["ShakingDeaths"]),
            total_deaths=_number(row["TotalDeaths"]),
            persons=(*(float(row[f"MMI{k}"]) for k in range(1, 9)), float(row["MMI9+"])),
        )
        for row in rows
    ]


def read_events(path: Path = EVENTS) -> list[dict[str, Any]]:
    """The named events' fixture records."""
    events: list[dict[str, Any]] = json.loads(path.read_text())
    return events


def exposure_of(row: ExpocatRow) -> dict[int, float]:
    """Persons per MMI level as ``streams.domain.estimates`` takes them (IX+ as IX)."""
    return dict(zip(_LEVELS, row.persons, strict=True))


def range_index(deaths: float) -> int:
    """Which of PAGER's five ranges a number of deaths falls in."""
    for index, (_, high) in enumerate(FATALITY_RANGES):
        if high is None or deaths < high:
            return index
    raise AssertionError("the last range is open-ended")


def assess(exposure: Mapping[int, float], observed: float | None) -> Assessment:
    """PAGER's median, ranges, most likely range and fatality alert, and ITB's estimate."""
    median = pager_fatality_median(exposure)
    ranges = pager_fatality_ranges(median)
    probabilities = tuple(float(r.probability or 0.0) for r in ranges)
    likely = ranges.index(most_likely(ranges))
    return Assessment(
        median=median,
        probabilities=probabilities,
        likely=likely,
        alert=pager_alert(median, 0.0)[1],
        itb=itb_fatality(exposure)[0].central,
        observed=observed,
    )


def _within_factor10(estimate: float, observed: float) -> bool:
    """Within a factor of 10 on deaths + 1 (so that 0 and 0.4 agree, and 0 and 20 do not)."""
    return abs(math.log10((estimate + 1.0) / (observed + 1.0))) <= 1.0


def summarize(assessments: Sequence[Assessment]) -> Summary:
    """Hit rates, calibration and totals over the assessments that have recorded deaths."""
    known = [a for a in assessments if a.observed is not None]
    observed = [float(a.observed) for a in known if a.observed is not None]
    n = len(known)

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    return Summary(
        events=n,
        pager_hits=sum(a.likely == a.observed_index for a in known),
        pager_near=sum(abs(a.likely - (a.observed_index or 0)) <= 1 for a in known),
        pager_observed_probability=mean([a.observed_probability or 0.0 for a in known]),
        pager_likely_probability=mean([a.probabilities[a.likely] for a in known]),
        pager_factor10=sum(_within_factor10(a.median, o) for a, o in zip(known, observed, strict=True)),
        pager_below=sum(a.likely < range_index(o) for a, o in zip(known, observed, strict=True)),
        pager_above=sum(a.likely > range_index(o) for a, o in zip(known, observed, strict=True)),
        itb_hits=sum(range_index(a.itb) == a.observed_index for a in known),
        itb_factor10=sum(_within_factor10(a.itb, o) for a, o in zip(known, observed, strict=True)),
        itb_below=sum(range_index(a.itb) < range_index(o) for a, o in zip(known, observed, strict=True)),
        itb_above=sum(range_index(a.itb) > range_index(o) for a, o in zip(known, observed, strict=True)),
        observed_total=sum(observed),
        pager_total=sum(a.median for a in known),
        itb_total=sum(a.itb for a in known),
    )


def epicentral_mmi(magnitude: float, depth_km: float) -> float:
    """Allen, Wald & Worden (2012) at epicentral distance 0."""
    return float(mmi_aww2012(magnitude, depth_km, np.zeros(1))[0])


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def match_expocat(event: Mapping[str, Any], rows: Sequence[ExpocatRow]) -> ExpocatRow | None:
    """The EXPO-CAT event within ``MATCH_SECONDS`` of the event's BMKG or USGS origin time."""
    times = [_parse_time(event[source]["time_utc"]) for source in ("bmkg", "usgs")]
    best: tuple[float, ExpocatRow] | None = None
    for row in rows:
        for time in times:
            if time is None:
                continue
            gap = abs((row.time - time).total_seconds())
            if gap <= MATCH_SECONDS and (best is None or gap < best[0]):
                best = (gap, row)
    return None if best is None else best[1]


# ---------------------------------------------------------------------------------- formatting
def _deaths(value: float | None) -> str:
    """An estimate of deaths."""
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    if value < 0.005:
        return "<0.01"
    if value < 1:
        return f"{value:.2f}"
    return f"{value:,.0f}"


def _count(value: float | None) -> str:
    """A recorded number of deaths."""
    return "n/a" if value is None else f"{value:,.0f}"


def _percent(p: float) -> str:
    if p < 0.005:
        return "<1"
    if p > 0.995:
        return ">99"
    return f"{100 * p:.0f}"


def _share(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f}%)" if total else "n/a"


def _probabilities(a: Assessment) -> str:
    return " / ".join(_percent(p) for p in a.probabilities)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _max_level(row: ExpocatRow) -> int:
    return max(k for k, p in zip(_LEVELS, row.persons, strict=True) if p > 0)


def _summary_lines(rows: Sequence[ExpocatRow], shaken: Sequence[tuple[ExpocatRow, Assessment]]) -> list[str]:
    known = [a for _, a in shaken if a.observed is not None]
    groups = {
        "all": known,
        "fatal (≥ 1 shaking death)": [a for a in known if (a.observed or 0.0) >= 1],
        "no shaking death": [a for a in known if (a.observed or 0.0) < 1],
    }
    summaries = {name: summarize(group) for name, group in groups.items()}

    def row(label: str, cell: Any) -> list[str]:
        return [label, *(cell(s) for s in summaries.values())]

    lines = [
        f"EXPO-CAT rows with CountryCode ID: {len(rows)} ({rows[0].time:%Y-%m-%d} to "
        f"{rows[-1].time:%Y-%m-%d}); with persons exposed at MMI V or more: {len(shaken)}; of these, "
        f"with ShakingDeaths recorded: {len(known)}.",
        "",
        "**Agreement with EXPO-CAT's shaking deaths** (events with persons at MMI ≥ V and a "
        f"ShakingDeaths value; ranges {', '.join(_RANGE_LABELS)}):",
        "",
    ]
    lines += _table(
        ["measure", *summaries],
        [
            row("events", lambda s: str(s.events)),
            row(
                "PAGER: deaths in the most likely range",
                lambda s: _share(s.pager_hits, s.events),
            ),
            row(
                "PAGER: in the most likely range or a neighbour",
                lambda s: _share(s.pager_near, s.events),
            ),
            row(
                "PAGER: mean probability given to the observed range",
                lambda s: f"{s.pager_observed_probability:.2f}",
            ),
            row(
                "PAGER: mean probability of its most likely range (a calibrated model's hit rate)",
                lambda s: f"{s.pager_likely_probability:.2f}",
            ),
            row(
                "PAGER: most likely range below the observed range",
                lambda s: _share(s.pager_below, s.events),
            ),
            row(
                "PAGER: most likely range above the observed range",
                lambda s: _share(s.pager_above, s.events),
            ),
            row(
                "PAGER median within a factor of 10 (on deaths + 1)",
                lambda s: _share(s.pager_factor10, s.events),
            ),
            row("ITB: estimate in the observed range", lambda s: _share(s.itb_hits, s.events)),
            row("ITB: estimate below the observed range", lambda s: _share(s.itb_below, s.events)),
            row("ITB: estimate above the observed range", lambda s: _share(s.itb_above, s.events)),
            row(
                "ITB within a factor of 10 (on deaths + 1)",
                lambda s: _share(s.itb_factor10, s.events),
            ),
            row("sum of shaking deaths recorded", lambda s: _count(s.observed_total)),
            row("sum of PAGER medians", lambda s: _deaths(s.pager_total)),
            row("sum of ITB estimates", lambda s: _deaths(s.itb_total)),
        ],
    )
    reliability = []
    for index, label in enumerate(_RANGE_LABELS):
        chosen = [a for a in known if a.likely == index]
        if not chosen:
            continue
        hits = sum(a.observed_index == index for a in chosen)
        mean_p = sum(a.probabilities[index] for a in chosen) / len(chosen)
        reliability.append([label, str(len(chosen)), f"{mean_p:.2f}", _share(hits, len(chosen))])
    other = [
        (row, (row.total_deaths or 0.0) - (row.shaking_deaths or 0.0))
        for row, _ in shaken
        if (row.total_deaths or 0.0) > (row.shaking_deaths or 0.0)
    ]
    lines += [
        "",
        f"Events above where EXPO-CAT's TotalDeaths exceed its ShakingDeaths (deaths it does not "
        f"attribute to shaking, e.g. tsunami or landslides): {len(other)}, with "
        f"{_count(sum(d for _, d in other))} such deaths"
        + (
            " ("
            + "; ".join(
                f"{row.time:%Y-%m-%d} M{row.magnitude}: {_count(row.shaking_deaths)} of "
                f"{_count(row.total_deaths)}"
                for row, _ in sorted(other, key=lambda item: -item[1])[:5]
            )
            + " are the largest)."
            if other
            else "."
        ),
    ]
    floor = [(row, a) for row, a in shaken if a.median + 1e-5 < 0.001]
    if floor:
        lines += [
            "",
            "Events above whose PAGER median (plus losspager's offset 0.00001) is below 0.001, where "
            "losspager's rule (kept by dampak) replaces the expected loss by 0.5, giving P % "
            f"{_probabilities(floor[0][1])}: "
            f"{len(floor)} of {len(shaken)}; of them with at least one shaking death: "
            f"{sum((a.observed or 0.0) >= 1 for _, a in floor)}.",
        ]
    lines += [
        "",
        "**Reliability of PAGER's most likely range** (grouped by the range PAGER called most likely):",
        "",
    ]
    lines += _table(
        ["most likely range", "events", "mean probability PAGER gave it", "deaths in that range"],
        reliability,
    )
    return lines


def _named_lines(events: Sequence[Mapping[str, Any]], rows: Sequence[ExpocatRow]) -> list[str]:
    last = rows[-1].time
    intensity = []
    losses = []
    for event in events:
        bmkg = event["bmkg"]
        usgs = event["usgs"]
        name = str(event["name"])
        observed_mmi = event.get("observed_max_mmi")
        if bmkg["magnitude"] is None:
            predicted = "n/a (no BMKG parameters)"
            difference = "n/a"
        else:
            mmi = epicentral_mmi(float(bmkg["magnitude"]), float(bmkg["depth_km"]))
            predicted = f"{mmi:.1f} ({_ROMAN[math.floor(mmi + 0.5)]})"
            difference = (
                "n/a" if observed_mmi is None else f"{mmi - float(observed_mmi):+.1f}".replace("-", _MINUS)
            )
        bmkg_text = (
            "n/a"
            if bmkg["magnitude"] is None
            else f"{bmkg['time_utc']}, M{bmkg['magnitude']}, {bmkg['depth_km']} km"
        )
        if usgs.get("magnitude") is None or usgs.get("depth_km") is None:
            with_usgs = "n/a"
        else:
            usgs_mmi = epicentral_mmi(float(usgs["magnitude"]), float(usgs["depth_km"]))
            with_usgs = f"{usgs_mmi:.1f} (M{usgs['magnitude']}, {usgs['depth_km']} km)"
        intensity.append(
            [
                name,
                bmkg_text,
                predicted,
                with_usgs,
                "n/a" if observed_mmi is None else _ROMAN[int(observed_mmi)],
                difference,
            ]
        )

        published = event["pager"].get("alert") or "not found offline"
        match = match_expocat(event, rows)
        toll = event["bnpb"]
        toll_text = "n/a" if toll["dead"] is None else f"{toll['dead']:,} dead"
        if toll.get("missing"):
            toll_text += f", {toll['missing']:,} missing"
        if match is None:
            times = [_parse_time(event[s]["time_utc"]) for s in ("bmkg", "usgs")]
            after = any(t is not None and t > last for t in times)
            reason = (
                f"not in EXPO-CAT (after its last Indonesian event, {last:%Y-%m-%d}); not available offline"
                if after
                else "no EXPO-CAT event within 90 s; not available offline"
            )
            losses.append([name, published, reason, *([_DASH] * 5), toll_text])
            continue
        a = assess(exposure_of(match), match.shaking_deaths)
        losses.append(
            [
                name,
                published,
                f"EXPO-CAT {match.event_id} (M{match.magnitude}, {match.depth_km} km, max MMI "
                f"{_ROMAN[_max_level(match)]}; shaking deaths {_count(match.shaking_deaths)})",
                _deaths(a.median),
                _probabilities(a),
                _RANGE_LABELS[a.likely],
                a.alert,
                _deaths(a.itb),
                toll_text,
            ]
        )
    lines = [
        "**Named events: intensity.** dampak's intensity at the epicentre (Allen, Wald & Worden "
        "2012, epicentral distance 0, BMKG's magnitude and depth) beside the highest intensity "
        "BMKG reported (`observed_max_mmi` of the fixture):",
        "",
    ]
    lines += _table(
        [
            "event",
            "BMKG origin",
            "AWW 2012 at epicentre",
            "same with USGS M, depth",
            "BMKG max",
            f"predicted (BMKG) {_MINUS} observed",
        ],
        intensity,
    )
    lines += [
        "",
        "**Named events: losses.** PAGER's published alert, the exposure dampak could use offline, "
        "dampak's PAGER and ITB estimates on it, and the reported toll (fixture `bnpb`):",
        "",
    ]
    lines += _table(
        [
            "event",
            "PAGER published alert",
            "exposure",
            "PAGER median",
            _P_HEADER,
            "most likely",
            "fatality alert",
            "ITB",
            "reported toll",
        ],
        losses,
    )
    return lines


def _event_lines(shaken: Sequence[tuple[ExpocatRow, Assessment]]) -> list[str]:
    table = []
    for row, a in shaken:
        observed_p = a.observed_probability
        table.append(
            [
                f"{row.time:%Y-%m-%d %H:%M}",
                f"{row.magnitude}",
                f"{row.depth_km}",
                _ROMAN[_max_level(row)],
                _deaths(a.median),
                _probabilities(a),
                _RANGE_LABELS[a.likely],
                a.alert,
                _deaths(a.itb),
                _count(row.shaking_deaths),
                _count(row.total_deaths),
                "n/a" if observed_p is None else _percent(observed_p),
            ]
        )
    lines = [
        "**Every EXPO-CAT Indonesian event with persons exposed at MMI ≥ V** (exposure IX+ read as "
        "IX; P % are PAGER's range probabilities; P(obs) % is the probability PAGER gave the range "
        "the shaking deaths fell in):",
        "",
    ]
    lines += _table(
        [
            "time (UTC)",
            "M",
            "depth km",
            "max MMI",
            "PAGER median",
            _P_HEADER,
            "most likely",
            "alert",
            "ITB",
            "shaking deaths",
            "total deaths",
            "P(obs) %",
        ],
        table,
    )
    return lines


def render(rows: Sequence[ExpocatRow], events: Sequence[Mapping[str, Any]]) -> str:
    """The generated part of docs/validation.md (without the markers)."""
    shaken = [(row, assess(exposure_of(row), row.shaking_deaths)) for row in rows if sum(row.persons[4:]) > 0]
    lines = [
        "<!-- written by `python -m tests.bench.validation`; edit the text outside the markers -->",
        "",
        *_summary_lines(rows, shaken),
        "",
        *_named_lines(events, rows),
        "",
        *_event_lines(shaken),
    ]
    return "\n".join(lines) + "\n"


def splice(document: str, generated: str) -> str:
    """``document`` with the text between the markers replaced (markers appended if absent)."""
    block = f"{BEGIN}\n{generated}{END}"
    start = document.find(BEGIN)
    stop = document.find(END, start + len(BEGIN)) if start >= 0 else -1
    if start < 0 or stop < 0:
        return document.rstrip("\n") + ("\n\n" if document.strip() else "") + block + "\n"
    return document[:start] + block + document[stop + len(END) :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to update")
    parser.add_argument("--expocat", type=Path, default=EXPOCAT)
    parser.add_argument("--events", type=Path, default=EVENTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--quiet", action="store_true", help="do not print the tables")
    args = parser.parse_args(argv)

    generated = render(read_expocat(args.expocat), read_events(args.events))
    if not args.quiet:
        sys.stdout.write(generated)
    if not args.no_write:
        doc: Path = args.doc
        before = doc.read_text() if doc.exists() else ""
        after = splice(before, generated)
        if after != before:
            doc.write_text(after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

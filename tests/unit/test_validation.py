"""The validation generator (``tests/bench/validation.py``) against values worked out by hand.

Two EXPO-CAT rows (USGS, github.com/usgs/pager ``losspager/data/expocat.csv``) are assessed here
with PAGER's Indonesian fatality model written out independently: rate(k) = Phi(ln(k / theta) /
beta) with theta 13.248768, beta 0.150846 (losspager ``fatality.xml``, ccode ID; Jaiswal & Wald
2010, Earthquake Spectra 26(4)), the range probabilities of losspager ``calcEmpiricalProbFromRange``
(G 1.714702, 1.7613 below an expected loss of 1, 0.5 below 0.001) and InaSAFE's ITB Bayesian
rates. The generator must also leave ``docs/validation.md`` unchanged when run again.
"""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.bench import validation as v

__all__: list[str] = []

THETA = 13.248768
BETA = 0.150846
G = 1.714702
G_SMALL = 1.7613
OFFSET = 0.00001
ITB = {6: 3.41733122522e-05, 7: 0.000387804494226, 8: 0.001851451786, 9: 0.00787294191661}
BOUNDS = (1.0, 10.0, 100.0, 1000.0)

# EXPO-CAT 20060526225358 (Yogyakarta) and 19760714071323 (Bali): persons at MMI I..VIII, IX+.
YOGYAKARTA = v.ExpocatRow(
    event_id="20060526225358",
    time=datetime(2006, 5, 26, 22, 53, 58, tzinfo=UTC),
    lat=-7.961,
    lon=110.446,
    depth_km=12.5,
    magnitude=6.4,
    shaking_deaths=5749.0,
    total_deaths=5749.0,
    persons=(0.0, 0.0, 563049.0, 29658644.0, 3475975.0, 1641815.0, 1342313.0, 159197.0, 0.0),
)
BALI = v.ExpocatRow(
    event_id="19760714071323",
    time=datetime(1976, 7, 14, 7, 13, 23, tzinfo=UTC),
    lat=-8.227,
    lon=114.775,
    depth_km=25.4,
    magnitude=6.5,
    shaking_deaths=563.0,
    total_deaths=563.0,
    persons=(0.0, 0.0, 28277.0, 2969023.0, 1312691.0, 90534.0, 0.0, 0.0, 0.0),
)


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _median(persons: tuple[float, ...]) -> float:
    return sum(persons[k - 1] * _phi(math.log(k / THETA) / BETA) for k in range(5, 10))


def _probabilities(median: float) -> list[float]:
    expected = median + OFFSET
    g = G_SMALL if expected < 1 else G
    if expected < 0.001:
        expected = 0.5
    cdf = [_phi((math.log(x + OFFSET) - math.log(expected)) / g) for x in BOUNDS]
    return [cdf[0], cdf[1] - cdf[0], cdf[2] - cdf[1], cdf[3] - cdf[2], 1.0 - cdf[3]]


def _itb(persons: tuple[float, ...]) -> float:
    return sum(persons[k - 1] * rate for k, rate in ITB.items())


def test_the_extract_holds_the_indonesian_rows() -> None:
    rows = v.read_expocat()
    assert len(rows) == 498
    by_id = {row.event_id: row for row in rows}
    assert by_id[YOGYAKARTA.event_id] == YOGYAKARTA
    assert by_id[BALI.event_id] == BALI
    assert [row.time for row in rows] == sorted(row.time for row in rows)


@pytest.mark.parametrize("row", [YOGYAKARTA, BALI], ids=["yogyakarta-2006", "bali-1976"])
def test_assessment_matches_the_model_worked_by_hand(row: v.ExpocatRow) -> None:
    a = v.assess(v.exposure_of(row), row.shaking_deaths)
    median = _median(row.persons)
    probabilities = _probabilities(median)
    assert a.median == pytest.approx(median, rel=1e-9)
    assert a.probabilities == pytest.approx(probabilities, abs=1e-9)
    assert sum(a.probabilities) == pytest.approx(1.0)
    assert a.likely == max(range(5), key=lambda i: probabilities[i])
    assert a.itb == pytest.approx(_itb(row.persons), rel=1e-9)
    assert a.observed_probability == pytest.approx(probabilities[v.range_index(row.shaking_deaths or 0)])


def test_the_two_rows_give_the_expected_table_values() -> None:
    yogyakarta = v.assess(v.exposure_of(YOGYAKARTA), YOGYAKARTA.shaking_deaths)
    bali = v.assess(v.exposure_of(BALI), BALI.shaking_deaths)
    # Yogyakarta: a median of about 82, most likely 10-99, yellow; 5,749 deaths fell in 1,000+.
    assert round(yogyakarta.median) == 82
    assert (yogyakarta.likely, yogyakarta.alert, v.range_index(5749)) == (2, "yellow", 4)
    assert round(yogyakarta.itb) == 871
    # Bali: nobody above MMI VI, a median below 0.01 and >99 % on 0; 563 deaths fell in 100-999.
    assert bali.median < 0.01
    assert (bali.likely, bali.alert, v.range_index(563)) == (0, "green", 3)
    assert bali.itb == pytest.approx(90534 * ITB[6])

    s = v.summarize([yogyakarta, bali])
    assert (s.events, s.pager_hits, s.pager_near, s.pager_below, s.pager_above) == (2, 0, 0, 2, 0)
    assert (s.itb_hits, s.itb_below, s.itb_above) == (0, 2, 0)
    # Within a factor of 10 on deaths + 1: ITB 871 against 5,749 only.
    assert (s.pager_factor10, s.itb_factor10) == (0, 1)
    assert s.pager_observed_probability == pytest.approx(
        (_probabilities(yogyakarta.median)[4] + _probabilities(bali.median)[3]) / 2
    )
    assert s.observed_total == 5749 + 563
    assert s.itb_total == pytest.approx(_itb(YOGYAKARTA.persons) + _itb(BALI.persons))


def test_range_boundaries() -> None:
    assert [v.range_index(d) for d in (0, 0.9, 1, 9, 10, 99, 100, 999, 1000, 1e6)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]


def test_named_events_are_matched_to_expocat_by_time() -> None:
    rows = v.read_expocat()
    matched = {
        str(event["name"]).split(",")[0].split(" ")[0]: v.match_expocat(event, rows)
        for event in v.read_events()
    }
    assert matched["Yogyakarta"] is not None and matched["Yogyakarta"].event_id == "20060526225358"
    assert matched["Padang"] is not None and matched["Padang"].event_id == "20090930101609"
    assert matched["Pidie"] is None
    assert matched["Cianjur"] is None


def test_splice_keeps_the_text_around_the_markers() -> None:
    document = f"intro\n\n{v.BEGIN}\nold table\n{v.END}\n\noutro\n"
    assert v.splice(document, "new\n") == f"intro\n\n{v.BEGIN}\nnew\n{v.END}\n\noutro\n"
    assert v.splice("intro\n", "new\n") == f"intro\n\n{v.BEGIN}\nnew\n{v.END}\n"


def test_rerunning_the_generator_leaves_the_document_unchanged(tmp_path: Path) -> None:
    copy = tmp_path / "validation.md"
    shutil.copyfile(v.DOC, copy)
    original = copy.read_text()
    assert v.main(["--doc", str(copy), "--quiet"]) == 0
    assert copy.read_text() == original, "docs/validation.md is stale: run python -m tests.bench.validation"
    assert v.main(["--doc", str(copy), "--quiet"]) == 0
    assert copy.read_text() == original

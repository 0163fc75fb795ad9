"""The command-center page as HTML, without a worker: the live page loads its libraries from the
worker, a report inlines them (and its figures), and Leaflet's images never 404."""

from __future__ import annotations

import re

import pytest

from streams.ops.center import LABELS, LIBRARIES, library, page

FIGURES = {"events": [], "event": None, "villages": [], "pipeline": {"status": None, "lag": None}}


def test_the_live_page_loads_the_libraries_from_the_worker_and_fetches_its_figures() -> None:
    html = page("id", None, "data.json")
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
        "lib/leaflet.css",
        "lib/leaflet.js",
        "lib/plotly.min.js",
    ]
    assert "const DATA = null" in html and 'id="event-picker"' in html
    assert LABELS["id"]["title"] in html


def test_a_report_inlines_everything_and_asks_for_nothing() -> None:
    html = page("en", FIGURES)
    assert not re.search(r"<(?:script|link)\b[^>]*\b(?:src|href)=", html)
    assert "https://cdn" not in html.split("<script>")[0]
    for name in LIBRARIES:
        assert library(name).decode() in html
    assert '"events":[]' in html and 'id="event-picker"' not in html and LABELS["en"]["title"] in html


def test_leaflets_stylesheet_carries_its_images_and_no_source_map_is_named() -> None:
    css = library("leaflet.css")
    assert b"images/" not in css and css.count(b"url(data:image/png;base64,") == 3
    for name in LIBRARIES:
        assert b"sourceMappingURL" not in library(name)[-200:]
    assert library("plotly.min.js").startswith(b"/**") and b"Plotly" in library("plotly.min.js")[:2000]


def test_an_unknown_library_is_refused() -> None:
    with pytest.raises(KeyError):
        library("../center.py")


def test_both_languages_name_every_label() -> None:
    assert LABELS["id"].keys() == LABELS["en"].keys()

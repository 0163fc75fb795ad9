"""The command-center page as HTML, without a worker: the live page loads its libraries from the
worker, a report inlines them (and its figures), and Leaflet's images never 404; the worker
shares one read of the figures among the pages that ask."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from streams.ops.center import LABELS, LIBRARIES, SharedFigures, library, page

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


class _Reads:
    """A ``read`` that counts its calls and answers once ``gate`` is set, or raises ``fail``."""

    def __init__(self) -> None:
        self.calls: list[str | None] = []
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, event_id: str | None) -> dict[str, Any]:
        self.calls.append(event_id)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {"event": event_id, "read": len(self.calls)}


def test_pages_asking_at_once_share_one_read_and_the_next_ones_its_answer_while_fresh() -> None:
    async def scenario() -> None:
        now = [0.0]
        reads = _Reads()
        shared = SharedFigures(reads, fresh_s=10, clock=lambda: now[0])
        waiting = [asyncio.ensure_future(shared.get("E1")) for _ in range(5)]
        other = asyncio.ensure_future(shared.get(None))
        await asyncio.sleep(0)
        reads.gate.set()
        answers = await asyncio.gather(*waiting)
        assert {a["read"] for a in answers} == {1} and len(answers) == 5
        assert (await other)["event"] is None
        assert sorted(reads.calls, key=str) == ["E1", None]
        now[0] = 9.9
        assert (await shared.get("E1"))["read"] == 1 and len(reads.calls) == 2
        now[0] = 10.0
        assert (await shared.get("E1"))["read"] == 3 and reads.calls[-1] == "E1"

    asyncio.run(scenario())


def test_a_failed_read_fails_every_waiting_page_and_is_not_kept() -> None:
    async def scenario() -> None:
        reads = _Reads()
        reads.fail = RuntimeError("all analyst connections are busy")
        shared = SharedFigures(reads, fresh_s=10, clock=lambda: 0.0)
        waiting = [asyncio.ensure_future(shared.get("E1")) for _ in range(3)]
        await asyncio.sleep(0)
        reads.gate.set()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert [str(r) for r in results] == ["all analyst connections are busy"] * 3
        reads.fail = None
        assert (await shared.get("E1"))["read"] == 2

    asyncio.run(scenario())


def test_a_page_that_goes_away_does_not_cancel_the_read_the_others_wait_for() -> None:
    async def scenario() -> None:
        reads = _Reads()
        shared = SharedFigures(reads, fresh_s=10, clock=lambda: 0.0)
        first = asyncio.ensure_future(shared.get("E1"))
        second = asyncio.ensure_future(shared.get("E1"))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        reads.gate.set()
        assert (await second)["read"] == 1 and first.cancelled() and reads.calls == ["E1"]

    asyncio.run(scenario())

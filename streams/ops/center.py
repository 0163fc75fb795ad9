"""The command-center page: served live by the worker at ``/pusat/`` (its figures refreshed from
``/pusat/data.json`` every ``REFRESH_S``), or written as one self-contained file by
``dampak report EVENT --out FILE.html`` (the figures and the libraries inside it, nothing fetched).

The map is drawn with Leaflet (https://leafletjs.com/reference.html, 1.9.3 from the
``xstatic-leaflet`` wheel) and no tile layer: village polygons where boundaries are shipped,
circle markers at the village centroids elsewhere, the kecamatan and regency outlines, the
epicentre and the intensity contours, so it works offline. The charts are plotly.js
(https://plotly.com/javascript/), the bundle the ``plotly`` wheel ships
(``plotly/package_data/plotly.min.js``): a maintained library with date axes, subplots with one
y axis each and filled ranges, installed by pip like every other dependency, with no npm step and
no CDN; the worker serves both libraries from the installed packages (``library``), and a report
inlines them. Leaflet's stylesheet is served with its images as data URIs, so nothing 404s.
Labels are Indonesian by default (``DAMPAK_WEB__LANGUAGE=en`` for English).

Times are stored in UTC and shown on the clock of each event's place: its province's zone, WIB
(UTC+7), WITA (UTC+8) or WIT (UTC+9) per Keputusan Presiden No. 41 Tahun 1987, which
``sinks.center`` sets on every event (``time_zone``, ``utc_offset_h``); the label ``time`` names it
("Waktu (WIB)", "Time (WITA)"). The events table names one zone in its heading, or each row's own
when the events lie in several; the timeline and the "updated" stamp use the shown event's zone.
The "updated" stamp is the time the figures were read (``as_of``), not the time they arrived.

Every open page asks for its figures every ``REFRESH_S``, and at national scale one read takes
longer than that (docs/national-run.md). So the worker shares them (``SharedFigures``): for each
event, one read at a time, its answer given to every page that asked meanwhile and to those that
ask in the ``REFRESH_S`` after it ends; and a page asks again only once its last answer came.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

__all__ = ["LABELS", "LIBRARIES", "REFRESH_S", "SharedFigures", "library", "page", "pipeline_state"]

logger = logging.getLogger(__name__)

REFRESH_S = 10

LABELS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Pusat Komando: Dampak Sosial Bencana",
        "events": "Kejadian",
        "event": "Kejadian",
        "time": "Waktu ({zone})",
        "level": "Tingkat PAGER",
        "size": "Magnitudo / wilayah",
        "estimate": "Perkiraan",
        "reported": "Dilaporkan",
        "households": "KK terdampak",
        "displaced": "Pengungsi",
        "dead": "Meninggal",
        "injured": "Luka-luka",
        "missing": "Hilang",
        "heavy": "Rusak berat",
        "moderate": "Rusak sedang",
        "light": "Rusak ringan",
        "map": "Peta desa",
        "map_note": (
            "Desa: batasnya bila tersedia, titik tengahnya bila tidak (garis putus: titik tengah"
            " kecamatan). Garis: batas kecamatan dan kabupaten, kontur intensitas."
        ),
        "no_damage": "belum ada laporan",
        "timeline": "Perkembangan angka yang dilaporkan",
        "needs": "Kebutuhan minimum per kabupaten/kota (per minggu)",
        "regency": "Kabupaten/kota",
        "rice": "Beras (kg)",
        "water": "Air minum (l)",
        "kits": "Paket keluarga",
        "toilets": "Jamban",
        "reassess": "Keluarga yang perlu dinilai ulang (tanpa data pribadi)",
        "reason": "Alasan",
        "village": "Desa",
        "pipeline": "Keadaan pipeline",
        "lag": "Antrean (lag)",
        "status": "Status",
        "dead_letters": "Pesan ditolak (1 jam terakhir)",
        "updated": "Diperbarui",
        "live": "langsung, diperbarui tiap",
        "seconds": "detik",
        "snapshot": "cuplikan",
        "none": "Belum ada kejadian.",
        "unranked": "belum berperingkat",
        "unregistered": "tidak terdaftar",
        "above_desil_5": "desil di atas 5",
        "not_mapped": "tidak ada desa kejadian ini yang berposisi",
        "range": "rentang",
        "chance": "peluang",
        "upper_bound": "batas atas",
        "exposed": "KK terpapar (perkiraan)",
        "ranges": "Perkiraan dengan rentangnya",
        "entitlements": "Bantuan Kemensos yang terutang (Permensos 4/2015)",
        "kind": "Jenis",
        "basis": "Dasar",
        "unit": "Per satuan",
        "amount": "Jumlah",
        "santunan_ahli_waris": "santunan ahli waris",
        "bantuan_luka_berat": "luka berat",
        "jaminan_hidup": "jaminan hidup (jiwa x hari)",
        "isi_hunian": "isi hunian (KK rumah rusak berat)",
        "coverage": "Desa terdampak yang belum melapor, per kecamatan",
        "district": "Kecamatan",
        "exposed_villages": "Desa terdampak",
        "unreported_villages": "Belum melapor",
        "unreported": "Desa",
        "since_last_report": "Laporan terakhir",
        "hours": "jam lalu",
        "no_programme": "desil 1-5 tanpa program",
        "graduated": "keluar (graduasi) dari PKH",
        "model": "Model",
        "kec": "Kec.",
        "estimate_lc": "perkiraan",
        "reported_lc": "dilaporkan",
        "heavy_share": "Rumah rusak berat per KK terdaftar",
        "heavy_unregistered": "rusak berat, tanpa KK terdaftar",
        "intensity": "Perkiraan intensitas (MMI) atau kelas bahaya",
        "no_estimate": "tanpa perkiraan",
        "villages_left_out": (
            "desa di peta: {drawn} dari {total} (yang dilaporkan, lalu yang terdampak paling berat)"
        ),
        "coverage_layer": "Cakupan laporan",
        "cov_gap": "terdampak, belum melapor",
        "cov_done": "terdampak, sudah melapor",
        "cov_extra": "melapor, di luar wilayah terdampak",
        "cov_none": "tidak terdampak, belum melapor",
        "registered": "KK terdaftar",
        "of_registered": "dari KK terdaftar",
        "at_district": "posisi: titik tengah kecamatan (batas desa tidak tersedia)",
        "contour": "Kontur intensitas",
        "epicentre": "Pusat gempa",
        "incident": "Insiden",
        "hazard": "Bahaya",
        "rule": "Kaitan",
        "outcome": "Besaran",
        "label": "Keterangan",
        "deaths": "Meninggal",
        "economic_loss_usd": "Kerugian ekonomi (US$)",
        "layer_damage": "Kerusakan",
        "layer_mmi": "Intensitas / bahaya",
        "layer_coverage": "Cakupan",
        "pick_event": "Pilih kejadian",
    },
    "en": {
        "title": "Command center: social impact of disasters",
        "events": "Events",
        "event": "Event",
        "time": "Time ({zone})",
        "level": "PAGER level",
        "size": "Magnitude / area",
        "estimate": "Estimate",
        "reported": "Reported",
        "households": "Households affected",
        "displaced": "Displaced",
        "dead": "Dead",
        "injured": "Injured",
        "missing": "Missing",
        "heavy": "Heavily damaged",
        "moderate": "Moderately damaged",
        "light": "Lightly damaged",
        "map": "Villages",
        "map_note": (
            "Villages: their boundary where shipped, else their centre (dashed: the kecamatan's"
            " centre). Lines: kecamatan and regency boundaries, intensity contours."
        ),
        "no_damage": "no report yet",
        "timeline": "Reported figures over time",
        "needs": "Minimum needs per regency (per week)",
        "regency": "Regency",
        "rice": "Rice (kg)",
        "water": "Drinking water (l)",
        "kits": "Family kits",
        "toilets": "Toilets",
        "reassess": "Households to re-assess (no personal data)",
        "reason": "Reason",
        "village": "Village",
        "pipeline": "Pipeline",
        "lag": "Lag",
        "status": "Status",
        "dead_letters": "Dead letters (last hour)",
        "range": "range",
        "chance": "chance",
        "upper_bound": "upper bound",
        "exposed": "Households exposed (estimate)",
        "ranges": "Estimates with their ranges",
        "entitlements": "Kemensos assistance owed (Permensos 4/2015)",
        "kind": "Kind",
        "basis": "Basis",
        "unit": "Per unit",
        "amount": "Amount",
        "santunan_ahli_waris": "heirs of the dead",
        "bantuan_luka_berat": "severely injured",
        "jaminan_hidup": "living allowance (person-days)",
        "isi_hunian": "household goods (families, heavy damage)",
        "coverage": "Struck villages not reported from yet, per kecamatan",
        "district": "District",
        "exposed_villages": "Struck villages",
        "unreported_villages": "Not reported",
        "unreported": "Villages",
        "since_last_report": "Last report",
        "hours": "hours ago",
        "no_programme": "desil 1-5 with no programme",
        "graduated": "graduated from PKH",
        "model": "Model",
        "updated": "Updated",
        "live": "live, refreshed every",
        "seconds": "seconds",
        "snapshot": "snapshot",
        "none": "No event yet.",
        "unranked": "not ranked",
        "unregistered": "not registered",
        "above_desil_5": "decile above 5",
        "not_mapped": "no village of this event has a position",
        "kec": "Kec.",
        "estimate_lc": "estimate",
        "reported_lc": "reported",
        "heavy_share": "Heavily damaged houses per registered household",
        "heavy_unregistered": "heavy damage, no registered household",
        "intensity": "Estimated intensity (MMI) or hazard class",
        "no_estimate": "no estimate",
        "villages_left_out": (
            "villages on the map: {drawn} of {total} (the reported ones, then the hardest struck)"
        ),
        "coverage_layer": "Report coverage",
        "cov_gap": "struck, not reported yet",
        "cov_done": "struck, reported",
        "cov_extra": "reported, outside the struck area",
        "cov_none": "not struck, not reported",
        "registered": "registered households",
        "of_registered": "of registered households",
        "at_district": "placed at its kecamatan's centre (no village boundary)",
        "contour": "Intensity contour",
        "epicentre": "Epicentre",
        "incident": "Incident",
        "hazard": "Hazard",
        "rule": "Link",
        "outcome": "Outcome",
        "label": "Label",
        "deaths": "Dead",
        "economic_loss_usd": "Economic loss (US$)",
        "layer_damage": "Damage",
        "layer_mmi": "Intensity / hazard",
        "layer_coverage": "Coverage",
        "pick_event": "Choose an event",
    },
}

ASSETS = Path(__file__).with_name("assets")

#: The libraries the page loads, by the name the worker serves them under (``/pusat/lib/NAME``).
LIBRARIES: dict[str, str] = {
    "leaflet.css": "text/css; charset=utf-8",
    "leaflet.js": "text/javascript; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}


@functools.cache
def library(name: str) -> bytes:
    """A library's file from its installed package: Leaflet's from ``xstatic-leaflet``, plotly.js
    from the ``plotly`` wheel. Leaflet's stylesheet comes with its images inlined as data URIs
    and the source-map comments are dropped, so neither the page nor the report asks for a file
    that is not there. Raises KeyError for a name not in ``LIBRARIES``."""
    if name not in LIBRARIES:
        raise KeyError(name)
    if name == "plotly.min.js":
        body = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    else:
        folder = resources.files("xstatic.pkg.leaflet") / "data"
        body = (folder / name).read_bytes()
        if name == "leaflet.css":
            body = re.sub(
                rb"url\((images/[\w.-]+\.png)\)",
                lambda m: (
                    b"url(data:image/png;base64,"
                    + base64.b64encode(folder.joinpath(*m[1].decode().split("/")).read_bytes())
                    + b")"
                ),
                body,
            )
    return re.sub(rb"\n//# sourceMappingURL=\S+\s*$", b"\n", body)


def page(lang: str, data: dict[str, Any] | None, data_url: str = "data.json") -> str:
    """The page. ``data``: the figures, embedded with the libraries (a report file, which asks
    for nothing); None: the live page, which loads the libraries from ``lib/`` beside it and fetches
    its figures from ``data_url`` every ``REFRESH_S``."""
    labels = {**LABELS.get(lang, LABELS["id"]), "_locale": "id-ID" if lang == "id" else "en-GB"}
    live = f"{labels['live']} {REFRESH_S} {labels['seconds']}"
    mode = labels["snapshot"] if data is not None else live
    css = (ASSETS / "center.css").read_text()
    script = (
        f"const LABELS = {_json(labels)};\nconst DATA = {_json(data)};\n"
        f"const DATA_URL = {_json(data_url)};\nconst REFRESH_MS = {REFRESH_S * 1000};\n"
        + (ASSETS / "center.js").read_text()
    )
    if data is None:
        libraries = (
            '<link rel="stylesheet" href="lib/leaflet.css">'
            '<script src="lib/leaflet.js"></script><script src="lib/plotly.min.js"></script>'
        )
        picker = f'<select id="event-picker" aria-label="{html.escape(labels["pick_event"])}"></select>'
    else:
        libraries = (
            f"<style>{_inline('leaflet.css')}</style><script>{_inline('leaflet.js')}</script>"
            f"<script>{_inline('plotly.min.js')}</script>"
        )
        picker = ""
    return (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(labels['title'])}</title>{libraries}<style>{css}</style></head><body>"
        f'<header><h1>{html.escape(labels["title"])}</h1>{picker}<span><span id="updated"></span> · '
        f'{html.escape(mode)}</span></header><main id="root"></main><script>{script}</script></body></html>'
    )


def _inline(name: str) -> str:
    # Inside <script> or <style>, only "</script" or "</style" would end the element early.
    text = library(name).decode()
    closing = "</style" if name.endswith(".css") else "</script"
    if closing in text.lower():
        raise ValueError(f"{name} contains {closing}>, which would end its element")
    return text


class SharedFigures:
    """The page's figures, shared by every page that asks: for each event asked for (None: the
    most recent), one ``read`` at a time, whose answer goes to every caller waiting for it and is
    given again for ``fresh_s`` seconds after the read ends. A read that fails fails for each
    caller waiting on it and is not kept; a caller that goes away does not cancel the read the
    others wait for. Answers older than ``fresh_s`` are dropped, so what is kept is bounded by the
    events read in the last ``fresh_s`` seconds."""

    def __init__(
        self,
        read: Callable[[str | None], Awaitable[dict[str, Any]]],
        fresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._fresh_s = fresh_s
        self._clock = clock
        self._answers: dict[str | None, tuple[float, dict[str, Any]]] = {}
        self._reading: dict[str | None, asyncio.Future[dict[str, Any]]] = {}

    async def get(self, event_id: str | None) -> dict[str, Any]:
        answer = self._answers.get(event_id)
        if answer is not None and self._clock() - answer[0] < self._fresh_s:
            return answer[1]
        reading = self._reading.get(event_id)
        if reading is None:
            reading = self._reading[event_id] = asyncio.ensure_future(self._read_once(event_id))
            # Retrieved here, so a read every caller left does not log "never retrieved".
            reading.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(reading)

    async def _read_once(self, event_id: str | None) -> dict[str, Any]:
        try:
            data = await self._read(event_id)
        finally:
            del self._reading[event_id]
        now = self._clock()
        self._answers = {k: a for k, a in self._answers.items() if now - a[0] < self._fresh_s}
        self._answers[event_id] = (now, data)
        return data


def pipeline_state() -> dict[str, Any]:
    """The lag the leader sampled last (from its gauges): the worst group status and total lag."""
    from streams.ops.metrics import GROUP_LAG, GROUP_STATUS

    statuses = [s.value for m in GROUP_STATUS.collect() for s in m.samples]
    lags = [s.value for m in GROUP_LAG.collect() for s in m.samples]
    if not statuses:
        return {"status": None, "lag": None}
    return {"status": ("OK", "WARN", "ERR")[min(2, int(max(statuses)))], "lag": int(sum(lags))}


def _json(value: Any) -> str:
    # "</" cannot close the script element from inside a string.
    return orjson.dumps(value, default=str).decode().replace("</", "<\\/")

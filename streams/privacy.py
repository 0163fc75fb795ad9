"""Pseudonyms for personal identifiers and redaction of raw payloads.

NIK, KK numbers and household ids never leave the pipeline in clear: ClickHouse and logs get a keyed
hash (HMAC-SHA256 with the configured secret), stable for a given key, so analysts can still join.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

import orjson

from streams.settings import PrivacySettings

__all__ = ["PERSONAL_FIELDS", "Pseudonymizer", "mask_identifiers"]

logger = logging.getLogger(__name__)

#: Fields of any topic (compared case-insensitively) that hold personal identifiers.
PERSONAL_FIELDS = ("household_id", "nik_head", "kk_number", "nik", "kk", "no_kk", "nomor_kk", "id_keluarga")
_PERSONAL = frozenset(PERSONAL_FIELDS)
_MASK = "<redacted>"
# A NIK or KK number (16 digits), also written with spaces, dots or dashes between digits; and any
# other run of 10 or more digits.
_SEPARATED_16 = re.compile(r"(?<![0-9])(?:[0-9][ .\-]?){15}[0-9](?![0-9])")
_LONG_DIGITS = re.compile(r"[0-9]{10,}")
_SEPARATED_16_B = re.compile(rb"(?<![0-9])(?:[0-9][ .\-]?){15}[0-9](?![0-9])")
_LONG_DIGITS_B = re.compile(rb"[0-9]{10,}")
# The value of a known id key in text that is not JSON (e.g. a truncated message), quoted or not.
_KEYED_VALUE_B = re.compile(
    rb'(?i)("?(?:'
    + b"|".join(re.escape(f.encode()) for f in PERSONAL_FIELDS)
    + rb')"?\s*[:=]\s*)("[^"]*"?|[^\s,}\]]*)'
)


def mask_identifiers(text: str) -> str:
    """``text`` with every NIK/KK-like number (16 digits, with or without separators) and every
    other run of 10 or more digits masked."""
    return _LONG_DIGITS.sub(_MASK, _SEPARATED_16.sub(_MASK, text))


class Pseudonymizer:
    """Keyed hashing. A pseudonym is ``<key_id>:<32 hex chars>``; the key id makes rotation visible.

    The pseudonyms of recently seen values are kept, up to ``CACHE_SIZE`` (then the cache starts
    again): a report's revisions and copies name the same household, but a registry load names
    each of millions once, and a cache of all of them cost memory and, worse, made each of the
    interpreter's full garbage collections walk it (a fifth of the worker's time at 1,000,000).
    """

    CACHE_SIZE = 65_536

    def __init__(self, settings: PrivacySettings) -> None:
        # The key's inner and outer states, computed once; each pseudonym hashes a copy.
        self._keyed = hmac.new(settings.hmac_key.get_secret_value().encode(), digestmod=hashlib.sha256)
        self.key_id = settings.key_id
        self._cache: dict[tuple[str, str], str] = {}

    def ref(self, kind: str, value: str | None) -> str:
        """Pseudonym of ``value`` in namespace ``kind`` (a field name such as ``household_id``).

        Returns '' for a missing value.
        """
        if not value:
            return ""
        cached = self._cache.get((kind, value))
        if cached is None:
            h = self._keyed.copy()
            h.update(f"{kind}:{value}".encode())
            cached = f"{self.key_id}:{h.hexdigest()[:32]}"
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[(kind, value)] = cached
        return cached

    def redact_payload(self, payload: bytes | None, key: bytes | None, max_bytes: int) -> str:
        """A rejected message's payload, safe to store, capped at ``max_bytes`` (UTF-8, lossy).

        JSON is redacted on its structure: at any depth, the value of every personal field (any
        key case) becomes its pseudonym, and identifier-like numbers in any string, number or key
        are masked. Anything else is redacted as text: the value after every known id key, and
        every identifier-like run of digits. ``key`` is the message key when it is itself
        personal (the households topic): every occurrence is replaced by its pseudonym.
        """
        if payload is None:
            return ""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            text = _LONG_DIGITS_B.sub(_MASK.encode(), _SEPARATED_16_B.sub(_MASK.encode(), payload))
            text = _KEYED_VALUE_B.sub(rb"\1" + _MASK.encode(), text)
        else:
            text = orjson.dumps(self._redact(doc, None))
        if key:
            text = text.replace(key, self.ref("household_id", key.decode("utf-8", "replace")).encode())
        return text[:max_bytes].decode("utf-8", "replace")

    def _redact(self, value: Any, field: str | None) -> Any:
        if isinstance(value, dict):
            return {mask_identifiers(str(k)): self._redact(v, str(k).lower()) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact(v, field) for v in value]
        if field in _PERSONAL and isinstance(value, str | int) and not isinstance(value, bool):
            return self.ref(field, str(value))
        if isinstance(value, str):
            return mask_identifiers(value)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**9:
            return _MASK
        return value

"""Pseudonyms for personal identifiers and redaction of raw payloads.

NIK, KK numbers and household ids never leave the pipeline in clear: ClickHouse and logs get a keyed
hash (HMAC-SHA256 with the configured secret), stable for a given key, so analysts can still join.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

import orjson

from streams.settings import PrivacySettings

__all__ = ["PERSONAL_FIELDS", "Pseudonymizer"]

logger = logging.getLogger(__name__)

#: Fields of any topic that hold personal identifiers.
PERSONAL_FIELDS = ("household_id", "nik_head", "kk_number", "nik", "kk")
_LONG_DIGITS = re.compile(rb"\d{12,}")


class Pseudonymizer:
    """Keyed hashing. A pseudonym is ``<key_id>:<32 hex chars>``; the key id makes rotation visible."""

    def __init__(self, settings: PrivacySettings) -> None:
        self._key = settings.hmac_key.get_secret_value().encode()
        self._key_id = settings.key_id
        self._cache: dict[tuple[str, str], str] = {}

    def ref(self, kind: str, value: str | None) -> str:
        """Pseudonym of ``value`` in namespace ``kind`` (a field name such as ``household_id``).

        Returns '' for a missing value.
        """
        if not value:
            return ""
        cached = self._cache.get((kind, value))
        if cached is None:
            digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
            cached = f"{self._key_id}:{digest}"
            if len(self._cache) < 1_000_000:
                self._cache[(kind, value)] = cached
        return cached

    def redact_payload(self, payload: bytes | None, key: bytes | None, max_bytes: int) -> str:
        """A rejected message's payload, safe to store: identifiers replaced, long digit runs masked.

        ``key`` is the message key when it is itself personal (the households topic): every
        occurrence of it is replaced by its pseudonym.

        Works on anything, JSON or not; the result is capped at ``max_bytes`` (UTF-8, lossy).
        """
        if payload is None:
            return ""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            for name in PERSONAL_FIELDS:
                if isinstance(doc.get(name), str | int):
                    doc[name] = self.ref(name, str(doc[name]))
            payload = orjson.dumps(doc)
        if key:
            payload = payload.replace(key, self.ref("household_id", key.decode("utf-8", "replace")).encode())
        payload = _LONG_DIGITS.sub(b"<redacted>", payload)
        return payload[:max_bytes].decode("utf-8", "replace")

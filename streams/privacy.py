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
# Bytes written past a cap before cutting: more than a NIK written with separators (31).
_MARGIN = 64
_END = object()
# Values longer than this are hashed every time: the cache holds ids, not what a message key may be.
_CACHED_MAX_CHARS = 256
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
    #: A dead-letter payload larger than this is stored as its size and digest, not parsed.
    REDACT_MAX_BYTES = 1 << 20

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
            if len(value) > _CACHED_MAX_CHARS:  # ids are short; a hostile key of 1 MB is not kept
                return cached
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

        Never raises, whatever the payload: the structure is walked without recursion and written
        only up to ``max_bytes``; a payload over ``REDACT_MAX_BYTES``, or one whose redaction
        fails, is replaced by its size and keyed digest (``unredacted``).
        """
        if payload is None:
            return ""
        if len(payload) > self.REDACT_MAX_BYTES:
            return self.unredacted(payload)[:max_bytes]
        try:
            return self._redacted(payload, key, max_bytes)
        except Exception as exc:  # a bug, or memory: the dead letter must still be written
            logger.error("a dead-letter payload of %d bytes could not be redacted (%s): stored as its size "
                         "and digest", len(payload), type(exc).__name__)  # fmt: skip
            return self.unredacted(payload)[:max_bytes]

    def unredacted(self, payload: bytes) -> str:
        """What stands for a payload that is not redacted: its size and keyed digest (HMAC-SHA256
        with the pseudonym key, so equal payloads can be matched and none can be guessed)."""
        h = self._keyed.copy()
        h.update(b"payload:")
        h.update(payload)
        digest = f"{self.key_id}:{h.hexdigest()[:32]}"
        return orjson.dumps({"unredacted_bytes": len(payload), "digest": digest}).decode()

    def _redacted(self, payload: bytes, key: bytes | None, max_bytes: int) -> str:
        # Written a little past the cap, so that what a cut would split (an identifier, the key)
        # is still masked whole; then, if cut, the tail that may hold part of the key is dropped.
        budget = max_bytes + len(key or b"") + _MARGIN
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:  # not JSON, or nested deeper than orjson's 1,024 levels
            text = _LONG_DIGITS_B.sub(_MASK.encode(), _SEPARATED_16_B.sub(_MASK.encode(), payload))
            text = _KEYED_VALUE_B.sub(rb"\1" + _MASK.encode(), text)
            cut = False
        else:
            text, cut = self._dump(doc, budget)
        if key:
            text = text.replace(key, self.ref("household_id", key.decode("utf-8", "replace")).encode())
            if cut:
                text = text[: max(0, len(text) - len(key))]
        return text[:max_bytes].decode("utf-8", "replace")

    def _dump(self, doc: Any, budget: int) -> tuple[bytes, bool]:
        """``doc`` redacted and serialised as JSON, without recursion, stopping once ``budget``
        bytes are written; and whether it stopped there."""
        parts: list[bytes] = []
        size = 0
        # Open containers: the items left to write, whether it is an object, the field a list's
        # items belong to, whether an item was written.
        stack: list[list[Any]] = []
        value: Any = doc
        field: str | None = None
        while True:
            if value is not _END:
                if isinstance(value, dict):
                    piece = b"{"
                    stack.append([iter(value.items()), True, None, False])
                elif isinstance(value, list):
                    piece = b"["
                    stack.append([iter(value), False, field, False])
                else:
                    piece = self._scalar(value, field)
                parts.append(piece)
                size += len(piece)
                if size >= budget:
                    return b"".join(parts), True
            if not stack:
                return b"".join(parts), False
            frame = stack[-1]
            item: Any = next(frame[0], _END)
            if item is _END:
                stack.pop()
                parts.append(b"}" if frame[1] else b"]")
                size += 1
                value = _END
                continue
            comma = b"," if frame[3] else b""
            frame[3] = True
            if frame[1]:
                name, value = item
                field = str(name).lower()
                piece = comma + orjson.dumps(mask_identifiers(str(name))) + b":"
            else:
                value, field = item, frame[2]
                piece = comma
            parts.append(piece)
            size += len(piece)

    def _scalar(self, value: Any, field: str | None) -> bytes:
        if field in _PERSONAL and isinstance(value, str | int) and not isinstance(value, bool):
            return orjson.dumps(self.ref(field, str(value)))
        if isinstance(value, str):
            return orjson.dumps(mask_identifiers(value))
        text = orjson.dumps(value)  # a number, true, false or null
        if not isinstance(value, bool) and _LONG_DIGITS_B.search(text):
            return b'"' + _MASK.encode() + b'"'
        return text

"""Pseudonyms are keyed and stable; dead-letter payloads lose their identifiers."""

from __future__ import annotations

import hashlib
import hmac
import json

from pydantic import SecretStr

from streams.privacy import Pseudonymizer
from streams.settings import PrivacySettings


def test_pseudonyms_are_stable_keyed_and_namespaced() -> None:
    a = Pseudonymizer(PrivacySettings())
    b = Pseudonymizer(PrivacySettings(hmac_key=SecretStr("another"), key_id="k2"))
    assert a.ref("household_id", "h1") == a.ref("household_id", "h1")
    assert a.ref("household_id", "h1") != a.ref("kk_number", "h1")
    assert a.ref("household_id", "h1") != b.ref("household_id", "h1")
    assert b.ref("household_id", "h1").startswith("k2:")
    assert a.ref("household_id", None) == ""


def test_a_pseudonym_is_the_truncated_hmac_of_its_namespaced_value() -> None:
    # Pseudonyms already in ClickHouse must stay joinable: the formula never changes silently.
    settings = PrivacySettings(hmac_key=SecretStr("the key"), key_id="k7")
    expected = hmac.new(b"the key", b"household_id:HH-1", hashlib.sha256).hexdigest()[:32]
    assert Pseudonymizer(settings).ref("household_id", "HH-1") == f"k7:{expected}"


def test_the_pseudonym_cache_is_bounded() -> None:
    p = Pseudonymizer(PrivacySettings())
    first = p.ref("household_id", "h0")
    for i in range(p.CACHE_SIZE + 10):
        p.ref("household_id", f"h{i}")
    assert len(p._cache) <= p.CACHE_SIZE
    assert p.ref("household_id", "h0") == first


def test_redaction_of_json_and_garbage() -> None:
    p = Pseudonymizer(PrivacySettings())
    out = p.redact_payload(
        b'{"household_id":"HH-9","nik_head":"3203010101800001","notes":"kk 3203010101800002"}', b"HH-9", 4096
    )
    assert "HH-9" not in out and "3203010101800001" not in out and "3203010101800002" not in out
    out = p.redact_payload(b"HH-9;3203010101800001;broken", b"HH-9", 4096)
    assert "HH-9" not in out and "3203010101800001" not in out
    assert len(p.redact_payload(b"x" * 10_000, None, 300)) == 300


def test_json_payloads_are_redacted_on_their_structure() -> None:
    p = Pseudonymizer(PrivacySettings())
    payload = (
        b'{"a": {"NIK_HEAD": "3203010101800001", "list": [{"Kk": 3203010101800002}]},'
        b' "notes": "nik 3203 0101 0180 0003, kk 3203.0101.0180.0004, hp 081234567890",'
        b' "3203010101800005": "as a key", "household_id": "HH-1"}'
    )
    out = p.redact_payload(payload, None, 4096)
    for secret in ("3203010101800001", "3203010101800002", "3203 0101 0180 0003", "3203.0101.0180.0004",
                   "081234567890", "3203010101800005", "HH-1"):  # fmt: skip
        assert secret not in out, secret
    assert p.ref("nik_head", "3203010101800001") in out and p.ref("household_id", "HH-1") in out


def test_text_payloads_lose_id_values_and_digit_runs() -> None:
    p = Pseudonymizer(PrivacySettings())
    out = p.redact_payload(b'{"report_id":"r","household_id":"HHSECRET12', None, 4096)
    assert "HHSECRET12" not in out and '"household_id":<redacted>' in out
    out = p.redact_payload(b"nik_head=3203010101800001; KK: 3203 0101 0180 0002 x", None, 4096)
    assert not any(ch.isdigit() for ch in out), out


def test_redaction_never_recurses_and_keeps_its_structure_at_any_depth() -> None:
    """Issue 27 case 1: the recursive redaction raised RecursionError on a JSON array 700 deep,
    and dead-lettering the message failed with it. The walk is iterative now, to orjson's own
    depth limit (1,024), and text redaction takes over beyond it."""
    p = Pseudonymizer(PrivacySettings())
    for depth in (700, 1000, 5000):
        deep = b'{"a":' * depth + b'{"nik": "3203010101800001", "n": 3203010101800002}' + b"}" * depth
        out = p.redact_payload(deep, None, 1 << 20)
        assert "3203010101800001" not in out and "3203010101800002" not in out
        assert len(out) >= len(deep) - 32  # the whole document, redacted, not a placeholder
        if depth <= 1000:
            assert p.ref("nik", "3203010101800001") in out
    assert p.redact_payload(b"[" * 700 + b"]" * 700, None, 4096) == "[" * 700 + "]" * 700


def test_redaction_writes_only_up_to_its_cap_and_never_leaves_part_of_the_key() -> None:
    p = Pseudonymizer(PrivacySettings())
    key = b"HH-SECRET-HOUSEHOLD"
    doc = b'{"notes": "' + b"x" * 90 + key + b'", "more": [' + b'"HH-SECRET-HOUSEHOLD",' * 10_000 + b"1]}"
    for cap in range(90, 140):
        out = p.redact_payload(doc, key, cap)
        assert len(out.encode()) <= cap
        assert not any(key[:n].decode() in out for n in range(4, len(key) + 1)), (cap, out)


def test_a_payload_too_large_to_redact_is_stored_as_its_size_and_keyed_digest() -> None:
    """Over 1 MiB a payload is not parsed: its size and its HMAC-SHA256 under the pseudonym key
    stand for it (equal payloads match; none can be guessed without the key)."""
    settings = PrivacySettings()
    payload = b'{"nik": "3203010101800001", "pad": "' + b"x" * (1 << 20) + b'"}'
    stored = json.loads(Pseudonymizer(settings).redact_payload(payload, None, 8192))
    key = settings.hmac_key.get_secret_value().encode()
    digest = hmac.new(key, b"payload:" + payload, hashlib.sha256).hexdigest()[:32]
    assert stored == {"unredacted_bytes": len(payload), "digest": f"k1:{digest}"}


def test_only_id_sized_values_are_kept_in_the_pseudonym_cache() -> None:
    """A dead letter's key is pseudonymised whatever it is: a hostile 1 MB key is hashed, not
    kept (65,536 of them would hold 64 GB)."""
    p = Pseudonymizer(PrivacySettings())
    huge = "k" * (1 << 20)
    assert p.ref("household_id", huge) == p.ref("household_id", huge)
    assert p._cache == {}

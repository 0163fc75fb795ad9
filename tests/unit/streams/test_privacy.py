"""Pseudonyms are keyed and stable; dead-letter payloads lose their identifiers."""

from __future__ import annotations

import hashlib
import hmac

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

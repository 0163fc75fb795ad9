"""Pseudonyms are keyed and stable; dead-letter payloads lose their identifiers."""

from __future__ import annotations

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


def test_redaction_of_json_and_garbage() -> None:
    p = Pseudonymizer(PrivacySettings())
    out = p.redact_payload(
        b'{"household_id":"HH-9","nik_head":"3203010101800001","notes":"kk 3203010101800002"}', b"HH-9", 4096
    )
    assert "HH-9" not in out and "3203010101800001" not in out and "3203010101800002" not in out
    out = p.redact_payload(b"HH-9;3203010101800001;broken", b"HH-9", 4096)
    assert "HH-9" not in out and "3203010101800001" not in out
    assert len(p.redact_payload(b"x" * 10_000, None, 300)) == 300

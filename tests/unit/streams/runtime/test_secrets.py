"""Keys and secrets (issue 27, case 10): the pseudonym key's fingerprint, placeholder secrets, and
credentials in every URL-valued setting masked in ``dampak config`` and in log lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from streams import settings as settings_module
from streams.cli import main
from streams.errors import DampakError
from streams.runtime import startup
from streams.runtime.startup import check_secrets
from streams.settings import PrivacySettings, Settings

KEY_A = PrivacySettings(hmac_key=SecretStr("a-secret-from-the-vault"), key_id="k1")
KEY_B = PrivacySettings(hmac_key=SecretStr("another-secret-from-the-vault"), key_id="k1")


# ------------------------------------------------------------------ the key's fingerprint
def test_the_fingerprint_tells_keys_apart_without_revealing_them() -> None:
    a, b = startup.key_fingerprint(KEY_A), startup.key_fingerprint(KEY_B)
    assert a == startup.key_fingerprint(
        PrivacySettings(hmac_key=SecretStr("a-secret-from-the-vault"), key_id="k9")
    )
    assert a != b and len(a) == 32 and int(a, 16) >= 0
    assert "a-secret-from-the-vault" not in a


def test_a_changed_key_under_the_same_id_stops_the_worker_with_a_clear_message() -> None:
    recorded = ("k1", startup.key_fingerprint(KEY_A))
    assert startup.check_recorded_key(recorded, KEY_A) is False  # the same key: nothing to record
    with pytest.raises(DampakError) as refused:
        startup.check_recorded_key(recorded, KEY_B)
    message = str(refused.value)
    assert "DAMPAK_PRIVACY__HMAC_KEY is not the key" in message and "'k1'" in message
    assert "new id" in message and "dampak rotate-key" in message
    assert "another-secret" not in message and recorded[1] not in message


def test_another_key_id_still_needs_a_rotation_and_an_unrecorded_key_is_recorded() -> None:
    with pytest.raises(DampakError, match=r"holds pseudonyms of key 'k0'.*dampak rotate-key"):
        startup.check_recorded_key(("k0", startup.key_fingerprint(KEY_A)), KEY_A)
    assert startup.check_recorded_key(None, KEY_A) is True
    # Recorded before fingerprints were: the key in use is recorded with its fingerprint.
    assert startup.check_recorded_key(("k1", ""), KEY_B) is True


# ------------------------------------------------------------------ placeholders
@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ({"privacy": {"hmac_key": "change-me"}}, "pseudonym key is a placeholder.*DAMPAK_PRIVACY__HMAC_KEY"),
        ({"privacy": {"hmac_key": "CHANGEME"}}, "pseudonym key is a placeholder"),
        ({"privacy": {"hmac_key": ""}}, "pseudonym key is a placeholder"),
        ({}, "the built-in development key"),
        ({"privacy": {"hmac_key": "a-secret"}, "web": {"token": "change-me-web-token"}}, "DAMPAK_WEB__TOKEN"),
    ],
)
def test_the_worker_refuses_a_placeholder_key_or_token_outside_development(
    groups: dict[str, dict[str, str]], expected: str
) -> None:
    settings = Settings(dev_mode=False, **groups)  # type: ignore[arg-type]
    with pytest.raises(DampakError, match=expected):
        check_secrets(settings)
    check_secrets(settings.model_copy(update={"dev_mode": True}))  # local development: accepted


def test_a_real_key_and_token_are_accepted() -> None:
    settings = Settings(
        dev_mode=False, privacy={"hmac_key": "a-secret"}, web={"token": "5d8e0b3c6a", "host": "0.0.0.0"}
    )
    check_secrets(settings)


# ------------------------------------------------------------------ URLs masked
@pytest.mark.parametrize(
    ("url", "masked", "secret"),
    [
        # Passwords with an unencoded /, # or ?, which a URL parser would cut the host at.
        ("http://dampak:pa/ss@ch:8123/dampak", "http://dampak:***@ch:8123/dampak", "pa/ss"),
        ("http://dampak:pa#ss@ch:8123/dampak", "http://dampak:***@ch:8123/dampak", "pa#ss"),
        ("https://dampak:p?a@ss@ch:8443/db?secure=1", "https://dampak:***@ch:8443/db?secure=1", "p?a@ss"),
        ("https://u:pw@ch:8443/db?password=pq&ssl=1", "https://u:***@ch:8443/db?password=***&ssl=1", "pq"),
        ("https://feeds.example/autogempa.json?token=t0k3n", "https://feeds.example/autogempa.json?token=***",
         "t0k3n"),
        ("https://feeds.example/rss.xml?api_key=k3y&lang=id", "https://feeds.example/rss.xml?api_key=***&lang=id",
         "k3y"),
        ("https://gh0tok3n@git.example/x", "https://***@git.example/x", "gh0tok3n"),
        ("http://127.0.0.1:6067", "http://127.0.0.1:6067", None),
        ("chdb:///var/lib/dampak/clickhouse", "chdb:///var/lib/dampak/clickhouse", None),
    ],
)  # fmt: skip
def test_credentials_in_a_url_are_masked(url: str, masked: str, secret: str | None) -> None:
    assert settings_module.mask_url(url) == masked
    assert secret is None or secret not in settings_module.mask_url(url)


def test_dampak_config_masks_every_url_valued_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {
        "DAMPAK_CLICKHOUSE__DSN": "http://dampak:s3cr/et#1@ch:8123/dampak",
        "DAMPAK_WRITER_URL": "http://writer:wr1ter-pw@10.0.0.5:6067",
        "DAMPAK_FEED__BMKG_JSON_URLS": '["https://feeds.example/a.json?token=feed-t0ken"]',
        "DAMPAK_FEED__BMKG_NOWCAST_URL": "https://nowcast:now-pw@feeds.example/rss.xml",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as done:
        main(["config"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for leaked in ("s3cr", "et#1", "wr1ter-pw", "feed-t0ken", "now-pw"):
        assert leaked not in out, leaked
    shown = json.loads(out)
    assert shown["clickhouse"]["dsn"] == "http://dampak:***@ch:8123/dampak"
    assert shown["writer_url"] == "http://writer:***@10.0.0.5:6067"
    assert shown["feed"]["bmkg_json_urls"] == ["https://feeds.example/a.json?token=***"]


@pytest.fixture
def log_masking() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    settings_module.install_log_masking()
    yield
    logging.setLogRecordFactory(factory)


def test_log_lines_never_carry_a_url_credential(log_masking: None, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("streams.commands.feeds")
    with caplog.at_level(logging.INFO):
        log.warning(
            "bmkg: %s failed after %d tries: %s", "https://f.example/x.json?token=feed-t0ken", 3, "503"
        )
        try:
            raise ConnectionError("the writer at http://w:wr1ter-pw@writer:6067/query did not answer")
        except ConnectionError:
            log.exception("writer down")
    text = "\n".join(caplog.messages) + caplog.text
    assert "https://f.example/x.json?token=*** failed after 3 tries: 503" in caplog.messages[0]
    assert "http://w:***@writer:6067/query" in caplog.text
    assert "feed-t0ken" not in text and "wr1ter-pw" not in text

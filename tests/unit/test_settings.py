"""Settings come from DAMPAK_* variables only, with nested groups."""

from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.topics import Topic, all_specs, dlq_name, physical_name


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("DAMPAK_KAFKA__BOOTSTRAP_SERVERS", "broker:9093")
    monkeypatch.setenv("DAMPAK_KAFKA__TOPIC_PREFIX", "stg-")
    monkeypatch.setenv("DAMPAK_CLICKHOUSE__DSN", "https://u:secret@ch:8443/dampak")
    monkeypatch.setenv("DAMPAK_SINK__BATCH_SIZE", "123")
    s = Settings()
    assert s.kafka.bootstrap_servers == "broker:9093" and not s.uses_local_kafka
    assert s.sink.batch_size == 123
    assert not s.embedded_clickhouse
    assert "secret" not in str(s.redacted())
    assert physical_name(Topic.FIELD_REPORTS, s) == "stg-field-reports"
    assert dlq_name(Topic.HOUSEHOLDS, s) == "stg-households-dlq"


def test_default_is_the_embedded_engine_under_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAMPAK_DATA_DIR", "/var/lib/dampak")
    s = Settings()
    assert s.clickhouse_dsn == "chdb:///var/lib/dampak/clickhouse"
    assert s.uses_local_kafka


def test_keyed_topics_share_one_partition_count() -> None:
    specs = {sp.name: sp for sp in all_specs(Settings())}
    keyed = [specs[t.value] for t in Topic]
    assert {sp.partitions for sp in keyed} == {6}
    assert specs["field-reports-dlq"].partitions == 1


def test_tls_context_only_for_tls_protocols() -> None:
    from streams.settings import KafkaSettings

    assert KafkaSettings().ssl_context() is None
    assert KafkaSettings(security_protocol="SASL_PLAINTEXT").ssl_context() is None
    for protocol in ("SSL", "SASL_SSL"):
        ctx = KafkaSettings(security_protocol=protocol).ssl_context()  # type: ignore[arg-type]
        assert ctx is not None and ctx.verify_mode.name == "CERT_REQUIRED"


def test_a_taken_http_port_stops_the_worker_before_it_starts() -> None:
    import socket

    from streams.errors import DampakError
    from streams.runtime.startup import check_port_free

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DampakError, match=f"127.0.0.1:{port} is in use .*DAMPAK_WEB__PORT"):
            check_port_free(Settings(web={"port": port}))
    check_port_free(Settings(web={"port": port}))  # free again

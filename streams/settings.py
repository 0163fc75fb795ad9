"""The one settings object: every knob of dampak, read from ``DAMPAK_*`` environment variables.

Build it once at the entry point (``Settings()``) and pass it down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.domain.hazard import DisplacementRates

__all__ = [
    "LOCAL_BOOTSTRAP",
    "ClickHouseSettings",
    "KafkaSettings",
    "LagSettings",
    "LocalKafkaSettings",
    "NotifySettings",
    "PrivacySettings",
    "Settings",
    "SinkSettings",
    "WebSettings",
]

logger = logging.getLogger(__name__)

#: The address the bundled local broker (``dampak up``) listens on.
LOCAL_BOOTSTRAP = "127.0.0.1:9092"


class KafkaSettings(BaseModel):
    """Kafka connection; TLS/SASL options are passed through to the clients unchanged."""

    bootstrap_servers: str = LOCAL_BOOTSTRAP
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: Prefix prepended to every physical topic name (tests and multi-tenant clusters).
    topic_prefix: str = ""
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)

    def client_options(self) -> dict[str, Any]:
        """Security options in kafka-python / aiokafka keyword form (only those that are set)."""
        opts: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            opts["sasl_mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            opts["sasl_plain_username"] = self.sasl_username
        if self.sasl_password:
            opts["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                opts[name] = getattr(self, name)
        return opts

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL and SASL_SSL (for Faust and aiokafka, which take a context, not
        files); None otherwise. A configured client certificate is presented."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return ctx


class LocalKafkaSettings(BaseModel):
    """The Apache Kafka broker that ``dampak up`` runs from Maven Central jars (no Docker)."""

    version: str = "4.1.1"
    #: The broker is "local" (managed by up/down) when the bootstrap servers are 127.0.0.1:<port>.
    port: int = 9092
    #: The java executable (a name on PATH or a path); Java 17+.
    java: str = "java"
    controller_port: int = 9093
    heap: str = "768m"
    start_timeout_s: float = 90.0


class ClickHouseSettings(BaseModel):
    """Where impact tables live. ``None`` means the embedded chDB engine under the data directory."""

    dsn: str | None = None
    database: str = "dampak"
    #: Timeout and row limit of read-only queries forwarded to a running worker.
    query_timeout_s: float = 30.0
    query_max_rows: int = 10_000


class SinkSettings(BaseModel):
    """Batching of ClickHouse writes: a batch is flushed at ``batch_size`` rows or ``batch_seconds``."""

    batch_size: int = Field(10_000, ge=1)
    batch_seconds: float = Field(0.2, gt=0)
    retry_backoff_max_s: float = Field(10.0, gt=0)
    dead_letter_payload_max_bytes: int = Field(8192, ge=256)


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 6066


class PrivacySettings(BaseModel):
    """Keyed hashing of personal identifiers (NIK, KK number, household id).

    Rotate by setting a new ``hmac_key`` (and ``key_id``): new rows carry new pseudonyms.
    """

    hmac_key: SecretStr = SecretStr("dampak-development-key-change-me")
    key_id: str = "k1"


class NotifySettings(BaseModel):
    """When to publish on ``impact-notifications``."""

    #: Alert levels (PAGER) that notify on an earthquake estimate.
    alert_levels: tuple[str, ...] = ("orange", "red")
    #: Reported displaced persons in a regency; each threshold crossed notifies once.
    displaced_thresholds: tuple[int, ...] = (1_000, 10_000, 50_000)
    check_interval_s: float = Field(10.0, gt=0)


class TableSettings(BaseModel):
    """Faust tables (the registry and each household's reports): store and RocksDB memory."""

    #: ``rocksdb://`` in production, ``memory://`` for small tests.
    store: str = "rocksdb://"
    #: RocksDB memtable size per table partition (Faust's default is 64 MiB x 3 per partition,
    #: which holds a whole 1M-household registry in memory).
    write_buffer_mb: int = Field(8, ge=1)
    max_write_buffers: int = Field(2, ge=1)
    #: RocksDB block cache per table partition (Faust's default is 2 GiB).
    block_cache_mb: int = Field(16, ge=1)
    #: At worker start, load table partitions whose local store is behind their changelog
    #: straight from the changelog (bulk RocksDB writes) before the worker joins its group.
    bulk_restore: bool = True

    @property
    def rocksdb(self) -> bool:
        return self.store.startswith("rocksdb")

    def store_options(self) -> dict[str, int] | None:
        """Options for Faust's RocksDB store (None for another store)."""
        if not self.rocksdb:
            return None
        mib = 1024 * 1024
        return {
            "write_buffer_size": self.write_buffer_mb * mib,
            "max_write_buffer_number": self.max_write_buffers,
            "block_cache_size": self.block_cache_mb * mib,
        }


class LagSettings(BaseModel):
    """Consumer-lag evaluation (Burrow's rules) and sampling."""

    #: Sliding window of offset samples that statuses are evaluated over.
    window_s: float = Field(120.0, gt=0)
    #: Lag (messages) still counted as OK.
    allowed_lag: int = Field(0, ge=0)
    #: How often a worker samples lag into metrics and ClickHouse ``consumer_lag``.
    sample_interval_s: float = Field(15.0, gt=0)


class Settings(BaseSettings):
    """All settings. Environment: ``DAMPAK_<GROUP>__<FIELD>``, e.g. ``DAMPAK_KAFKA__BOOTSTRAP_SERVERS``."""

    model_config = SettingsConfigDict(
        env_prefix="DAMPAK_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    #: Faust application id: the consumer group and the prefix of changelog topics.
    app_id: str = "dampak"
    data_dir: Path = Path(".dampak")
    log_level: str = "info"
    kafka: KafkaSettings = KafkaSettings()
    local_kafka: LocalKafkaSettings = LocalKafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    sink: SinkSettings = SinkSettings()
    tables: TableSettings = TableSettings()
    web: WebSettings = WebSettings()
    privacy: PrivacySettings = PrivacySettings()
    displacement: DisplacementRates = DisplacementRates()
    notify: NotifySettings = NotifySettings()
    lag: LagSettings = LagSettings()

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        object.__setattr__(self, "data_dir", self.data_dir.expanduser().resolve())
        return self

    @property
    def clickhouse_dsn(self) -> str:
        """The effective DSN: the configured one, or the embedded engine under the data directory."""
        return self.clickhouse.dsn or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def uses_local_kafka(self) -> bool:
        """True when the bootstrap servers are the bundled local broker's address."""
        return self.kafka.bootstrap_servers.strip() == f"127.0.0.1:{self.local_kafka.port}"

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with secrets and DSN passwords masked, for ``dampak config``."""
        data = self.model_dump(mode="json")
        dsn = self.clickhouse_dsn
        if "@" in dsn and "://" in dsn:
            scheme, rest = dsn.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            dsn = f"{scheme}://{user}:***@{host}"
        data["clickhouse"]["dsn"] = dsn
        return data

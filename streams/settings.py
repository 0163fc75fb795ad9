"""The one settings object: every knob of dampak, read from ``DAMPAK_*`` environment variables.

Build it once at the entry point (``Settings()``) and pass it down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import logging
import re
import ssl
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sinks.config import Backoff, ClickHouseSettings, ClickHouseTarget
from streams.domain.estimates import INDONESIA_GDP_PER_CAPITA_USD
from streams.domain.hazard import DisplacementRates

__all__ = [
    "LOCAL_BOOTSTRAP",
    "PLACEHOLDER_SECRETS",
    "ClickHouseSettings",
    "ContractSettings",
    "KafkaSettings",
    "LagSettings",
    "LocalKafkaSettings",
    "NotifySettings",
    "PrivacySettings",
    "Settings",
    "SinkSettings",
    "WebSettings",
    "install_log_masking",
    "is_placeholder",
    "mask_dsn",
    "mask_secrets",
    "mask_url",
]

logger = logging.getLogger(__name__)

#: The built-in pseudonym key: for local development only (the worker refuses it otherwise).
DEVELOPMENT_KEY = "dampak-development-key-change-me"

#: Secrets that stand for one nobody has set yet (Compose's former defaults among them); any
#: value that says "change me" is one too, and so is an empty one. The worker refuses them as its
#: pseudonym key or web token outside development (``is_placeholder``).
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me-web-token", "secret", "password", "token", "key", "dampak", "test", "default"}
)
_CHANGE_ME = re.compile(r"change[-_ ]?me", re.IGNORECASE)


def is_placeholder(secret: str) -> bool:
    """Whether ``secret`` is a known placeholder rather than a secret (see ``PLACEHOLDER_SECRETS``)."""
    return secret.strip().lower() in PLACEHOLDER_SECRETS or bool(_CHANGE_ME.search(secret))


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
    #: One producer configuration for the worker (Faust), the CLI, the demo, the bench and the
    #: tests. Batching is most of a producer's cost: Faust's defaults (no linger, 16 KiB batches)
    #: send changelog and repartition records almost one request each.
    producer_acks: Literal["all", "1", "0"] = "all"
    producer_linger_ms: int = Field(20, ge=0)
    producer_batch_bytes: int = Field(512 * 1024, ge=1024)
    #: Records per poll of the worker's consumer.
    consumer_max_poll_records: int = Field(2000, ge=1)
    #: A topic the consumer saw before it had leaders is picked up at the next refresh.
    consumer_metadata_max_age_ms: int = Field(15_000, ge=1000)
    #: A worker killed without leaving its group blocks the next rebalance until its session
    #: expires: keep that short so a restarted worker resumes within seconds.
    session_timeout_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    #: How long the worker's producer waits for the answer to one request before it gives up on
    #: the connection (a batch still waits up to 20 minutes for a partition leader).
    request_timeout_s: float = Field(30.0, gt=0)

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

    def producer_options(self) -> dict[str, Any]:
        """kafka-python producer options: the shared producer configuration plus security."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "acks": self.producer_acks if self.producer_acks == "all" else int(self.producer_acks),
            "linger_ms": self.producer_linger_ms,
            "batch_size": self.producer_batch_bytes,
            **self.client_options(),
        }

    def group_consumer_options(self, group_id: str, max_poll_records: int) -> dict[str, Any]:
        """An ``AIOKafkaConsumer``'s options for a plain consumer group that commits its own
        offsets (the worker's input routing, the writer): started from the earliest offset."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": int(self.session_timeout_s * 1000),
            "heartbeat_interval_ms": int(self.heartbeat_interval_s * 1000),
            "metadata_max_age_ms": self.consumer_metadata_max_age_ms,
            "max_poll_records": max_poll_records,
            **self.aiokafka_options(),
        }

    def aiokafka_options(self) -> dict[str, Any]:
        """Security options in aiokafka's form: a TLS context instead of certificate files."""
        opts = self.client_options()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            opts.pop(name, None)
        if ctx := self.ssl_context():
            opts["ssl_context"] = ctx
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
    #: Nodes (combined broker+controller); 3 gives replication factor 3 and min.insync.replicas 2.
    #: Node i listens on ``port + 10 * i`` (clients) and ``controller_port + 10 * i``.
    brokers: int = Field(1, ge=1, le=5)
    #: Serve clients over SASL_SSL (SCRAM-SHA-512) with a generated CA (``dampak up --secure``).
    secure: bool = False

    def client_ports(self) -> list[int]:
        return [self.port + 10 * i for i in range(self.brokers)]


class SinkSettings(BaseModel):
    """The engine's batches and the retry of everything retried in place.

    A batch is written at ``batch_size`` events or ``batch_seconds``; a ClickHouse or Kafka failure
    is retried with ``retry`` (capped exponential backoff).
    """

    batch_size: int = Field(10_000, ge=1)
    batch_seconds: float = Field(0.1, gt=0)
    #: The flows on dampak's own re-keyed topics wait at most this long for more: what they read
    #: is already batched (a bundle holds what one batch forwarded to one partition), so a longer
    #: wait only adds to every report's latency, once per hop.
    hop_batch_seconds: float = Field(0.02, gt=0)
    #: Alerts are few and urgent: their flows wait at most this long to fill a batch.
    alert_batch_seconds: float = Field(0.05, gt=0)
    retry: Backoff = Backoff()
    #: Payload kept in the ``dead_letters`` view (redacted, capped).
    dead_letter_payload_max_bytes: int = Field(8192, ge=256)
    #: Largest dead letter sent to ``<topic>-dlq``; a larger value is cut there (the header
    #: ``dlq.truncated_from`` gives its size; the source topic keeps the original at its offset).
    dead_letter_message_max_bytes: int = Field(900_000, ge=4096)
    #: How long ``sink-rows`` keeps the rows compute workers hand to the writer (hours): the
    #: writer may be down this long without losing any.
    rows_retention_h: int = Field(168, ge=1)
    #: Rows handed to the writer in bundles (one record per partition and batch). ``false``: one
    #: JSON record per row, for a ClickHouse Kafka engine reading ``sink-rows`` instead of the
    #: writer (docs/scaling.md); the writer reads both.
    rows_bundled: bool = True


class WebSettings(BaseModel):
    """The worker's HTTP server (health, metrics, ``/query``)."""

    host: str = "127.0.0.1"
    port: int = 6066
    #: Bearer token that ``/query`` requires; required (the worker refuses to start without one)
    #: when ``host`` is not a loopback address.
    token: SecretStr | None = None
    #: Host names (besides loopback names and ``host``) that requests may address the worker by;
    #: a request with another Host header is refused (DNS rebinding from a browser).
    allowed_hosts: tuple[str, ...] = ()
    #: Language of the command-center page (``/pusat/``, ``dampak report``): Indonesian or English.
    language: Literal["id", "en"] = "id"

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    @property
    def token_is_placeholder(self) -> bool:
        """A token is set, and it is a placeholder (``is_placeholder``)."""
        return self.token is not None and is_placeholder(self.token.get_secret_value())

    def host_allowed(self, header: str) -> bool:
        """Whether a request's Host header names this worker."""
        name = header.rsplit(":", 1)[0].strip("[]").lower() if header else ""
        return name in {
            "127.0.0.1",
            "localhost",
            "::1",
            self.host.lower(),
            *map(str.lower, self.allowed_hosts),
        }


class ContractSettings(BaseModel):
    """Bounds the topic contracts put on datetimes (every datetime field of every topic)."""

    earliest: datetime = datetime(1900, 1, 1, tzinfo=UTC)
    #: How far after the time of validation a datetime may lie (clocks drift, time zones slip).
    max_future_s: float = Field(86_400.0, ge=0)

    def context(self) -> dict[str, Any]:
        """Pydantic's validation context for the contracts (see ``schemas.common``)."""
        return {"earliest": self.earliest.astimezone(UTC), "max_future": timedelta(seconds=self.max_future_s)}


class PrivacySettings(BaseModel):
    """Keyed hashing of personal identifiers (NIK, KK number, household id).

    Rotate by setting a new ``hmac_key`` (and ``key_id``): new rows carry new pseudonyms.
    """

    hmac_key: SecretStr = SecretStr(DEVELOPMENT_KEY)
    key_id: str = "k1"

    @property
    def uses_default_key(self) -> bool:
        return self.hmac_key.get_secret_value() == DEVELOPMENT_KEY

    @property
    def uses_placeholder_key(self) -> bool:
        """The built-in key, or another placeholder (``is_placeholder``)."""
        return is_placeholder(self.hmac_key.get_secret_value())


class NotifySettings(BaseModel):
    """When to publish on ``impact-notifications``."""

    #: Alert levels (PAGER) that notify on an earthquake estimate.
    alert_levels: tuple[str, ...] = ("orange", "red")
    #: Reported displaced persons in a regency; each threshold crossed notifies once.
    displaced_thresholds: tuple[int, ...] = (1_000, 10_000, 50_000)
    check_interval_s: float = Field(10.0, gt=0)
    #: The largest share of the leader's time the displacement check may take: it reads every
    #: report, and on a large table a check every ``check_interval_s`` would run back to back.
    check_max_share: float = Field(0.2, gt=0, le=1)
    #: A village struck at this level or more (2: MMI VII, or an area hazard's medium class) with no
    #: report this many hours after its exposure notifies once, for incidents of the last
    #: ``unreported_window_days``; checked every ``unreported_check_interval_s``. 0 hours: never.
    unreported_level: int = Field(2, ge=1, le=3)
    unreported_after_h: float = Field(6.0, ge=0)
    unreported_window_days: int = Field(14, ge=1)
    unreported_check_interval_s: float = Field(60.0, gt=0)


class EstimateSettings(BaseModel):
    """The inputs of the earthquake loss estimates (``streams.domain.estimates``)."""

    #: GDP per capita in current US$ of PAGER's economic model (PAGER takes the event year's; the
    #: default is the World Bank's figure for Indonesia, 2024).
    gdp_per_capita_usd: float = Field(INDONESIA_GDP_PER_CAPITA_USD, gt=0)


#: The regulation the cash assistance rests on (its articles are not quoted: the text of the
#: regulation was not available to the project; the amounts are those Kemensos has paid under it).
_PERMENSOS_4_2015 = (
    "Permensos No. 4 Tahun 2015 tentang Bantuan Langsung Berupa Uang Tunai bagi Korban Bencana"
)


class EntitlementSettings(BaseModel):
    """Kemensos's cash assistance to disaster victims (``entitlements``): amounts change by
    regulation and decision, so each is a setting; the defaults are those paid 2015-2025 under
    Permensos 4/2015 (README, *What the ministry owes*)."""

    #: Santunan to the heirs, per person who died.
    death_idr: int = Field(15_000_000, ge=0)
    #: Per severely injured person (luka berat), at most.
    severe_injury_idr: int = Field(5_000_000, ge=0)
    #: Jaminan hidup, per displaced person per day ...
    living_allowance_idr_per_day: int = Field(10_000, ge=0)
    #: ... for this many days (set per event: 90 for Pidie Jaya 2016 and Lombok 2018, 60 for
    #: Central Sulawesi 2018, 30 for Bogor 2020).
    living_allowance_days: int = Field(90, ge=0, le=366)
    #: Isi hunian (household goods), per family whose house was heavily damaged, at most.
    household_goods_idr: int = Field(3_000_000, ge=0)

    def rates(self) -> list[dict[str, Any]]:
        """The rows of ``entitlement_rates`` these settings give."""
        basis = _PERMENSOS_4_2015
        return [
            {"kind": "santunan_ahli_waris", "unit_amount_idr": self.death_idr, "days": 0,
             "basis": "per orang meninggal (ahli waris)", "legal_basis": basis},
            {"kind": "bantuan_luka_berat", "unit_amount_idr": self.severe_injury_idr, "days": 0,
             "basis": "per orang luka berat", "legal_basis": basis},
            {"kind": "jaminan_hidup", "unit_amount_idr": self.living_allowance_idr_per_day,
             "days": self.living_allowance_days,
             "basis": f"per pengungsi per hari, {self.living_allowance_days} hari", "legal_basis": basis},
            {"kind": "isi_hunian", "unit_amount_idr": self.household_goods_idr, "days": 0,
             "basis": "per KK dengan rumah rusak berat", "legal_basis": basis},
        ]  # fmt: skip


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
    #: Standby copies of each table partition kept on other workers (Faust's
    #: ``table_standby_replicas``; 0 as in Kafka Streams). A standby follows its changelog all the
    #: time, so each worker also repeats the others' table writes; without one, a partition that
    #: moves is restored from its changelog before its new owner resumes it.
    standby_replicas: int = Field(0, ge=0)
    #: At worker start, load table partitions whose local store is behind their changelog
    #: straight from the changelog (bulk RocksDB writes) before the worker joins its group.
    bulk_restore: bool = True
    #: Fetch sizes of the bulk restore's consumer (whole changelogs are read at once).
    restore_partition_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    restore_fetch_bytes: int = Field(64 * 1024 * 1024, ge=1024)

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


class FeedSettings(BaseModel):
    """``dampak feed bmkg``: BMKG's public feeds, polled every ``interval_s``."""

    #: TEWS earthquake feeds (JSON): the latest, the latest M5+ list, the felt list. An event in
    #: several is merged into one bulletin.
    bmkg_json_urls: list[str] = [
        "https://data.bmkg.go.id/DataMKG/TEWS/autogempa.json",
        "https://data.bmkg.go.id/DataMKG/TEWS/gempaterkini.json",
        "https://data.bmkg.go.id/DataMKG/TEWS/gempadirasakan.json",
    ]
    #: Nowcast index (RSS whose items link CAP 1.2 XML warnings, or a CAP document itself).
    bmkg_nowcast_url: str = "https://www.bmkg.go.id/alerts/nowcast/id/rss.xml"
    interval_s: float = Field(60.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    #: Tries per request, with backoff doubling from ``retry_initial_s``.
    tries: int = Field(3, ge=1)
    retry_initial_s: float = Field(1.0, ge=0)
    #: One fetch (tries, backoff, redirects and reading) ends after this, however slowly bytes come.
    deadline_s: float = Field(30.0, gt=0)
    #: A body larger than this is refused: BMKG's feeds are a few KB, and a bulletin must still fit
    #: the producer's 1 MiB request.
    max_bytes: int = Field(512 * 1024, ge=1024)
    #: Entries read per TEWS feed and CAP links followed per nowcast index, per poll.
    max_items: int = Field(100, ge=1)


class LagSettings(BaseModel):
    """Consumer-lag evaluation (Burrow's rules) and sampling."""

    #: Sliding window of offset samples that statuses are evaluated over.
    window_s: float = Field(120.0, gt=0)
    #: Lag (messages) still counted as OK.
    allowed_lag: int = Field(0, ge=0)
    #: How often a worker samples lag into metrics and ClickHouse ``consumer_lag``.
    sample_interval_s: float = Field(15.0, gt=0)
    #: The lag sampler reads one message per lagging partition (for its timestamp): small fetches.
    fetch_bytes: int = Field(16 * 1024, ge=1024)


class Settings(BaseSettings):
    """All settings. Environment: ``DAMPAK_<GROUP>__<FIELD>``, e.g. ``DAMPAK_KAFKA__BOOTSTRAP_SERVERS``."""

    model_config = SettingsConfigDict(
        env_prefix="DAMPAK_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    #: Local development: the built-in pseudonym key is accepted (``dampak up`` sets this for its
    #: data directory; never in production).
    dev_mode: bool = False
    #: ``all``: one process computes and writes (the default). ``compute``: a worker that hands
    #: its rows to ``sink-rows`` for the writer (``dampak writer``) that owns the embedded engine,
    #: so that several compute workers share one embedded database.
    role: Literal["all", "compute"] = "all"
    #: Where compute workers reach the writer (its ``/query``).
    writer_url: str = "http://127.0.0.1:6067"
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
    contracts: ContractSettings = ContractSettings()
    privacy: PrivacySettings = PrivacySettings()
    displacement: DisplacementRates = DisplacementRates()
    estimates: EstimateSettings = EstimateSettings()
    entitlements: EntitlementSettings = EntitlementSettings()
    notify: NotifySettings = NotifySettings()
    lag: LagSettings = LagSettings()
    feed: FeedSettings = FeedSettings()

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        object.__setattr__(self, "data_dir", self.data_dir.expanduser().resolve())
        return self

    @property
    def clickhouse_target(self) -> ClickHouseTarget:
        """The effective engine: the configured DSN, or the embedded engine under the data directory."""
        return ClickHouseTarget.of(self.clickhouse, self.data_dir)

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_target.dsn

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_target.embedded

    @property
    def uses_local_kafka(self) -> bool:
        """True when the bootstrap servers are the bundled local nodes' addresses."""
        servers = {s.strip() for s in self.kafka.bootstrap_servers.split(",")}
        return servers == {f"127.0.0.1:{p}" for p in self.local_kafka.client_ports()}

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with every secret masked, for ``dampak config`` and ``status``:
        ``SecretStr`` settings, and every URL-valued one (any string with ``://``, in any group
        or list: the DSN, ``writer_url``, the feeds' URLs) through ``mask_url``."""
        data = self.model_dump(mode="json")
        data["clickhouse"]["dsn"] = self.clickhouse_dsn
        return _mask_urls(data)  # type: ignore[no-any-return]


def _mask_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


#: Query-string (and fragment) parameters of a URL that hold secrets.
_SECRET_PARAMS = re.compile(r"pass|secret|token|key|credential|auth|signature|^sig$", re.IGNORECASE)
#: A URL in free text (a log line, an error message): up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")
_MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and every secret-looking query or fragment
    parameter (``?token=``, ``password``, ``api_key``, ...) masked.

    User info without a password is masked whole (a token: ``https://TOKEN@host``). The user
    info runs from ``://`` to the last ``@``, so a password with an unencoded ``/``,
    ``#``, ``?`` or ``@`` is masked whole (a URL's own parser would end the host at the first of
    them and show the rest). An ``@`` later in a path or query that follows ``host:port`` is read
    as user info too: that masks too much, never too little."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, hostpart = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if at and not any(c in user for c in "/?#"):
        # User info without a password is a token more often than a name (``https://TOKEN@host``).
        prefix = f"{scheme}://{user}:{_MASK}@" if colon else f"{scheme}://{_MASK}@"
        rest = hostpart
    else:
        prefix = f"{scheme}://"
    netloc_path, q, query_fragment = rest.partition("?")
    if not q:
        netloc_path, h, fragment = rest.partition("#")
        return prefix + netloc_path + (h + _mask_params(fragment) if h else "")
    query, h, fragment = query_fragment.partition("#")
    return prefix + netloc_path + "?" + _mask_params(query) + (h + _mask_params(fragment) if h else "")


def _mask_params(text: str) -> str:
    """``a=1&token=x`` with the value of every secret-looking parameter masked; text that is not
    parameters is kept as it is."""
    if "=" not in text:
        return text
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    return urllib.parse.urlencode([(k, _MASK if _SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")


#: Kept for its callers: a DSN is a URL.
mask_dsn = mask_url


def mask_secrets(text: str) -> str:
    """``text`` (a log line, an error message) with every URL in it masked by ``mask_url``."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text) if "://" in text else text


def install_log_masking() -> None:
    """From now on, every log record of the process has the URLs in its message and traceback
    masked (``mask_secrets``), whichever module logs them: a feed URL with ``?token=``, a
    writer URL or DSN with a password. Installed once by the entry point; idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "masks_secrets", False):
        return

    def masked(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format is the handler's to report, as before
            return record
        if "://" in message:
            record.msg, record.args = mask_secrets(message), ()
        if record.exc_info and record.exc_text is None:
            text = logging.Formatter().formatException(record.exc_info)
            if "://" in text:
                record.exc_text = mask_secrets(text)
        return record

    masked.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked)

"""The structural fuzz: messages hostile by their shape rather than their values (nesting depth,
sizes up to the broker's limit and past it, counts, encodings, huge numbers, Kafka timestamps),
on every input topic, each followed on its partition by a valid message, through a real worker.

The invariant: every valid message after a hostile one lands; every hostile one is dead-lettered
with a reason at its offset, or refused by the producer or the broker with one; the worker never
exits or restarts, and its peak RSS stays under ``RSS_LIMIT_MB``. ``make fuzz`` runs it after the
value fuzz (tests/integration/fuzz.py) and writes its table into docs/reliability.md;
test_fuzz.py runs one round in CI.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from tests.integration.harness import Deployment

__all__ = ["RSS_LIMIT_MB", "Attack", "attacks", "peak_rss_mb", "run_structural"]

logger = logging.getLogger(__name__)

#: The worker's documented peak RSS under the structural fuzz (docs/reliability.md). A worker
#: idles at about 450 MB (chDB, Faust and the region table); what a hostile message may add must
#: stay under this.
RSS_LIMIT_MB = 1_024
#: The local broker's ``message.max.bytes`` (Kafka's default, 1 MiB + 12: deploy/local/broker.py
#: leaves it unset): what can reach the worker at all.
BROKER_MESSAGE_MAX = 1_048_588
#: The test producer sends up to this, so that the broker, not the client, refuses what is larger.
_PRODUCER_MAX = 8 * 1024 * 1024
#: Kafka timestamps (ms): year 10000, the largest int64, and the epoch's first millisecond.
_YEAR_10000_MS = 253_402_300_800_000
_INT64_MAX = (1 << 63) - 1
_YEAR_1800_MS = -5_364_662_400_000
DEPTHS = (100, 1_000, 10_000, 100_000)
_RLO = "\u202e"


@dataclass(frozen=True)
class Attack:
    """One hostile message: ``name`` says what it attacks; ``timestamp_ms`` its Kafka timestamp."""

    name: str
    topic: str
    value: bytes | None
    timestamp_ms: int | None = None
    #: The key: the message's id by default (a mismatch would be a second fault).
    key: bytes | None = None
    #: Valid by the contracts however odd its shape (within every documented limit): it must land
    #: like a valid message, under its id, instead of being dead-lettered.
    lands: bool = False


@dataclass
class Sent:
    attack: Attack
    partition: int = -1
    offset: int = -1
    refused: str = ""  # the producer's or the broker's reason


@dataclass
class Outcome:
    messages: int = 0
    hostile: int = 0
    valid: int = 0
    dead_lettered: int = 0
    refused: int = 0
    valid_landed: int = 0
    peak_rss_mb: float = 0.0
    restarts: int = 0
    seconds: float = 0.0
    #: Attacks that broke the invariant: name -> what happened.
    failures: dict[str, str] = field(default_factory=dict)
    #: Attacks the producer or the broker refused: name -> their reason.
    refusals: dict[str, str] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return (self.valid - self.valid_landed) + (self.hostile - self.dead_lettered - self.refused)

    def ok(self) -> bool:
        return (
            not self.failures and self.lost == 0 and self.restarts == 0 and self.peak_rss_mb <= RSS_LIMIT_MB
        )


# ------------------------------------------------------------------ the valid messages
def _report(ident: str, **extra: Any) -> dict[str, Any]:
    return {"report_id": ident, "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001",
            "reporter_role": "tagana", "displaced": 1, **extra}  # fmt: skip


def _household(ident: str, **extra: Any) -> dict[str, Any]:
    return {"household_id": ident, "village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z",
            "members": 3, **extra}  # fmt: skip


def _alert(ident: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": ident, "hazard": "flood", "issued_at": "2022-11-21T06:21:10Z", "source": "fuzz",
            "areas": [{"village_code": "32.03.01.2001", "severity": "high"}], **extra}  # fmt: skip


_VALID = {"field-reports": _report, "households": _household, "disaster-alerts": _alert}
_ID_FIELD = {"field-reports": "report_id", "households": "household_id", "disaster-alerts": "event_id"}


def valid_message(topic: str, ident: str) -> bytes:
    return json.dumps(_VALID[topic](ident)).encode()


def _cap(ident: str, infos: int, areas: int = 1) -> bytes:
    area = (
        "<area><areaDesc>x</areaDesc><geocode><valueName>adm4</valueName>"
        "<value>32.03.01.2001</value></geocode></area>"
    )
    info = (
        "<info><language>id</language><category>Met</category><event>Banjir</event><urgency>Immediate</urgency>"
        "<severity>Severe</severity><certainty>Observed</certainty><onset>2022-11-21T08:00:00+07:00</onset>"
        f"<headline>h</headline>{area * areas}</info>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        f"<identifier>{ident}</identifier><sender>BMKG</sender><sent>2022-11-21T08:00:00+07:00</sent>"
        f"<status>Actual</status><msgType>Alert</msgType><scope>Public</scope>{info * infos}</alert>"
    ).encode()


# ------------------------------------------------------------------ the attacks
def attacks(tag: str) -> list[Attack]:
    """Every structural attack on every input topic; ids start with ``tag``."""
    out: list[Attack] = []
    n = iter(range(1_000_000))

    def ident() -> str:
        return f"{tag}h{next(n)}"

    def add(
        name: str, topic: str, value: bytes | None, timestamp_ms: int | None = None, key: str = "",
        lands: bool = False,
    ) -> None:  # fmt: skip
        out.append(Attack(name, topic, value, timestamp_ms, (key or ident()).encode(), lands))

    for topic, make in _VALID.items():
        # Depth: bare, unclosed and closed, and inside a field of an otherwise valid message.
        for depth in DEPTHS:
            add(f"depth {depth:,} [ unclosed", topic, b"[" * depth)
            add(f"depth {depth:,} {{ unclosed", topic, b'{"a":' * depth)
            add(f"depth {depth:,} [ closed", topic, b"[" * depth + b"]" * depth)
            i = ident()
            body = json.dumps(make(i)).encode()
            add(
                f"depth {depth:,} in a field",
                topic,
                body[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}",
                key=i,
            )
        # Sizes: a string over its field's limit, the whole message just under the broker's limit
        # and past it (the broker refuses those). An unknown field is ignored by the contracts:
        # a message that carries a large one is valid while it is under the message limit.
        long_field = {"field-reports": "notes", "households": "nik_head", "disaster-alerts": "headline"}[
            topic
        ]
        for size, label, lands in ((BROKER_MESSAGE_MAX - 4_000, "just under the broker's limit", False),
                                   (BROKER_MESSAGE_MAX + 1_000, "just over the broker's limit", False),
                                   (4 * 1024 * 1024, "4 MiB", False)):  # fmt: skip
            i = ident()
            head = json.dumps(make(i))[:-1].encode()
            room = size - len(head) - 20 - len(long_field)
            value = head + b', "' + long_field.encode() + b'": "' + b"y" * room + b'"}'
            add(f"size {label}, one long {long_field}", topic, value, key=i, lands=lands)
        i = ident()
        head = json.dumps(make(i))[:-1].encode()
        add("size 1,000,000 bytes, one unknown field (valid: lands)", topic,
            head + b', "x": "' + b"y" * (1_000_000 - len(head)) + b'"}', key=i, lands=True)  # fmt: skip
        i = ident()
        value = json.dumps({**make(i), **{f"k{j}": j for j in range(60_000)}}).encode()
        add("60,000 unknown keys (valid: lands)", topic, value, key=i, lands=True)
        # Encodings.
        i = ident()
        add("UTF-16 with BOM", topic, json.dumps(make(i)).encode("utf-16"), key=i)
        i = ident()
        add("UTF-16-LE without BOM", topic, json.dumps(make(i)).encode("utf-16-le"), key=i)
        i = ident()
        add("Latin-1 bytes in a string", topic,
            json.dumps(make(i, notes="caf\u00e9"), ensure_ascii=False).encode("latin-1"), key=i)  # fmt: skip
        i = ident()
        add(
            "invalid UTF-8 in the id",
            topic,
            json.dumps(make(i)).encode().replace(i.encode(), i.encode() + b"\xc3\x28"),
            key=i,
        )
        i = ident()
        add("NUL in the id", topic, json.dumps(make(i + "\u0000x")).encode(), key=i)
        i = ident()
        add(
            "raw NUL byte in the id",
            topic,
            json.dumps(make(i)).encode().replace(i.encode(), i.encode() + b"\x00"),
            key=i,
        )
        i = ident()
        add("right-to-left override in the id", topic, json.dumps(make(i + _RLO + "x")).encode(), key=i)
        i = ident()
        add(
            "lone surrogate in the id",
            topic,
            json.dumps(make(i)).encode().replace(i.encode(), i.encode() + b"\\ud800"),
            key=i,
        )
        # Numbers: NaN and Infinity (not JSON), 5,000 digits, past float64.
        for token in (b"NaN", b"Infinity", b"-Infinity", b"1" + b"0" * 5_000, b"1e999", b"-1e999"):
            i = ident()
            body = json.dumps(make(i)).encode()
            where = {"field-reports": b'"displaced": 1', "households": b'"members": 3',
                     "disaster-alerts": b'"severity": "high"'}[topic]  # fmt: skip
            bad = {"field-reports": b'"displaced": ', "households": b'"members": ',
                   "disaster-alerts": b'"depth_cm": '}[topic] + token  # fmt: skip
            if topic == "disaster-alerts":
                bad = where + b", " + bad
            add(
                f"number {token[:12].decode()}{'...' if len(token) > 12 else ''}",
                topic,
                body.replace(where, bad),
                key=i,
            )
        i = ident()
        add(
            "lat 5,000 digits",
            topic,
            json.dumps(make(i))[:-1].encode() + b', "lat": 1' + b"0" * 5_000 + b"}",
            key=i,
        )
        # Kafka timestamps on a valid message: past dampak's bounds (a day ahead at most, 1900 at
        # the earliest) and past the broker's (whose log.message.timestamp.after.max.ms, an hour
        # by default since Kafka 4.0, refuses the future ones first).
        now_ms = int(time.time() * 1000)
        for ts, label in ((now_ms + 180 * 86_400_000, "half a year ahead"), (_YEAR_1800_MS, "year 1800"),
                          (_YEAR_10000_MS, "year 10000"), (_INT64_MAX, "int64 max")):  # fmt: skip
            i = ident()
            add(f"Kafka timestamp {label}", topic, json.dumps(make(i)).encode(), timestamp_ms=ts, key=i)
    # Counts.
    i = ident()
    areas = [{"village_code": "32.03.01.2001"}] * 12_000
    add("12,000 areas in one alert", "disaster-alerts", json.dumps(_alert(i, areas=areas)).encode(), key=i)
    i = ident()
    add("3,000 <info> in one CAP document", "disaster-alerts", _cap(i, 3_000), key=i)
    i = ident()
    add("CAP nested 100,000 elements deep", "disaster-alerts",
        _cap(i, 1)[:-8] + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</alert>", key=i)  # fmt: skip
    i = ident()
    entities = b'<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b"<!ENTITY " + name + b' "' + (b"&" + prev + b";") * 10 + b'">'
        for prev, name in ((b"a", b"b"), (b"b", b"c"), (b"c", b"d"))
    )
    add("CAP with an entity expansion", "disaster-alerts",
        b'<?xml version="1.0"?><!DOCTYPE alert [' + entities + b"]>"
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&d;&d;&d;</identifier></alert>',
        key=i)  # fmt: skip
    i = ident()
    vulnerable = {"elderly": 100, "disabled": 100, "under5": 100, "pregnant": 100}
    add("members 1 with 400 vulnerable", "households",
        json.dumps(_household(i, members=1, **vulnerable)).encode(), key=i)  # fmt: skip
    i = ident()
    add("members 1,000,000", "households", json.dumps(_household(i, members=1_000_000)).encode(), key=i)
    i = ident()
    add("100,000 needs", "field-reports", json.dumps(_report(i, needs=["tenda"] * 100_000)).encode(), key=i)
    i = ident()
    # No contract bounds the list (a set of three programs): valid, it must land.
    add(
        "100,000 programs, all PKH (valid: lands)",
        "households",
        json.dumps(_household(i, programs=["PKH"] * 100_000)).encode(),
        key=i,
        lands=True,
    )
    return out


# ------------------------------------------------------------------ the run
def peak_rss_mb(pid: int) -> float:
    """The peak resident set of process ``pid`` (VmHWM), in MB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_structural(dep: Deployment, rounds: int = 1, tag: str = "S", timeout_s: float = 240) -> Outcome:
    """Send every attack ``rounds`` times, each followed on its partition by a valid message, to
    ``dep``'s running worker; wait until every valid one landed and every hostile one was
    dead-lettered (or the timeout). Returns the outcome, with each attack that broke the
    invariant in ``failures``."""
    assert dep.worker is not None and dep.worker.poll() is None, "start the worker first"
    pid = dep.worker.pid
    started = time.monotonic()
    options = dep.settings.kafka.producer_options()
    prod = KafkaProducer(**options)
    sent: list[Sent] = []
    valid: dict[str, list[str]] = {t: [] for t in _VALID}
    try:
        for r in range(rounds):
            for k, attack in enumerate(attacks(f"{tag}{r}-")):
                topic = dep.topic(attack.topic)
                partition = k % len(prod.partitions_for(topic))
                s = Sent(attack)
                # What the broker may refuse goes through a producer of its own: one that takes
                # more than the default, so that the broker sees it, and whose death (kafka-python
                # aborts a producer on InvalidTimestampError) cannot fail later sends.
                big = len(attack.value or b"") > BROKER_MESSAGE_MAX - 4_096 or attack.timestamp_ms is not None
                sender = KafkaProducer(**options, max_request_size=_PRODUCER_MAX) if big else prod
                try:
                    future = sender.send(topic, key=attack.key, value=attack.value, partition=partition,
                                         timestamp_ms=attack.timestamp_ms)  # fmt: skip
                    meta = future.get(timeout=60)
                    s.partition, s.offset = meta.partition, meta.offset
                except (KafkaError, AssertionError, ValueError, OverflowError) as exc:
                    s.refused = f"{type(exc).__name__}: {exc}"[:200]
                finally:
                    if big:
                        sender.close()
                sent.append(s)
                ident = f"{tag}{r}-v{k}"
                value = valid_message(attack.topic, ident)
                prod.send(topic, key=ident.encode(), value=value, partition=partition).get(timeout=60)
                valid[attack.topic].append(ident)
        prod.flush()
    finally:
        prod.close()
    edge = [s for s in sent if s.attack.lands]
    for s in edge:
        valid[s.attack.topic].append((s.attack.key or b"").decode())
    sent = [s for s in sent if not s.attack.lands]
    out = Outcome(
        messages=2 * len(sent) + 2 * len(edge), hostile=len(sent), valid=sum(map(len, valid.values()))
    )
    out.refused = sum(1 for s in sent if s.refused)
    out.refusals = {f"{s.attack.topic}: {s.attack.name}": s.refused for s in sent if s.refused}
    landed, lettered = _wait_for_outcome(dep, valid, sent, deadline=started + timeout_s)
    out.valid_landed = sum(landed.values())
    out.dead_lettered = sum(
        1 for s in sent if not s.refused and (s.partition, s.offset, s.attack.topic) in lettered
    )
    for s in sent:
        key = (s.partition, s.offset, s.attack.topic)
        if s.refused:
            continue
        if key not in lettered:
            accepted = _landed(dep, s.attack.topic, [(s.attack.key or b"").decode("utf-8", "replace")])
            out.failures[f"{s.attack.topic}: {s.attack.name}"] = (
                "not dead-lettered: accepted as valid" if accepted else "not dead-lettered, and not stored"
            )
        elif not lettered[key]:
            out.failures[f"{s.attack.topic}: {s.attack.name}"] = "dead-lettered without a reason"
    for topic, idents in valid.items():
        if landed[topic] < len(idents):
            out.failures[f"{topic}: valid messages after hostile ones"] = (
                f"{landed[topic]} of {len(idents)} landed"
            )
    alive = dep.worker is not None and dep.worker.poll() is None and dep.worker.pid == pid
    out.restarts = 0 if alive else 1
    out.peak_rss_mb = round(peak_rss_mb(pid), 1)
    out.seconds = round(time.monotonic() - started, 1)
    return out


def _wait_for_outcome(
    dep: Deployment, valid: dict[str, list[str]], sent: list[Sent], deadline: float
) -> tuple[dict[str, int], dict[tuple[int, int, str], str]]:
    """(valid messages landed per topic, {(partition, offset, topic): reason} of the dead letters
    on the input topics), polled until complete or ``deadline``."""
    want_letters = sum(1 for s in sent if not s.refused)
    topics = {dep.topic(t): t for t in _VALID}
    landed: dict[str, int] = {}
    lettered: dict[tuple[int, int, str], str] = {}
    while True:
        landed = {topic: _landed(dep, topic, idents) for topic, idents in valid.items()}
        rows = dep.query(
            "SELECT topic, partition, offset, any(reason) AS reason FROM dampak.dead_letters "
            "WHERE topic IN {t:Array(String)} GROUP BY topic, partition, offset",
            t=list(topics),
        )
        lettered = {(int(r["partition"]), int(r["offset"]), topics[r["topic"]]): r["reason"] for r in rows}
        done = all(landed[t] >= len(v) for t, v in valid.items()) and len(lettered) >= want_letters
        if done or time.monotonic() > deadline or dep.worker is None or dep.worker.poll() is not None:
            return landed, lettered
        time.sleep(2)


def _landed(dep: Deployment, topic: str, idents: list[str]) -> int:
    """How many of ``idents`` (message ids on ``topic``) are stored."""
    if topic == "households":
        return _households_landed(dep, idents)
    if topic == "field-reports":
        sql = (
            "SELECT uniqExact(report_id) AS n FROM dampak.field_reports WHERE report_id IN {p:Array(String)}"
        )
    else:  # a CAP document's alerts are cap-<identifier>
        sql = (
            "SELECT uniqExact(event_id) AS n FROM dampak.alerts_state "
            "WHERE has({p:Array(String)}, event_id) OR has({p:Array(String)}, substring(event_id, 5))"
        )
    return _count(dep, sql, idents)


def _count(dep: Deployment, sql: str, idents: list[str]) -> int:
    try:
        return int(dep.query(sql, p=idents)[0]["n"])
    except Exception as exc:  # a worker that stopped answering: counted as nothing landed
        logger.warning("counting landed messages failed: %s", exc)
        return 0


def _households_landed(dep: Deployment, idents: list[str]) -> int:
    """Valid households in ``registry_state``: their ids are pseudonymised, so counted through
    the worker's own pseudonyms of them (the ``household_ref`` the registry rows carry)."""
    from streams.privacy import Pseudonymizer

    pseudo = Pseudonymizer(dep.settings.privacy)
    refs = [pseudo.ref("household_id", i) for i in idents]
    try:
        rows = dep.query("SELECT uniqExact(household_ref) AS n FROM dampak.registry_state "
                         "WHERE household_ref IN {r:Array(String)}", r=refs)  # fmt: skip
    except Exception as exc:
        logger.warning("counting landed households failed: %s", exc)
        return 0
    return int(rows[0]["n"])

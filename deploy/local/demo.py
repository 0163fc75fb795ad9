"""``dampak demo``: the bundled Cianjur 2022 scenario replayed end to end on the configured stack.

A deterministic registry of Cianjur households and a stream of field reports (revisions,
retractions, re-sends, village summaries, a few malformed messages) go through Kafka and a real
worker; the impact is then read back from ClickHouse.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from deploy.local.broker import LocalKafka
from sinks.analyst import query
from streams.admin import ensure_topics, producer
from streams.cli_output import print_rows
from streams.errors import DampakError
from streams.settings import Settings
from streams.topics import Topic, physical_name
from streams.worker import wait_until_ready

__all__ = ["CIANJUR_EVENT", "run_demo", "scenario"]

logger = logging.getLogger(__name__)

#: BMKG event id of the Cianjur earthquake, 2022-11-21 06:21:10 UTC (M5.6, 10 km).
CIANJUR_EVENT = "bmkg-20221121062110"
_QUAKE = datetime(2022, 11, 21, 6, 21, 10, tzinfo=UTC)


def _cianjur_villages() -> list[str]:
    with (importlib.resources.files("lokal") / "data" / "desa.json.gz").open("rb") as fh:
        names: dict[str, str] = json.loads(gzip.decompress(fh.read()))
    # The districts around the epicentre: Cugenang, Pacet, Cianjur, Warungkondang, Gekbrong.
    districts = ("32.03.01", "32.03.02", "32.03.03", "32.03.12", "32.03.13", "32.03.21", "32.03.22")
    return sorted(code for code in names if code[:8] in districts)


def scenario(seed: int = 2022) -> tuple[list[dict[str, Any]], list[tuple[str, bytes, bytes]], int]:
    """(households, field-report messages in arrival order, expected number of current reports)."""
    rng = random.Random(seed)
    villages = _cianjur_villages()
    households = []
    for i in range(3000):
        desil = rng.choice([None, *range(1, 11)])
        households.append(
            {
                "household_id": f"CJR-{i:05d}",
                "village_code": rng.choice(villages),
                "updated_at": "2022-11-01T00:00:00Z",
                "nik_head": f"3203{rng.randrange(10**11, 10**12)}",
                "members": rng.randint(1, 7),
                "desil": desil,
                "programs": sorted(rng.sample(["PKH", "BPNT", "PBI"], rng.randint(1, 2)))
                if desil and desil <= 4
                else [],
                "elderly": rng.randint(0, 1),
                "under5": rng.randint(0, 2),
                "lat": round(-6.82 + rng.uniform(-0.08, 0.08), 5),
                "lon": round(107.08 + rng.uniform(-0.08, 0.08), 5),
            }
        )
    latest: dict[str, dict[str, Any]] = {}
    messages: list[tuple[str, bytes, bytes]] = []
    for i in range(6000):
        hh = rng.choice(households) if rng.random() < 0.85 else None
        report: dict[str, Any] = {
            "report_id": f"CJR-R{i:05d}",
            "reported_at": (_QUAKE + timedelta(minutes=rng.randint(30, 5 * 24 * 60))).isoformat(),
            "reporter_id": f"TGN-{rng.randint(1, 80):03d}",
            "reporter_role": rng.choice(["tagana", "tagana", "tksk", "pkh", "psm"]),
        }
        if rng.random() < 0.9:
            report["event_id"] = CIANJUR_EVENT
        if hh:
            report |= {"village_code": hh["village_code"], "household_id": hh["household_id"]}
            damage = rng.choice(["houses_heavy", "houses_moderate", "houses_light", "houses_heavy"])
            report |= {damage: 1, "displaced": hh["members"] if damage == "houses_heavy" else 0}
            report["injured"] = 1 if rng.random() < 0.05 else 0
        else:
            report |= {
                "village_code": rng.choice(villages),
                "dead": rng.choice([0, 0, 0, 1, 2]),
                "missing": rng.choice([0, 0, 1]),
                "injured": rng.randint(0, 30),
            }
        versions = [report]
        if rng.random() < 0.15:
            versions.append(report | {"revision": 2, "injured": report.get("injured", 0) + 1})
        elif rng.random() < 0.03:
            versions.append(report | {"revision": 2, "retracted": True})
        if rng.random() < 0.05:
            versions.append(versions[-1])
        for v in versions:
            messages.append(("field-reports", v["report_id"].encode(), json.dumps(v).encode()))
        latest[report["report_id"]] = versions[-1]
    rng.shuffle(messages)
    messages += [
        ("field-reports", b"bad-1", b"{not json"),
        (
            "field-reports",
            b"bad-2",
            json.dumps({"report_id": "bad-2", "village_code": "3203012001"}).encode(),
        ),
        (
            "field-reports",
            b"bad-3",
            json.dumps(
                {
                    "report_id": "bad-3",
                    "reported_at": "2022-11-21T09:00:00Z",
                    "village_code": "32.03.01.2001",
                    "dead": -4,
                }
            ).encode(),
        ),
    ]
    current = sum(1 for r in latest.values() if not r.get("retracted"))
    return households, messages, current


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise DampakError(f"the pipeline did not get there within {timeout_s:.0f}s")
        time.sleep(0.5)


def run_demo(settings: Settings, keep_running: bool = False) -> int:
    """Start Kafka if local, run a worker, publish the scenario, wait for the figures, print them."""
    started = time.monotonic()
    print(f"Kafka: {LocalKafka(settings).up()} at {settings.kafka.bootstrap_servers}")
    ensure_topics(settings)
    # The worker's own log goes to a file; the demo prints what an analyst would see.
    log = settings.data_dir / "demo-worker.log"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # Local development: the built-in pseudonym key is fine here, and only here.
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DAMPAK_DEV_MODE": "true"},
        )
    print(f"worker started (log: {log})")
    try:
        wait_until_ready(f"http://{settings.web.host}:{settings.web.port}", worker, timeout_s=120)
        households, messages, current = scenario()
        prod = producer(settings)
        for h in households:
            prod.send(
                physical_name(Topic.HOUSEHOLDS, settings),
                key=h["household_id"].encode(),
                value=json.dumps(h).encode(),
            )
        prod.flush()
        target = settings.clickhouse_target

        def ask(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            return query(target, sql, {"event": CIANJUR_EVENT} if "{event:" in sql else None)

        registered = "SELECT sum(households) FROM dampak.village_stats"
        _wait_until(lambda: ask(registered)[1][0][0] >= len(households), 120)
        # The BMKG bulletin comes first: an estimate minutes after the quake, before any report.
        prod.send(physical_name(Topic.DISASTER_ALERTS, settings), key=CIANJUR_EVENT.encode(), value=_BULLETIN)
        prod.flush()
        estimate = _SUMMARY[0][1]
        _wait_until(lambda: bool(ask(estimate)[1]), 60)
        print("\n== The estimate from the BMKG bulletin alone, before any field report")
        print_rows(*ask(estimate), "table", sys.stdout)
        print()
        for logical, key, value in messages:
            prod.send(physical_name(Topic(logical), settings), key=key, value=value)
        prod.flush()
        prod.close()
        print(f"published {len(households)} households and {len(messages)} field-report messages")
        count_sql = "SELECT count() FROM dampak.field_reports WHERE report_id LIKE 'CJR-R%'"
        _wait_until(lambda: ask(count_sql)[1][0][0] == current, 180)
        print(f"{current} current reports visible in ClickHouse after {time.monotonic() - started:.1f}s\n")
        for title, sql in _SUMMARY:
            print(f"== {title}")
            print_rows(*ask(sql), "table", sys.stdout)
            print()
    finally:
        if not keep_running:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    return 0


_BULLETIN = json.dumps(
    {
        "Infogempa": {
            "gempa": {
                "Tanggal": "21 Nov 2022", "Jam": "13:21:10 WIB", "DateTime": "2022-11-21T06:21:10+00:00",
                "Coordinates": "-6.84,107.05", "Lintang": "6.84 LS", "Bujur": "107.05 BT", "Magnitude": "5.6",
                "Kedalaman": "10 km", "Wilayah": "Pusat gempa berada di darat 10 km BaratDaya Kab. Cianjur",
                "Potensi": "Gempa ini dirasakan untuk diteruskan pada masyarakat",
                "Dirasakan": "V-VI Cianjur, IV-V Garut, IV-V Sukabumi, III Cimahi, III Lembang, III Bandung",
            }
        }
    }
).encode()  # fmt: skip

_SUMMARY = [
    (
        "Event summary: estimated beside reported",
        "SELECT event_id, magnitude, pager_level, est_exposed_households, "
        "round(est_deaths, 1) AS est_deaths, round(est_displaced) AS est_displaced, "
        "reported_households_affected, reported_houses_heavy, reported_houses_moderate, "
        "reported_houses_light, reported_displaced, reported_dead, reported_injured, "
        "reported_missing, reported_kpm_households_affected "
        "FROM dampak.event_summary WHERE event_id = {event:String}",
    ),
    (
        "Minimum needs per regency (BNPB, per week; toilets one-off), estimated and reported",
        "SELECT regency_name, round(est_displaced) AS est_displaced, reported_displaced, "
        "round(est_rice_kg_week) AS est_rice_kg, round(reported_rice_kg_week) AS rep_rice_kg, "
        "round(reported_drinking_water_l_week) AS rep_drinking_l, "
        "round(reported_clean_water_l_week) AS rep_clean_l, "
        "round(reported_family_kits_week) AS rep_family_kits, round(reported_toilets) AS rep_toilets "
        "FROM dampak.minimum_needs WHERE event_id = {event:String}",
    ),
    (
        "Impact per regency (reported)",
        "SELECT event_id, regency_code, regency_name, reports, households_affected, houses_heavy, "
        "houses_moderate, houses_light, displaced, dead, injured, missing, kpm_households_affected "
        "FROM dampak.impact_regency WHERE event_id = {event:String}",
    ),
    (
        "Most damaged villages",
        "SELECT village_code, village_name, households_affected, houses_heavy, displaced, "
        "kpm_households_affected, vulnerable_persons_affected FROM dampak.impact_village "
        "WHERE event_id = {event:String} ORDER BY houses_heavy DESC LIMIT 10",
    ),
    (
        "Households to re-assess in the welfare registry",
        "SELECT reason, count() AS households FROM dampak.registry_candidates "
        "GROUP BY reason ORDER BY reason",
    ),
    ("Dead letters", "SELECT topic, reason FROM dampak.dead_letters ORDER BY offset LIMIT 5"),
]

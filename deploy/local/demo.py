"""``dampak demo``: the Cianjur earthquake of 21 November 2022 replayed end to end on the
configured stack, time compressed, figures not.

A registry of 60,000 households in the 16 districts BNPB counted damage in, the BMKG bulletin, and
six days of field reports whose totals at the end of each day are BNPB's (62 dead and 5,389
displaced on the evening of the 21st, 103 and 7,060 on the 22nd, and on the 26th 318 dead, 14
missing, 7,729 injured, 73,693 displaced, houses 25,186 heavy, 12,496 moderate and 20,367 light,
in 146 villages), with the revisions, re-sends, retractions and malformed messages of real field
work, go through Kafka and a real worker; the impact is then read back from ClickHouse, beside
the estimate from the bulletin.

As in the field, the earthquake is not the only event: an M4.1 aftershock on the night of the 24th
and a BMKG rain nowcast over Cugenang that day reach the same villages, and from the 25th half of
the TKSK summaries carry no event id (some name the hazard, "gempa"). They still count under the
earthquake's incident, whose totals are BNPB's.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deploy.local.broker import LocalKafka
from sinks.analyst import query
from streams.commands.cli_output import print_rows
from streams.errors import DampakError
from streams.ops.admin import ensure_topics, producer
from streams.runtime.restore import STALE_STATE_EXIT
from streams.runtime.startup import check_port_free
from streams.runtime.worker import wait_until_ready
from streams.settings import Settings
from streams.topics import Topic, physical_name

__all__ = ["CIANJUR_EVENT", "run_demo", "scenario", "start_worker"]

logger = logging.getLogger(__name__)

#: BMKG event id of the Cianjur earthquake, 2022-11-21 06:21:10 UTC (M5.6, 10 km).
CIANJUR_EVENT = "bmkg-20221121062110"
_QUAKE = datetime(2022, 11, 21, 6, 21, 10, tzinfo=UTC)
#: The M4.1 aftershock of 25 Nov 2022, 01:44 WIB (the demo places it beside the main shock).
AFTERSHOCK_EVENT = "bmkg-20221124184400"
#: Reports from this day on (the aftershock's) may carry no event id.
_UNTAGGED_FROM = datetime(2022, 11, 25, tzinfo=UTC)


#: The 16 districts BNPB counted damage in by 26 Nov 2022 (Kemendagri names).
DISTRICTS = (
    "Cugenang", "Cianjur", "Pacet", "Warungkondang", "Gekbrong", "Cilaku", "Sukaluyu", "Karangtengah",
    "Mande", "Cikalongkulon", "Sukaresmi", "Cipanas", "Cijati", "Campaka", "Cibeber", "Haurwangi",
)  # fmt: skip
#: BNPB's totals for the Cianjur earthquake as they were published, by the time of the update
#: (UTC). 21 Nov evening, 22 Nov and 26 Nov are BNPB's own updates; the days between are linear
#: interpolations (the demo needs a figure per day). Houses, injured and missing: 26 Nov only,
#: spread over the days like the displaced.
BNPB = {
    datetime(2022, 11, 21, 13, 0, tzinfo=UTC): {"dead": 62, "displaced": 5_389},
    datetime(2022, 11, 22, 13, 0, tzinfo=UTC): {"dead": 103, "displaced": 7_060},
    datetime(2022, 11, 26, 13, 0, tzinfo=UTC): {
        "dead": 318, "missing": 14, "injured": 7_729, "displaced": 73_693,
        "houses_heavy": 25_186, "houses_moderate": 12_496, "houses_light": 20_367,
    },
}  # fmt: skip
AFFECTED_VILLAGES = 146
REGISTRY_HOUSEHOLDS = 60_000
_EPICENTRE = (-6.84, 107.05)
_FIGURES = ("dead", "missing", "injured", "displaced", "houses_heavy", "houses_moderate", "houses_light")


def _daily_totals() -> list[tuple[datetime, dict[str, int]]]:
    """The cumulative totals at the end of each day from 21 to 26 Nov (see ``BNPB``)."""
    final = BNPB[max(BNPB)]
    known = sorted(BNPB.items())
    out = []
    for day in range(6):
        at = datetime(2022, 11, 21 + day, 13, 0, tzinfo=UTC)
        totals = {}
        for figure in _FIGURES:
            points = [(t, v[figure]) for t, v in known if figure in v] or [(known[-1][0], final[figure])]
            share_points = [(t, v["displaced"]) for t, v in known]
            if len(points) == 1:  # only the final figure: follow the displaced's curve
                totals[figure] = round(final[figure] * _interpolate(share_points, at) / final["displaced"])
            else:
                totals[figure] = round(_interpolate(points, at))
        out.append((at, totals))
    return out


def _interpolate(points: list[tuple[datetime, int]], at: datetime) -> float:
    if at <= points[0][0]:
        return float(points[0][1])
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if at <= t1:
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0)
    return float(points[-1][1])


def _allocate(total: int, weights: list[float]) -> list[int]:
    """``total`` split by ``weights`` into integers that sum to it exactly (largest remainder)."""
    if total <= 0:
        return [0] * len(weights)
    raw = [total * w / sum(weights) for w in weights]
    out = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[: total - sum(out)]:
        out[i] += 1
    return out


def _geography() -> dict[str, tuple[float, float]]:
    """Village code -> its centroid (``schemas/geo/``, the shipped boundaries' centroids), for
    every village of the 16 districts that has one."""
    from schemas.geo import village_positions
    from schemas.regions import region_by_name, villages

    positions = village_positions()
    out = {}
    for name in DISTRICTS:
        code = region_by_name(f"{name}, Kabupaten Cianjur")
        if code is None:
            continue
        out.update({v: positions[v] for v in villages(code + ".") if v in positions})
    return out


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot((a[0] - b[0]) * 111.2, (a[1] - b[1]) * 110.4)


def scenario(
    seed: int = 2022, registry_households: int = REGISTRY_HOUSEHOLDS
) -> tuple[list[dict[str, Any]], list[tuple[str, bytes, bytes]], int]:
    """(households, field-report messages in arrival order, expected number of current reports).

    A registry of ``registry_households`` households in the 16 districts, and six days of reports
    (21 to 26 Nov) whose totals at the end of each day are BNPB's: each affected village gets one
    summary report a day from its TKSK worker with what was newly counted that day, and Tagana
    volunteers report heavily damaged registered households one by one (counted inside the day's
    houses). Corrections as they come in the field: revised counts, re-sent copies, duplicate
    reports retracted, and three malformed messages.
    """
    rng = random.Random(seed)
    geo = _geography()
    codes = sorted(geo)
    households = []
    by_village: dict[str, list[dict[str, Any]]] = {c: [] for c in codes}
    for i in range(registry_households):
        village = codes[i % len(codes)] if i < len(codes) else rng.choice(codes)
        desil = rng.choice([None, *range(1, 11)])
        lat, lon = geo[village]
        household = {
            "household_id": f"CJR-{i:06d}",
            "village_code": village,
            "updated_at": "2022-11-01T00:00:00Z",
            "nik_head": f"3203{rng.randrange(10**11, 10**12)}",
            "members": (members := rng.randint(1, 7)),
            "desil": desil,
            "programs": sorted(rng.sample(["PKH", "BPNT", "PBI"], rng.randint(1, 2)))
            if desil and desil <= 4
            else [],
            "elderly": (elderly := rng.randint(0, 1)),
            "under5": min(rng.randint(0, 2), members - elderly),  # plausible: see schemas/households.py
            "lat": round(lat + rng.uniform(-0.004, 0.004), 5),
            "lon": round(lon + rng.uniform(-0.004, 0.004), 5),
        }
        households.append(household)
        by_village[village].append(household)
    # The nearest village of every district, then the nearest others: 146 villages in 16 districts.
    nearest = sorted(codes, key=lambda c: _km(geo[c], _EPICENTRE))
    firsts = list({c[:8]: c for c in reversed(nearest)}.values())
    affected = sorted(firsts + [c for c in nearest if c not in firsts][: AFFECTED_VILLAGES - len(firsts)])
    weights = [math.exp(-_km(geo[c], _EPICENTRE) / 8) for c in affected]
    versions: list[list[dict[str, Any]]] = []
    previous = dict.fromkeys(_FIGURES, 0)
    for day, (end_of_day, totals) in enumerate(_daily_totals()):
        new = {f: _allocate(totals[f] - previous[f], weights) for f in _FIGURES}
        previous = totals
        start = end_of_day - timedelta(hours=6 if day == 0 else 10)
        for i, village in enumerate(affected):
            counts = {f: new[f][i] for f in _FIGURES}
            if not any(counts.values()):
                continue
            when = start + timedelta(minutes=rng.randint(0, 5 * 60))
            # Heavily damaged registered households, one report each (inside the day's count).
            singles = [h for h in by_village[village] if not h.get("_reported")][
                : min(counts["houses_heavy"], 25)
            ]
            for h in singles:
                h["_reported"] = True
                report = _report(f"CJR-H-{h['household_id']}", when, village, "tagana", houses_heavy=1)
                report["household_id"] = h["household_id"]
                versions.append([report])
            counts["houses_heavy"] -= len(singles)
            summary = _report(f"CJR-V-{village}-{day + 21}", when, village, "tksk", **counts)
            if when >= _UNTAGGED_FROM and rng.random() < 0.5:
                # "the earthquake", not a BMKG event id: placed by the incident covering the village.
                del summary["event_id"]
                if rng.random() < 0.5:
                    summary["hazard"] = "gempa"
            chain = [summary]
            roll = rng.random()
            if roll < 0.25:  # first count off, corrected the next hours
                first = {**summary, "dead": summary["dead"] + 1, "displaced": summary["displaced"] + 7}
                chain = [first, {**summary, "revision": 2}]
            elif roll < 0.30:  # the same summary reported twice; the duplicate retracted
                duplicate = _report(f"CJR-V-{village}-{day + 21}-dup", when, village, "tksk", **counts)
                versions.append([duplicate, {**duplicate, "revision": 2, "retracted": True}])
            if rng.random() < 0.05:  # a re-sent copy
                chain.append(chain[-1])
            versions.append(chain)
    messages = [
        ("field-reports", v["report_id"].encode(), json.dumps(v).encode())
        for chain in versions
        for v in chain
    ]
    messages.sort(key=lambda m: json.loads(m[2])["reported_at"])
    messages += _MALFORMED
    for h in households:
        h.pop("_reported", None)
    current = len({chain[0]["report_id"] for chain in versions if not chain[-1].get("retracted")})
    return households, messages, current


def _report(report_id: str, when: datetime, village: str, role: str, **counts: int) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "event_id": CIANJUR_EVENT,
        "reported_at": when.isoformat(),
        "reporter_id": f"{role.upper()}-{village[-4:]}",
        "reporter_role": role,
        "village_code": village,
        **{f: counts.get(f, 0) for f in _FIGURES},
    }


_MALFORMED = [
    ("field-reports", b"bad-1", b"{not json"),
    ("field-reports", b"bad-2", json.dumps({"report_id": "bad-2", "village_code": "3203012001"}).encode()),
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


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise DampakError(f"the pipeline did not get there within {timeout_s:.0f}s")
        time.sleep(0.5)


def start_worker(settings: Settings, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``dampak worker`` (output appended to ``log``) and wait until it is ready.

    The demo's tables are its own: when the worker finds them ahead of their changelogs (the
    local broker's data was reset, or the data directory met another broker: ``STALE_STATE_EXIT``),
    they are deleted and the worker started once more, rebuilding them from the changelogs. Raises
    DampakError when the worker exits otherwise, with the end of its log.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        with open(log, "ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        print(f"worker started (log: {log})")
        try:
            wait_until_ready(f"http://{settings.web.host}:{settings.web.port}", worker, timeout_s=120)
            return worker
        except DampakError as exc:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.returncode == STALE_STATE_EXIT and attempt == 1:
                # Where streams/runtime/app.py keeps Faust's data: its tables, rebuilt from the changelogs.
                faust_dir = settings.data_dir / "faust"
                print(f"the worker's tables disagree with the broker's changelogs: rebuilding {faust_dir}")
                shutil.rmtree(faust_dir, ignore_errors=True)
                continue
            raise DampakError(f"{exc}; the end of its log ({log}):\n{_tail(log)}") from exc
    raise AssertionError("unreachable")  # both attempts return or raise


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_demo(settings: Settings, keep_running: bool = False) -> int:
    """Start Kafka if local, run a worker, publish the scenario, wait for the figures, print them."""
    started = time.monotonic()
    print(f"Kafka: {LocalKafka(settings).up()} at {settings.kafka.bootstrap_servers}")
    ensure_topics(settings)
    check_port_free(settings)
    # The worker's own log goes to a file; the demo prints what an analyst would see.
    log = settings.data_dir / "demo-worker.log"
    # Local development: the built-in pseudonym key is fine here, and only here.
    worker = start_worker(settings, log, {**os.environ, "DAMPAK_DEV_MODE": "true"})
    try:
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
        alerts = physical_name(Topic.DISASTER_ALERTS, settings)
        prod.send(alerts, key=CIANJUR_EVENT.encode(), value=_BULLETIN)
        prod.flush()
        # The alert's row, then its ranges: the tables of one batch are written one after another.
        _wait_until(lambda: bool(ask(_ESTIMATE)[1]) and bool(ask(_RANGES)[1]), 60)
        print("\n== The estimate from the BMKG bulletin alone, before any field report, with its ranges")
        print_rows(*ask(_ESTIMATE), "table", sys.stdout)
        print_rows(*ask(_RANGES), "table", sys.stdout)
        print()
        # The aftershock and the nowcast: events of their own, over the same villages.
        prod.send(alerts, key=AFTERSHOCK_EVENT.encode(), value=_AFTERSHOCK)
        prod.send(alerts, key=b"cap-CJR20221124", value=_nowcast())
        prod.flush()
        for logical, key, value in messages:
            prod.send(physical_name(Topic(logical), settings), key=key, value=value)
        prod.flush()
        prod.close()
        print(f"published {len(households)} households and {len(messages)} field-report messages")
        count_sql = "SELECT count() FROM dampak.field_reports WHERE report_id LIKE 'CJR-%'"
        _wait_until(lambda: ask(count_sql)[1][0][0] == current, 180)
        # ... and the aftershock and the nowcast grouped with (or apart from) the earthquake.
        _wait_until(lambda: len(ask(_EVENTS)[1]) >= 3, 60)
        print(f"{current} current reports visible in ClickHouse after {time.monotonic() - started:.1f}s\n")
        for title, sql in _SUMMARY:
            print(f"== {title}")
            print_rows(*ask(sql), "table", sys.stdout)
            print()
        print("== The events and their incidents: the aftershock joins the quake, the nowcast stands alone")
        print_rows(*ask(_EVENTS), "table", sys.stdout)
        print()
        print("== Where the reports without an event id went (field_reports.attribution)")
        print_rows(*ask(_ATTRIBUTION), "table", sys.stdout)
        print()
        columns, [row] = ask(_BESIDE_BNPB)
        final = {**BNPB[max(BNPB)], "villages": AFFECTED_VILLAGES, "districts": len(DISTRICTS)}
        print("== Reported through dampak beside BNPB's update of 26 Nov 2022")
        beside = [(c, v, final.get(c, "")) for c, v in zip(columns, row, strict=True)]
        print_rows(["figure", "dampak", "BNPB"], beside, "table", sys.stdout)
        if keep_running:
            url = f"http://{settings.web.host}:{settings.web.port}/pusat/"
            print(f"\nthe command center: {url} (Ctrl-C stops the worker)")
            worker.wait()
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

#: The M4.1 aftershock as BMKG's autogempa feed publishes a bulletin.
_AFTERSHOCK = json.dumps(
    {
        "Infogempa": {
            "gempa": {
                "Tanggal": "25 Nov 2022", "Jam": "01:44:00 WIB", "DateTime": "2022-11-24T18:44:00+00:00",
                "Coordinates": "-6.85,107.06", "Lintang": "6.85 LS", "Bujur": "107.06 BT", "Magnitude": "4.1",
                "Kedalaman": "10 km", "Wilayah": "Pusat gempa berada di darat 9 km BaratDaya Kab. Cianjur",
                "Dirasakan": "III Cianjur",
            }
        }
    }
).encode()  # fmt: skip


def _nowcast() -> bytes:
    """BMKG's CAP rain nowcast over Cugenang on 24 Nov 2022 (a warning: it takes no report)."""
    from schemas.regions import region_by_name, villages

    district = region_by_name("Cugenang, Kabupaten Cianjur") or ""
    areas = "".join(
        f"<area><areaDesc>{code}</areaDesc><geocode><valueName>adm4</valueName><value>{code}</value>"
        "</geocode></area>"
        for code in villages(district + ".")
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        "<identifier>CJR20221124</identifier><sender>BMKG</sender><sent>2022-11-24T14:00:00+07:00</sent>"
        "<status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info><language>id</language>"
        "<category>Met</category><event>Hujan Lebat</event><urgency>Immediate</urgency>"
        "<severity>Moderate</severity><certainty>Likely</certainty><onset>2022-11-24T14:00:00+07:00</onset>"
        f"<headline>Peringatan Dini Cuaca Cianjur</headline>{areas}</info></alert>"
    ).encode()


_BESIDE_BNPB = (
    "SELECT reported_dead AS dead, reported_missing AS missing, reported_injured AS injured, "
    "reported_displaced AS displaced, reported_houses_heavy AS houses_heavy, "
    "reported_houses_moderate AS houses_moderate, reported_houses_light AS houses_light, "
    "(SELECT uniqExact(village_code) FROM dampak.impact_village "
    "WHERE incident_id = {event:String}) AS villages, "
    "(SELECT uniqExact(substring(village_code, 1, 8)) FROM dampak.impact_village "
    "WHERE incident_id = {event:String}) AS districts "
    "FROM dampak.incidents WHERE incident_id = {event:String}"
)

_ESTIMATE = (
    "SELECT event_id, magnitude, felt_used, pager_level, pager_fatality_level, pager_economic_level, "
    "est_exposed_households, round(est_deaths, 1) AS est_deaths_median, est_deaths_low, est_deaths_high, "
    "round(est_deaths_probability, 2) AS p, round(est_displaced) AS est_displaced_upper_bound "
    "FROM dampak.event_summary WHERE event_id = {event:String}"
)
_RANGES = (
    "SELECT model, outcome, range_low, range_high, round(probability, 3) AS probability, label "
    "FROM dampak.estimate_ranges WHERE event_id = {event:String} ORDER BY model, range_low"
)
_EVENTS = (
    "SELECT event_id, hazard, event_time, incident_id, rule FROM dampak.event_incident ORDER BY event_time"
)
_ATTRIBUTION = (
    "SELECT attribution, event_id, incident_id, count() AS reports FROM dampak.field_reports "
    "WHERE report_id LIKE 'CJR-%' GROUP BY attribution, event_id, incident_id ORDER BY attribution"
)

_SUMMARY = [
    (
        "The incident: its events, estimated (with the most likely range) beside reported",
        "SELECT incident_id, events, event_rules, pager_level, est_deaths_low, est_deaths_high, "
        "round(est_deaths_probability, 2) AS p, reported_households_affected, reported_houses_heavy, "
        "reported_displaced, reported_dead, reported_injured, reported_missing, "
        "reported_kpm_households_affected FROM dampak.incidents WHERE incident_id = {event:String}",
    ),
    (
        "Displacement: the estimates beside what the reported damage implies",
        "SELECT event_id, model, round(range_low) AS low, round(range_high) AS high, label "
        "FROM dampak.estimate_ranges WHERE incident_id = {event:String} AND outcome = 'displaced' "
        "ORDER BY event_id, model",
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
        "What Kemensos owes under Permensos 4/2015 (DAMPAK_ENTITLEMENTS__*), per kind",
        "SELECT kind, sum(basis_count) AS basis, any(unit_amount_idr) AS unit_idr, "
        "sum(amount_idr) AS amount_idr FROM dampak.entitlements WHERE incident_id = {event:String} "
        "GROUP BY kind ORDER BY kind",
    ),
    (
        "Coverage: struck villages no one has reported from yet, per kecamatan (dampak coverage)",
        "SELECT district_name, exposed_villages, reported_villages, unreported_villages, "
        "hours_since_last_report FROM dampak.coverage WHERE incident_id = {event:String} "
        "ORDER BY unreported_villages DESC, district_name LIMIT 10",
    ),
    (
        "Households to re-assess in the welfare registry",
        "SELECT reason, count() AS households FROM dampak.registry_candidates "
        "GROUP BY reason ORDER BY reason",
    ),
    ("Dead letters", "SELECT topic, reason FROM dampak.dead_letters ORDER BY offset LIMIT 5"),
]

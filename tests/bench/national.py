"""Analyst queries at national scale (issue 32): build a national dataset, time the analysts' queries.

Method. Generating ten million reports through Kafka would take hours on two cores, so the bulk of
the data is written straight into the storage tables, as the rows the worker writes
(``sinks.tables`` declarations, ``streams.rows`` mapping): ``INSERT ... SELECT`` from ``numbers()``
in the embedded engine, shaped like the worker's rows (pseudonyms ``k1:<32 hex>``, versions
``revision << 40 | copy << 20 | household_seq``, a household's reports ordered by ``arrival``,
enrichment from the registry row). The data hold what makes the figures hard: households reported
more than once (the latest report counts), corrections at a higher revision, some moving the report
to another event, retractions, re-enrichments at a higher ``household_seq``, replayed rows (identical
rows written twice), untagged reports placed by coverage, aftershocks grouped into the big event's
incident, and village summaries. Alerts, their exposure and estimates are written the same way, and
the incidents grouped by the writer's own statements (``incident_refresh_statements``).

Timing. First in-process on the idle engine (``cold``: the engine's caches dropped before each run;
``warm``: right after), then while a real worker, started on the same data directory, takes 5,000
reports/s through Kafka (``--writes-per-s``), through the worker's ``/query`` as ``dampak query``
and the page do, and ``dampak report`` as a command. Each query runs ten times; p50 and p95.

    python -m tests.bench.national --households 1000000 --reports 2000000 --events 100 \
        --big-event-reports 400000

Writes docs/national-run.json and docs/national-run.md; ``make bench`` puts its table in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["QUERIES", "build", "main", "run_stamp"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
BIG = "nat-000"
DB = "dampak"

#: The analysts' queries of the issue: (name, SQL, parameters); each figure of the big event also
#: through its incident's scoped view (``<view>_of``, the big event is its incident's main event).
QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("event_summary", "SELECT * FROM dampak.event_summary ORDER BY event_time DESC", {}),
    *(
        (
            f"impact_{level}{of}",
            f"SELECT * FROM dampak.impact_{level}{call} WHERE event_id = {{event:String}} "
            "ORDER BY households_affected DESC LIMIT 1000",
            {"event": BIG},
        )
        for of, call in (("", ""), ("_of", "_of(incident = {event:String})"))
        for level in ("village", "district", "regency")
    ),
    *(
        (
            f"registry_candidates{of}",
            f"SELECT reason, village_code, count() AS households FROM dampak.registry_candidates{call} "
            "WHERE event_id = {event:String} GROUP BY reason, village_code "
            "ORDER BY households DESC LIMIT 1000",
            {"event": BIG},
        )
        for of, call in (("", ""), ("_of", "_of(incident = {event:String})"))
    ),
]

_V = "bench_gen.villages"


def _statements(households: int, reports: int, events: int, big: int, villages: int) -> list[str]:
    """The INSERT ... SELECT statements that write the dataset (``{db}`` the database)."""
    hpv = -(-households // villages)  # households per village, rounded up
    nv = villages
    href = "concat('k1:', lower(hex(MD5(concat('household_id:BH', toString({h}))))))"
    kref = "concat('k1:', lower(hex(MD5(concat('kk_number:KK', toString({h}))))))"
    # Event e: the big event covers 12,000 villages from the first; others 700 from their own start.
    t0 = "toDateTime64('2026-01-01 00:00:00', 3, 'UTC')"
    events_sql = (
        "CREATE TABLE IF NOT EXISTS bench_gen.events ENGINE = Memory AS SELECT toUInt32(number) AS e, "
        "concat('nat-', leftPad(toString(number), 3, '0')) AS event_id, "
        f"if(number = 0, {t0}, if(number <= 2, {t0} + toIntervalHour(number * 3), "
        f"{t0} + toIntervalDay(number * 3))) AS event_time, "
        f"toUInt64(if(number = 0, 0, (number * 863) % {nv})) AS vstart, "
        f"toUInt64(if(number = 0, 12000, 700)) AS vsize FROM numbers({events})"
    )
    out = [
        events_sql,
        # The registry: household h lives in village h mod V.
        f"INSERT INTO {{db}}.registry_state (household_ref, version, deleted, village_code, updated_at, "
        "members, desil, programs, kpm, elderly, disabled, under5, pregnant, lat, lon, nik_ref, kk_ref) "
        f"SELECT {href.format(h='number')}, 1, false, v.code, {t0} - toIntervalDay(30), 1 + number % 6, "
        "if(number % 23 = 0, NULL, toUInt8(1 + number % 10)), if(number % 3 = 0, ['PKH'], []), "
        "number % 3 = 0, number % 2, 0, number % 4 = 0, 0, NULL, NULL, "
        f"concat('k1:', lower(hex(MD5(concat('nik_head:N', toString(number)))))), {kref.format(h='number')} "
        f"FROM numbers({households}) AS n INNER JOIN {_V} AS v ON v.i = n.number % {nv}",
        # Alerts: one version each; events 1 and 2 are aftershocks of the big one (hours later).
        "INSERT INTO {db}.alerts_state (event_id, version, revision, hazard, issued_at, event_time, source, "
        "headline, lat, lon, magnitude, depth_km, pager_level, est_exposed_households, est_exposed_persons, "
        "est_deaths, est_displaced, received_at, payload_event_id, pager_fatality_level, "
        "pager_economic_level) "
        "SELECT ev.event_id, 1, 1, 'earthquake', ev.event_time, ev.event_time, 'bmkg', "
        "concat('Gempa ', ev.event_id), p.lat, p.lon, if(ev.e = 0, 7.2, if(ev.e <= 2, 5.1, 5.5)), 10, "
        "if(ev.e = 0, 'red', 'yellow'), ev.vsize * 60, ev.vsize * 240, ev.vsize / 10, ev.vsize * 5, "
        "ev.event_time, ev.event_id, 'orange', 'yellow' "
        f"FROM bench_gen.events AS ev INNER JOIN {_V} AS v ON v.i = ev.vstart "
        "INNER JOIN {db}.village_positions AS p ON p.code = v.code",
        "INSERT INTO {db}.alert_exposure_state (event_id, version, village_code, regency_code, mmi, "
        "mmi_predicted, exposed_households, exposed_persons, exposed_kpm_households, exposed_vulnerable, "
        "exposed_pregnant, est_displaced, est_deaths) "
        "SELECT ev.event_id, 1, v.code, substring(v.code, 1, 5), 5.5 + (k % 4), 5.5 + (k % 4), 60, 240, 20, "
        "30, 2, 5, 0.1 FROM bench_gen.events AS ev ARRAY JOIN range(ev.vsize) AS k "
        f"INNER JOIN {_V} AS v ON v.i = (ev.vstart + k) % {nv}",
        "INSERT INTO {db}.estimate_state (event_id, version, model, outcome, range_low, range_high, "
        "probability, central, label) SELECT event_id, 1, 'pager_fatality', 'deaths', lo, hi, p, 3, '' "
        "FROM bench_gen.events ARRAY JOIN [0., 1., 10.] AS lo, [1., 10., NULL] AS hi, [0.3, 0.5, 0.2] AS p",
    ]
    # Reports: n < big in the big event, the rest round the other events; every 20th untagged
    # (placed by coverage), every other one household-level.
    ev = f"if(number < {big}, 0, 1 + (number - {big}) % {events - 1})"
    base = (
        "SELECT number AS n, g.e AS e, ev.event_id AS event_id, ev.event_time AS event_time, "
        f"v.code AS village, number % 2 = 0 AS household, "
        f"toUInt64((ev.vstart + cityHash64(number, 1) % ev.vsize) % {nv}) AS vi, "
        f"vi + {nv} * (cityHash64(number, 2) % {hpv}) AS h0 "
        f"FROM (SELECT number, {ev} AS e FROM numbers({reports})) AS g "
        "INNER JOIN bench_gen.events AS ev ON ev.e = g.e "
        f"INNER JOIN {_V} AS v ON v.i = toUInt64((ev.vstart + cityHash64(number, 1) % ev.vsize) % {nv})"
    )
    # h0 may be past the registry's end: such a household is unregistered (as the worker enriches it).
    cols = (
        "report_id, revision, version, retracted, reported_event_id, reported_hazard, reported_at, "
        "reporter_id, reporter_role, province_code, regency_code, district_code, village_code, "
        "household_ref, "
        "houses_light, houses_moderate, houses_heavy, displaced, dead, injured, missing, needs, lat, lon, "
        "notes, registered, desil, programs, kpm, members, vulnerable_persons, kk_ref, ingested_at, arrival, "
        "injured_severe, affected_persons, affected_families, houses_submerged, facilities_education, "
        "facilities_health, facilities_worship, facilities_office, facilities_bridge, shelter_name, "
        "shelter_village_code, shelter_displaced, graduated"
    )

    def select(
        revision: str, copy: str, seq: str, retracted: str, event: str, displaced: str, where: str
    ) -> str:
        reg = f"h0 < {households}"
        return (
            f"INSERT INTO {{db}}.report_state ({cols}) SELECT concat('NR', toString(n)), {revision}, "
            f"bitOr(bitOr(bitShiftLeft(toUInt64({revision}), 40), "
            f"bitShiftLeft(toUInt64({copy}), 20)), {seq}), "
            f"{retracted}, {event}, '', event_time + toIntervalSecond(60 + n % 259200), "
            "concat('petugas-', toString(n % 5000)), ['tagana', 'tksk', 'pkh', 'psm'][1 + n % 4], "
            "substring(village, 1, 2), substring(village, 1, 5), substring(village, 1, 8), village, "
            f"if(household, {href.format(h='h0')}, ''), "
            "if(household, toUInt32(n % 7 = 1), 3), if(household, toUInt32(n % 7 = 2), 2), "
            f"if(household, toUInt32(n % 7 = 3), 1), {displaced}, toUInt32(n % 997 = 0), "
            "toUInt32(n % 101 = 0), toUInt32(n % 1999 = 0), [], NULL, NULL, '', "
            f"household AND {reg}, if(household AND {reg} AND h0 % 23 != 0, toUInt8(1 + h0 % 10), NULL), "
            f"if(household AND {reg} AND h0 % 3 = 0, ['PKH'], []), household AND {reg} AND h0 % 3 = 0, "
            f"if(household AND {reg}, toUInt16(1 + h0 % 6), 0), "
            f"if(household AND {reg}, toUInt16(h0 % 2 + (h0 % 4 = 0)), 0), "
            f"if(household AND {reg}, {kref.format(h='h0')}, ''), now64(3), n, toUInt32(n % 1013 = 0), "
            "if(household, toUInt32(1 + n % 5), 40), if(household, 0, 10), 0, "
            "toUInt32(NOT household AND n % 9 = 0), "
            "0, toUInt32(NOT household AND n % 11 = 0), 0, 0, '', '', 0, false "
            f"FROM ({base}) WHERE {where}"
        )

    disp = "toUInt32(if(household, n % 5, 10 + n % 40))"
    untagged = "if(n % 20 = 7, '', event_id)"
    other = f"concat('nat-', leftPad(toString(1 + (e + 4) % {events - 1}), 3, '0'))"
    out += [
        # Every report's first copy.
        select("1", "1", "1", "false", untagged, disp, "1"),
        # A replay: every 100th row written again, identical.
        select("1", "1", "1", "false", untagged, disp, "n % 100 = 1"),
        # A registry change re-enriches every 97th household report (household_seq 2).
        select("1", "1", "2", "false", untagged, disp, "household AND n % 97 = 5"),
        # Corrections at revision 2: other figures (every 50th), a retraction (every 200th), a
        # move to another event (every 500th), which retracts its row under the event it left
        # (a row is one report under one event).
        select("2", "2", "1", "false", untagged, "toUInt32(n % 5 + 7)", "n % 50 = 3 AND n % 200 != 3"),
        select("2", "2", "1", "true", untagged, disp, "n % 200 = 3"),
        select("3", "3", "1", "false", other, disp, "n % 500 = 13"),
        select("3", "3", "0", "true", untagged, disp, "n % 500 = 13"),
    ]
    return out


def _client(data_dir: Path) -> Any:
    from sinks.config import ClickHouseSettings, ClickHouseTarget
    from sinks.connection import connect

    return connect(ClickHouseTarget.of(ClickHouseSettings(), data_dir))


def build(data_dir: Path, households: int, reports: int, events: int, big: int) -> dict[str, Any]:
    """Write the dataset into the embedded engine under ``data_dir``; returns what was written."""
    from schemas.regions import villages
    from sinks.migrations import init_db
    from sinks.views import incident_refresh_statements

    client = _client(data_dir)
    started = time.perf_counter()
    init_db(client, DB)
    client.command("CREATE DATABASE IF NOT EXISTS bench_gen")
    client.command(f"CREATE TABLE IF NOT EXISTS {_V} (i UInt64, code String) ENGINE = Memory")
    codes = villages()
    client.insert(_V, [list(range(len(codes))), codes], column_names=["i", "code"], column_oriented=True)
    timings = {}
    for sql in _statements(households, reports, events, big, len(codes)):
        t = time.perf_counter()
        client.command(sql.format(db=DB), settings={"max_memory_usage": 8 << 30})
        timings[sql[:60]] = round(time.perf_counter() - t, 1)
        logger.info("%.1fs %s", timings[sql[:60]], sql[:90])
    for sql in incident_refresh_statements(DB):
        client.command(sql)
    client.command("DROP DATABASE bench_gen")
    rows = client.query(f"SELECT count() FROM {DB}.report_state").result_rows[0][0]
    # What a report row costs on disk (compressed, the active parts right after the load): the
    # sizing's bytes per report (docs/scaling.md), from generated rows (empty notes).
    on_disk = client.query(
        "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts "
        "WHERE database = {db:String} AND table = 'report_state' AND active",
        parameters={"db": DB},
    ).result_rows[0]
    client.close()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "report_rows": rows,
        "report_bytes_per_row": round(on_disk[0] / max(on_disk[1], 1), 1),
        "steps": timings,
    }


def _quantiles(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    return {
        "p50": round(statistics.median(s), 3),
        "p95": round(s[min(len(s) - 1, int(0.95 * len(s) + 0.5) - 1)], 3),
        "max": round(s[-1], 3),
        "runs": len(s),
    }


def _timed(
    call: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> dict[str, float]:
    times = []
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return _quantiles(times)


def idle(data_dir: Path, runs: int) -> dict[str, Any]:
    """Each query in-process on the idle engine, cold (caches dropped before each run) and warm."""
    from sinks.center import figures

    client = _client(data_dir)

    def drop() -> None:
        for cache in ("MARK CACHE", "UNCOMPRESSED CACHE", "QUERY CONDITION CACHE", "PRIMARY INDEX CACHE"):
            with contextlib.suppress(Exception):  # a cache this engine has not
                client.command(f"SYSTEM DROP {cache}")

    def ask(sql: str, params: Any) -> tuple[list[str], list[Any]]:
        r = client.query(sql, parameters=dict(params) or None)
        return list(r.column_names), list(r.result_rows)

    out: dict[str, Any] = {}
    calls: dict[str, Callable[[], object]] = {
        name: (lambda s=sql, p=params: ask(s, p)) for name, sql, params in QUERIES
    }
    calls["data.json"] = lambda: figures(ask, BIG)
    for name, call in calls.items():
        out[name] = {"cold": _timed(call, runs, drop), "warm": _timed(call, runs)}
        logger.info("idle %s %s", name, out[name])
    client.close()
    return out


def _post(port: int, sql: str, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
    body = json.dumps({"sql": sql, "parameters": params, "scope": "analyst"}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/query", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"/query answered {exc.code}: {exc.read().decode(errors='replace')}") from exc
    return answer["columns"], answer["rows"]


def _page_data(port: int, event_id: str) -> dict[str, Any]:
    """The page's ``data.json`` for ``event_id``, fetched as the operator's browser does."""
    url = f"http://127.0.0.1:{port}/pusat/data.json?event={urllib.parse.quote(event_id)}"
    with urllib.request.urlopen(url, timeout=300) as r:
        data: dict[str, Any] = json.loads(r.read())
    return data


#: Command-center screens that ask for the big event's figures at the same moment.
PAGES_AT_ONCE = 10


def _pages_at_once(port: int, pages: int) -> dict[str, Any]:
    """``pages`` pages asking for the big event's ``data.json`` at once: the seconds until the
    last is answered, and how many reads answered them (distinct ``as_of``)."""
    from concurrent.futures import ThreadPoolExecutor

    t = time.perf_counter()
    with ThreadPoolExecutor(pages) as pool:
        answers = list(pool.map(lambda _: _page_data(port, BIG), range(pages)))
    return {
        "pages": pages,
        "seconds": round(time.perf_counter() - t, 3),
        "reads": len({a["as_of"] for a in answers}),
    }


def _writes(settings: Any, topic: str, rate: int, stop: threading.Event, sent: list[int]) -> None:
    """Offer ``rate`` reports/s of the big event (half household-level) until ``stop``."""
    from streams.ops.admin import producer

    prod = producer(settings)
    t0, n = time.perf_counter(), 0
    while not stop.is_set():
        due = int((time.perf_counter() - t0) * rate)
        while n < due:
            rid = f"LIVE-{n:09d}"
            doc: dict[str, Any] = {
                "report_id": rid,
                "event_id": BIG,
                "village_code": "11.01.01.2001",
                "reported_at": "2026-01-01T06:00:00Z",
                "displaced": n % 5,
            }
            if n % 2 == 0:
                doc |= {"household_id": f"LIVE-H{n % 100000}", "houses_heavy": 1}
            prod.send(topic, key=rid.encode(), value=json.dumps(doc).encode())
            n += 1
        prod.flush()
        time.sleep(0.05)
    prod.close()
    sent.append(n)


def loaded(data_dir: Path, runs: int, rate: int, port: int = 6391) -> dict[str, Any]:
    """Each query through a worker on ``data_dir`` while it takes ``rate`` reports/s."""
    from streams.ops.center import REFRESH_S
    from streams.runtime.worker import wait_until_ready
    from streams.settings import Settings

    tag = f"nat{int(time.time())}"
    env = {
        **os.environ,
        "DAMPAK_APP_ID": tag,
        "DAMPAK_KAFKA__TOPIC_PREFIX": f"{tag}-",
        "DAMPAK_DATA_DIR": str(data_dir),
        "DAMPAK_WEB__PORT": str(port),
        "DAMPAK_LOG_LEVEL": "warning",
        "DAMPAK_CLICKHOUSE__QUERY_TIMEOUT_S": "300",
        "DAMPAK_DEV_MODE": "true",
    }
    log = open(data_dir / "worker.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "worker"], env=env, stdout=log, stderr=log, cwd=ROOT
    )
    out: dict[str, Any] = {"offered_per_s": rate}
    stop, sent = threading.Event(), []
    try:
        out["worker_ready_s"] = round(wait_until_ready(f"http://127.0.0.1:{port}", proc, 1800), 1)
        settings = Settings(kafka={"topic_prefix": f"{tag}-"})
        writer = threading.Thread(
            target=_writes, args=(settings, f"{tag}-field-reports", rate, stop, sent), daemon=True
        )
        writer.start()
        time.sleep(10)
        calls: dict[str, Callable[[], object]] = {
            name: (lambda s=sql, p=params: _post(port, s, p)) for name, sql, params in QUERIES
        }
        calls["data.json"] = lambda: _page_data(port, BIG)
        report = [
            "dampak report",
            [str(ROOT / ".venv" / "bin" / "dampak"), "report", BIG, "--out", str(data_dir / "report.html")],
        ]
        calls[str(report[0])] = lambda: subprocess.run(report[1], env=env, check=True, capture_output=True)
        # The worker gives a page's answer to every page asking for REFRESH_S after it
        # (``SharedFigures``): each timed data.json waits that long first, so each is a read.
        fresh = {"data.json": lambda: time.sleep(REFRESH_S)}
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            first = round(time.perf_counter() - t, 3)
            out[name] = {"first": first, **_timed(call, runs, fresh.get(name))}
            logger.info("loaded %s %s", name, out[name])
        time.sleep(REFRESH_S)
        out["pages_at_once"] = _pages_at_once(port, PAGES_AT_ONCE)
        logger.info("loaded pages at once %s", out["pages_at_once"])
        stop.set()
        writer.join()
        out["reports_sent"] = sent[0]
        out["reports_stored"] = _post(
            port, "SELECT count() FROM dampak.field_reports WHERE report_id LIKE 'LIVE-%'", {}
        )[1][0][0]
    finally:
        stop.set()
        proc.terminate()
        proc.wait(120)
    return out


def write_md(r: dict[str, Any], path: Path) -> None:
    path.write_text("\n".join(["# Analyst queries at national scale", "", *table_lines(r)]) + "\n")


def table_lines(r: dict[str, Any]) -> list[str]:
    """The run ``r`` as markdown: its command, dataset and one row per query beside the target."""
    a = r["args"]
    lines = [
        f"`python -m tests.bench.national --households {a['households']} --reports {a['reports']} "
        f"--events {a['events']} --big-event-reports {a['big_event_reports']} --writes-per-s "
        f"{a['writes_per_s']}` on {r['commit']}, {r['started']} ({r['machine']}). Method: the harness's "
        "docstring (`tests/bench/national.py`). Seconds; target p95 <= 1 s.",
        "",
        f"Dataset: {r['build']['report_rows']:,} report rows written in {r['build']['seconds']} s"
        + (
            f"; {r['build']['report_bytes_per_row']} bytes per report row on disk (compressed)."
            if "report_bytes_per_row" in r["build"]
            else "."
        ),
        "",
        "| query | idle cold p50 | idle cold p95 | idle warm p50 | idle warm p95 | loaded first "
        "| loaded p50 | loaded p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = list(
        dict.fromkeys(
            [
                *r.get("idle", {}),
                # The timed queries (pages_at_once is a figure of its own, below the table).
                *[k for k, v in r.get("loaded", {}).items() if isinstance(v, dict) and "p50" in v],
            ]
        )
    )
    for name in names:
        i, lo = r.get("idle", {}).get(name, {}), r.get("loaded", {}).get(name, {})
        cells = [
            i.get("cold", {}).get("p50"),
            i.get("cold", {}).get("p95"),
            i.get("warm", {}).get("p50"),
            i.get("warm", {}).get("p95"),
            lo.get("first"),
            lo.get("p50"),
            lo.get("p95"),
        ]
        lines.append(f"| {name} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    if "loaded" in r:
        lo = r["loaded"]
        lines += [
            "",
            f"While loaded: {lo.get('reports_sent', 0):,} reports offered at {lo['offered_per_s']:,}/s, "
            f"{lo.get('reports_stored', 0):,} stored by the end.",
        ]
        if "pages_at_once" in lo:
            pa = lo["pages_at_once"]
            lines += [
                "",
                f"{pa['pages']} pages asking for the big event's `data.json` at once, while loaded: "
                f"the last answered after {pa['seconds']:.1f} s, by {pa['reads']} read(s).",
            ]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--households", type=int, default=1_000_000)
    p.add_argument("--reports", type=int, default=2_000_000)
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--big-event-reports", type=int, default=400_000)
    p.add_argument("--writes-per-s", type=int, default=5000)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--data-dir", type=Path, default=Path("/work/tmp/national"))
    p.add_argument("--reuse", action="store_true", help="time an existing dataset in --data-dir")
    p.add_argument("--skip-loaded", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "national-run.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    r: dict[str, Any] = {
        "args": {
            "households": args.households,
            "reports": args.reports,
            "events": args.events,
            "big_event_reports": args.big_event_reports,
            "writes_per_s": args.writes_per_s,
        },
        **run_stamp(),
    }
    if not args.reuse:
        shutil.rmtree(args.data_dir, ignore_errors=True)
        args.data_dir.mkdir(parents=True)
        r["build"] = build(args.data_dir, args.households, args.reports, args.events, args.big_event_reports)
    else:
        c = _client(args.data_dir)
        r["build"] = {
            "report_rows": c.query(f"SELECT count() FROM {DB}.report_state").result_rows[0][0],
            "seconds": 0,
        }
        c.close()
    r["idle"] = idle(args.data_dir, args.runs)
    if not args.skip_loaded:
        r["loaded"] = loaded(args.data_dir, args.runs, args.writes_per_s)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    write_md(r, args.out.with_suffix(".md"))
    if not args.keep:
        shutil.rmtree(args.data_dir, ignore_errors=True)


def run_stamp() -> dict[str, str]:
    """What a run of record names: the commit measured, when the run began, and the machine."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {
        "commit": commit.stdout.strip() + (" (with uncommitted changes)" if _dirty() else ""),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} cores",
    }


def _dirty() -> bool:
    return bool(
        subprocess.run(
            ["git", "status", "--porcelain", "sinks"], capture_output=True, text=True, cwd=ROOT
        ).stdout
    )


if __name__ == "__main__":
    main()

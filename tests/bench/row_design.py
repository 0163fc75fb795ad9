"""Prototype of the storage that analyst queries need at national scale (issue 32), timed.

The question it answers: can an event's figures be read in under a second when the store holds
10,000,000 household rows, one event 2,000,000 of them, and a household counts once per incident
from its latest report? Today's views (``sinks/views.py``) regroup every report per household at
each read (docs/national-queries.md); this prototype times the alternative before it is built.

The prototype table holds one row per (event, household): the household's latest report under
that event, as the worker's household hop would write it (it keeps every household's current
reports), and ``others``, the household's current reports under other events as (event, reported
at, arrival). A row then decides alone whether it counts in its incident: it does unless one of
``others`` is in the same incident and later. No per-household grouping at read time, so a
filter on ``event_id`` reaches the sort key ``(event_id, household_ref)``. The incident of an event
is looked up in a small table (as ``event_incident``), through arrays read once per query.

Data: ``--rows`` rows over ``--events`` events, ``--big`` of them in event ``E000``, whose incident
also holds ``E001``..``E003`` (aftershocks); every household has two rows, under two events, and
each row names the other in ``others`` (the worst case for the filter). Then ``--parts`` inserts of
0.5 % of the rows at a higher version, as writes in progress leave the table (parts not merged).

Each query is timed ``--runs`` times with the table merged to one part, then with the parts:

- ``event``: ``impact_village``'s shape for the big event (``WHERE event_id = 'E000'``);
- ``incident``: the same for its incident (``WHERE incident_id = 'E000'``);
- ``small event``: one of the 99 others;
- ``all events``: every event's totals (``event_summary``'s shape);
- ``regroup``: today's shape for the big incident: the latest report per household by
  ``argMax``, over the same rows (what the rows' ``others`` replace).

    python -m tests.bench.row_design [--rows 10000000] [--big 2000000] [--events 100] [--runs 10]

Writes docs/row-design.json and docs/row-design.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from tests.bench.national import ROOT, _client, run_stamp

__all__ = ["main"]

DB = "proto"

# Row n belongs to household n % (rows / 2); its other row is (n + rows / 2) % rows.
_EVENT = "if({n} < {big}, 'E000', concat('E', leftPad(toString(1 + {n} % {small}), 3, '0')))"
_AT = "toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond({n} % 864000)"

_VIEW = """
CREATE OR REPLACE VIEW {db}.impact_village AS
SELECT i.incident_id AS incident_id, h.event_id AS event_id, h.village_code AS village_code,
       count() AS households, sum(h.displaced) AS displaced, sum(h.dead) AS dead,
       sum(h.houses_heavy) AS houses_heavy, countIf(h.kpm) AS kpm_households
FROM (SELECT * FROM {db}.rows FINAL WHERE NOT removed) AS h
INNER JOIN (SELECT event_id, incident_id FROM {db}.incident_of) AS i ON i.event_id = h.event_id
WHERE NOT arrayExists(
    o -> transform(o.1, (SELECT groupArray(event_id) FROM {db}.incident_of),
                   (SELECT groupArray(incident_id) FROM {db}.incident_of), o.1) = i.incident_id
         AND (o.2, o.3) > (h.reported_at, h.arrival),
    h.others)
GROUP BY incident_id, event_id, village_code
"""

QUERIES = {
    "event": "SELECT sum(households), sum(displaced) FROM {db}.impact_village WHERE event_id = 'E000'",
    "incident": "SELECT sum(households), sum(displaced) FROM {db}.impact_village WHERE incident_id = 'E000'",
    "small event": "SELECT sum(households), sum(displaced) FROM {db}.impact_village WHERE event_id = 'E050'",
    "all events": (
        "SELECT event_id, sum(households), sum(displaced) FROM {db}.impact_village GROUP BY event_id"
    ),
    "regroup": """
SELECT count(), sum(l.2) FROM (
    SELECT household_ref, argMax(tuple(village_code, displaced, dead, houses_heavy, kpm),
                                 (reported_at, arrival)) AS l
    FROM {db}.rows FINAL
    WHERE NOT removed AND event_id IN (SELECT event_id FROM {db}.incident_of WHERE incident_id = 'E000')
    GROUP BY household_ref)""",
}


def build(client: Any, rows: int, big: int, events: int, partitions: int) -> float:
    """Write the rows and the incidents; returns the seconds it took."""
    start = time.perf_counter()
    half, small = rows // 2, events - 1
    other = f"(n + {half}) % {rows}"
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    client.command(f"CREATE DATABASE {DB}")
    partition = f"PARTITION BY cityHash64(event_id) % {partitions} " if partitions > 1 else ""
    client.command(f"""
CREATE TABLE {DB}.rows (
    event_id String, household_ref String, version UInt64, removed Bool,
    reported_at DateTime64(3, 'UTC'), arrival UInt64,
    regency_code LowCardinality(String), village_code LowCardinality(String),
    houses_heavy UInt32, displaced UInt32, dead UInt32, kpm Bool,
    others Array(Tuple(String, DateTime64(3, 'UTC'), UInt64))
) ENGINE = ReplacingMergeTree(version) {partition}ORDER BY (event_id, household_ref)""")
    client.command(f"""
INSERT INTO {DB}.rows SELECT
    {_EVENT.format(n="n", big=big, small=small)}, concat('k1:', hex(cityHash64(n % {half}))), 1, false,
    {_AT.format(n="n")}, n,
    concat('32', leftPad(toString(n % 27), 2, '0')),
    concat('32', leftPad(toString(n % 27), 2, '0'), '0', leftPad(toString(n % 30), 2, '0'),
           leftPad(toString(n % 13), 4, '0')),
    n % 7 = 0, 1 + n % 6, 0, n % 4 = 0,
    [({_EVENT.format(n=other, big=big, small=small)}, {_AT.format(n=other)}, toUInt64({other}))]
FROM (SELECT number AS n FROM numbers({rows}))""")
    client.command(f"CREATE TABLE {DB}.incident_of (event_id String, incident_id String) ENGINE = Memory")
    client.command(f"""
INSERT INTO {DB}.incident_of SELECT concat('E', leftPad(toString(number), 3, '0')),
    if(number <= 3, 'E000', concat('E', leftPad(toString(number), 3, '0'))) FROM numbers({events})""")
    settings = "\nSETTINGS do_not_merge_across_partitions_select_final = 1" if partitions > 1 else ""
    client.command(_VIEW.format(db=DB) + settings)
    return time.perf_counter() - start


def write_parts(client: Any, parts: int) -> None:
    """``parts`` inserts of 0.5 % of the rows each, at a higher version (left unmerged)."""
    for k in range(parts):
        client.command(
            f"INSERT INTO {DB}.rows SELECT * REPLACE (version + {k + 1} AS version, "
            "displaced + 1 AS displaced) "
            f"FROM {DB}.rows FINAL WHERE cityHash64(arrival, {k}) % 200 = 0"
        )


def timed(client: Any, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sql in QUERIES.items():
        seconds, result = [], None
        for _ in range(runs):
            start = time.perf_counter()
            result = client.query(sql.format(db=DB)).result_rows
            seconds.append(time.perf_counter() - start)
        seconds.sort()
        out[name] = {
            "p50": round(statistics.median(seconds), 3),
            "p95": round(seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))], 3),
            "rows": len(result or []),
        }
    out["parts"] = client.query(
        "SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'rows' AND active",
        parameters={"db": DB},
    ).result_rows[0][0]
    return out


def check(client: Any) -> dict[str, int]:
    """The rows' own rule and the regrouping count the same households for the big incident."""
    by_rows = client.query(
        f"SELECT sum(households), sum(displaced) FROM {DB}.impact_village WHERE incident_id = 'E000'"
    ).result_rows[0]
    by_regroup = client.query(QUERIES["regroup"].format(db=DB)).result_rows[0]
    assert tuple(by_rows) == tuple(by_regroup), (by_rows, by_regroup)
    return {"households": int(by_rows[0]), "displaced": int(by_rows[1])}


def write_md(r: dict[str, Any], path: Path) -> None:
    a = r["args"]
    partitions = f" --partitions {n}" if (n := a.get("partitions", 1)) > 1 else ""
    lines = [
        "# Rows that decide alone whether they count: a prototype, timed",
        "",
        f"`python -m tests.bench.row_design --rows {a['rows']} --big {a['big']} --events {a['events']} "
        f"--runs {a['runs']}{partitions}`, {r['started']}, on {r['commit']}, {r['machine']}. Method in the "
        "module's docstring; the design it tests in docs/national-queries.md, *The next step*.",
        "",
        f"{a['rows']:,} rows over {a['events']} events, {a['big']:,} in the big event; built in "
        f"{r['build_s']:.0f} s. The rows' rule and today's regrouping agree on the big incident: "
        f"{r['check']['households']:,} households, {r['check']['displaced']:,} displaced.",
        "",
        f"| query | merged: p50 / p95 | {r['with_parts']['parts']} parts: p50 / p95 |",
        "|---|---:|---:|",
    ]
    for name in QUERIES:
        m, p = r["merged"][name], r["with_parts"][name]
        lines.append(f"| {name} | {m['p50']:.2f} / {m['p95']:.2f} | {p['p50']:.2f} / {p['p95']:.2f} |")
    lines += ["", "Seconds, in-process on the embedded engine, idle. Target: p95 ≤ 1 s per query."]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--big", type=int, default=2_000_000)
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--parts", type=int, default=10)
    p.add_argument(
        "--partitions", type=int, default=1,
        help="partition the rows by a hash of event_id, and FINAL within partitions",
    )  # fmt: skip
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/dampak-row-design"))
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "row-design.json")
    args = p.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    client = _client(args.data_dir)
    r: dict[str, Any] = {
        "args": {
            "rows": args.rows,
            "big": args.big,
            "events": args.events,
            "runs": args.runs,
            "partitions": args.partitions,
        },
        **run_stamp(),
    }
    try:
        r["build_s"] = build(client, args.rows, args.big, args.events, args.partitions)
        client.command(f"OPTIMIZE TABLE {DB}.rows FINAL")
        r["check"] = check(client)
        r["merged"] = timed(client, args.runs)
        write_parts(client, args.parts)
        r["with_parts"] = timed(client, args.runs)
    finally:
        client.close()
        shutil.rmtree(args.data_dir, ignore_errors=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    write_md(r, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()

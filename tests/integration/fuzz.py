"""The integration fuzz: hostile messages interleaved with an acceptance scenario, through a real
worker on the real broker and chDB. The figures must come out exact, every hostile message must
be dead-lettered once with a reason, lag must drain to 0, and the worker must never restart.

    python -m tests.integration.fuzz --bad 100000 --households 20000 --reports 100000   (make fuzz)

then runs the structural attacks (tests/integration/structural.py: depth, sizes, counts,
encodings, numbers, Kafka timestamps) ``--structural-rounds`` times on the same worker, and writes
both tables to docs/reliability.md; the CI test (test_fuzz.py) runs smaller ones.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.integration.harness import ROOT, Deployment
from tests.integration.hostile import hostile_messages
from tests.integration.scenario import expected_impact_village, generate
from tests.integration.structural import DEPTHS, RSS_LIMIT_MB, Outcome, run_structural
from tests.reliability import write_section

FIGURES = (
    "event_id, village_code, reports, households_affected, houses_light, houses_moderate, houses_heavy, "
    "displaced, dead, injured, missing, kpm_households_affected, vulnerable_persons_affected, "
    "unregistered_households_affected"
)
INPUTS = ("households", "field-reports", "disaster-alerts", "incident-links")


def run_fuzz(
    dep: Deployment, n_bad: int, n_households: int, n_reports: int, seed: int = 31
) -> dict[str, Any]:
    """Run one fuzz on ``dep`` (its worker not started yet); returns the figures."""
    sc = generate(seed=seed, n_households=n_households, n_reports=n_reports)
    good = sc.interleaved(random.Random(seed))
    bad = hostile_messages(n_bad, seed=seed, tag=f"F{seed}-")
    rng = random.Random(seed + 1)
    mixed: list[Any] = []
    for message in good:  # the bad ones spread evenly through the good ones
        mixed.append(message)
        while bad and rng.random() < n_bad / max(1, len(good)):
            mixed.append(bad.pop())
    mixed += bad
    started = time.monotonic()
    dep.start_worker()
    pid = dep.worker.pid if dep.worker else -1
    dep.produce(mixed)
    expected = expected_impact_village(sc)
    sql = f"SELECT {FIGURES} FROM dampak.impact_village ORDER BY event_id, village_code"
    deadline = time.monotonic() + 600
    rows: Any = None
    while time.monotonic() < deadline:
        rows = dep.query(sql)
        if rows == expected:
            break
        time.sleep(1)
    # The figures can be exact before the last hostile messages are handled: their dead letters
    # are counted once every group has caught up.
    lag = _drained_lag(dep)
    seconds = round(time.monotonic() - started, 1)
    letters = dep.query(
        "SELECT count() AS n, uniqExact(topic, partition, offset) AS distinct_offsets, "
        "countIf(reason = '') AS no_reason FROM dampak.dead_letters WHERE topic IN {t:Array(String)}",
        t=[dep.topic(t) for t in INPUTS],
    )[0]
    # The harness starts a worker only when asked: the same process still running means it never
    # stopped or restarted.
    restarted = dep.worker is None or dep.worker.poll() is not None or dep.worker.pid != pid
    current = dep.query("SELECT count() AS rows, uniqExact(report_id) AS reports FROM dampak.field_reports")[
        0
    ]
    want_reports = sum(1 for r in sc.final_reports.values() if not r.get("retracted"))
    exact = rows == expected
    return {
        "messages": len(mixed),
        "valid_messages": len(good),
        "hostile_messages": n_bad,
        "dead_lettered": int(letters["distinct_offsets"]),
        "dead_letters_without_reason": int(letters["no_reason"]),
        "lost": max(0, n_bad - int(letters["distinct_offsets"]))
        + max(0, want_reports - int(current["reports"])),
        "double_counted": int(letters["n"])
        - int(letters["distinct_offsets"])
        + int(current["rows"])
        - int(current["reports"])
        + max(0, int(current["reports"]) - want_reports),
        "impact_exact": exact,
        "impact_rows": len(expected),
        "lag_after": lag,
        "worker_restarted": restarted,
        "seconds": seconds,
    }


def _drained_lag(dep: Deployment, timeout_s: float = 120) -> int:
    """The groups' total lag on every topic they consume, once it reaches 0 (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    total = -1
    while time.monotonic() < deadline:
        total = dep.lag()[1]
        if total == 0:
            break
        time.sleep(2)
    return total


def write_reliability(result: dict[str, Any], command: str, path: Path) -> None:
    """Replace the fuzz section of docs/reliability.md with ``result``."""
    write_section(path, "fuzz", [
        "## Fuzz: hostile messages among an acceptance scenario",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, {result['seconds']} s).",
        "",
        "| messages tried | hostile | valid | dead-lettered | lost | double-counted | impact exact | "
        "lag after | worker restarted |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---|",
        f"| {result['messages']:,} | {result['hostile_messages']:,} | {result['valid_messages']:,} | "
        f"{result['dead_lettered']:,} | {result['lost']} | {result['double_counted']} | "
        f"{'yes' if result['impact_exact'] else 'NO'} ({result['impact_rows']:,} village rows) | "
        f"{result['lag_after']} | {'YES' if result['worker_restarted'] else 'no'} |",
        "",
        "Lost: hostile messages without a dead letter, plus current reports missing from `field_reports`. "
        "Double-counted: dead letters beyond one per message, plus report rows beyond one per report.",
    ])  # fmt: skip


def write_structural(result: Outcome, rounds: int, command: str, path: Path) -> None:
    """Replace the structural fuzz section of docs/reliability.md with ``result``."""
    failed = [f"- {name}: {why}" for name, why in sorted(result.failures.items())]
    write_section(path, "structural-fuzz", [
        "## Structural fuzz: hostile shapes on every input topic",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, {result.seconds} s, {rounds} rounds).",
        "",
        "Each attack on `households`, `field-reports` and `disaster-alerts` is followed on its partition",
        "by a valid message (tests/integration/structural.py): nesting depth "
        f"{', '.join(f'{d:,}' for d in DEPTHS)} (bare, unclosed,",
        "inside a field, CAP XML); sizes up to the broker's `message.max.bytes` (1,048,588) and past it;",
        "counts (12,000 areas per alert, 3,000 `<info>` per CAP document, 100,000 needs, implausible",
        "household members); encodings (UTF-16, Latin-1, invalid UTF-8, NUL, U+202E, lone surrogates);",
        "NaN, Infinity, 5,000-digit numbers; Kafka timestamps in 1800, hours ahead, in year 10000 and at",
        "the int64 maximum. Shapes the contracts accept however odd (1 MB with an unknown field, 60,000",
        "unknown keys, 100,000 duplicate programs) count as valid and must land. Peak RSS is the",
        f"VmHWM of the worker that took them (a fresh one); its documented limit is {RSS_LIMIT_MB:,} MB.",
        "",
        "| messages | hostile | dead-lettered | refused by producer or broker | valid landed | lost | "
        "restarts | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.messages:,} | {result.hostile:,} | {result.dead_lettered:,} | {result.refused:,} | "
        f"{result.valid_landed:,} of {result.valid:,} | {result.lost} | {result.restarts} | "
        f"{result.peak_rss_mb:,.0f} MB (limit {RSS_LIMIT_MB:,}) |",
        "",
        "Refused: by the broker (`MessageSizeTooLargeError`, `InvalidTimestampError`), with its reason. "
        "Lost: valid messages that did not land, plus hostile ones neither dead-lettered nor refused.",
        "",
        *(["Attacks that broke the invariant:", "", *failed] if failed else ["Every attack kept it."]),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bad", type=int, default=100_000)
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--structural-rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dampak-fuzz-"))
    dep = Deployment(uuid.uuid4().hex[:10], tmp / "data", 16_090)
    # The structural attacks run on a worker of their own, so that its peak RSS is what they
    # cost, not the value fuzz's 240,000 messages before them.
    fresh = Deployment(uuid.uuid4().hex[:10], tmp / "structural", 16_091)
    try:
        result = run_fuzz(dep, args.bad, args.households, args.reports)
        dep.stop_worker()
        fresh.start_worker()
        structural = run_structural(fresh, rounds=args.structural_rounds, timeout_s=600)
    finally:
        for d in (dep, fresh):
            if d.worker is not None and d.worker.poll() is None:
                d.stop_worker()
    print(json.dumps({**result, "structural": vars(structural)}, indent=2))
    flags = f"--bad {args.bad} --households {args.households} --reports {args.reports}"
    command = (
        f"make fuzz  (python -m tests.integration.fuzz {flags} --structural-rounds {args.structural_rounds})"
    )
    write_reliability(result, command, ROOT / "docs" / "reliability.md")
    write_structural(structural, args.structural_rounds, command, ROOT / "docs" / "reliability.md")
    shutil.rmtree(tmp, ignore_errors=True)
    ok = result["impact_exact"] and not result["lost"] and not result["double_counted"]
    ok = ok and not result["worker_restarted"] and result["lag_after"] == 0 and structural.ok()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()

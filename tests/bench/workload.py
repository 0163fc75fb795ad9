"""Benchmark workload: households and field reports following the topic contracts, as raw bytes,
with the totals that ``impact_village`` must reach once everything is processed (a household
reported more than once counts once, from its latest report)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.regions import villages as all_villages

Message = tuple[bytes, bytes]  # key, value


@dataclass
class Workload:
    households: list[Message] = field(default_factory=list)
    reports: list[Message] = field(default_factory=list)
    expected_reports: int = 0
    expected_displaced: int = 0


def villages(n: int) -> list[str]:
    """``n`` real village codes (all of them, at most 83,762), spread over the country."""
    codes = all_villages()
    step = max(1, len(codes) // n)
    return codes[::step][:n]


def generate(n_households: int, n_reports: int, n_villages: int = 83_762, seed: int = 1) -> Workload:
    rng = random.Random(seed)
    codes = villages(n_villages)
    n_villages = len(codes)
    w = Workload()
    for i in range(n_households):
        hid = f"BH{i:08d}"
        doc = {
            "household_id": hid,
            "village_code": codes[i % n_villages],
            "updated_at": "2022-11-01T00:00:00Z",
            "members": 1 + i % 6,
            "desil": 1 + i % 10,
            "programs": ["PKH"] if i % 3 == 0 else [],
            "elderly": i % 2,
            "lat": round(-6.9 + rng.uniform(-1, 1), 4),
            "lon": round(107.0 + rng.uniform(-1, 1), 4),
        }
        w.households.append((hid.encode(), json.dumps(doc, separators=(",", ":")).encode()))
    base = datetime(2022, 11, 21, 8, tzinfo=UTC)
    latest: dict[str, int] = {}  # household -> displaced of its latest report
    for i in range(n_reports):
        rid = f"BR{i:09d}"
        displaced = i % 5
        doc: dict[str, object] = {
            "report_id": rid,
            "event_id": "bench-event",
            # Distinct per report: a household reported twice counts once, from its later report.
            "reported_at": (base + timedelta(seconds=i)).isoformat(),
            "reporter_role": "tagana",
            "village_code": codes[(i * 7) % n_villages],
            "displaced": displaced,
        }
        if i % 2 == 0 and n_households:
            doc["household_id"] = f"BH{(i * 13) % n_households:08d}"
            doc["houses_heavy"] = 1
            latest[str(doc["household_id"])] = displaced
        else:
            w.expected_displaced += displaced
        w.reports.append((rid.encode(), json.dumps(doc, separators=(",", ":")).encode()))
    w.expected_displaced += sum(latest.values())
    w.expected_reports = n_reports
    return w

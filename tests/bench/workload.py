"""Benchmark workload: households and field reports following the topic contracts, as raw bytes,
with the totals that ``impact_village`` must reach once everything is processed."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

Message = tuple[bytes, bytes]  # key, value


@dataclass
class Workload:
    households: list[Message] = field(default_factory=list)
    reports: list[Message] = field(default_factory=list)
    expected_reports: int = 0
    expected_displaced: int = 0


def villages(n: int) -> list[str]:
    """``n`` syntactically valid village codes spread over provinces, regencies and districts."""
    out = []
    for i in range(n):
        province = 11 + i % 25
        regency = 1 + (i // 25) % 20
        district = 1 + (i // 500) % 40
        out.append(
            f"{province:02d}.{regency:02d}.{district:02d}.{2001 + (i // 20_000) * 1000 % 998 + i % 997}"
        )
    return out


def generate(n_households: int, n_reports: int, n_villages: int = 84_000, seed: int = 1) -> Workload:
    rng = random.Random(seed)
    codes = villages(n_villages)
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
    for i in range(n_reports):
        rid = f"BR{i:09d}"
        displaced = i % 5
        doc: dict[str, object] = {
            "report_id": rid,
            "event_id": "bench-event",
            "reported_at": "2022-11-21T08:00:00Z",
            "reporter_role": "tagana",
            "village_code": codes[(i * 7) % n_villages],
            "displaced": displaced,
        }
        if i % 2 == 0 and n_households:
            doc["household_id"] = f"BH{(i * 13) % n_households:08d}"
            doc["houses_heavy"] = 1
        w.reports.append((rid.encode(), json.dumps(doc, separators=(",", ":")).encode()))
        w.expected_displaced += displaced
    w.expected_reports = n_reports
    return w

"""A generated disaster scenario and its ground truth, computed here independently of the pipeline.

The truth follows the published contracts only:
- households: per household, in publish order, a tombstone removes it; an update applies unless it
  is strictly older than the live record.
- reports: per report, the highest revision counts (ties: the first one published); a retracted
  latest revision counts nothing.
- a report without event_id belongs to the latest event (earliest report naming it) in its regency
  that began at most 14 days before it, else 'unassigned'.
- enrichment is the household's final registry state (the join converges to it).
- a household counts once per event, from its latest current report (by reported_at, unique per
  report here); village summaries all count.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.geo import village_positions
from schemas.regions import villages

Message = tuple[str, bytes | None, bytes | None]

REGENCIES = ["32.03", "32.02", "32.05"]  # Cianjur, Sukabumi, Garut


def _villages(rng: random.Random, n: int) -> list[str]:
    """``n`` real village codes, spread over the regencies round-robin."""
    per = {r: villages(r + ".") for r in REGENCIES}
    return [per[REGENCIES[i % len(REGENCIES)]][i // len(REGENCIES)] for i in range(n)]


@dataclass
class Scenario:
    households: list[Message] = field(default_factory=list)
    reports: list[Message] = field(default_factory=list)
    malformed: list[Message] = field(default_factory=list)
    final_households: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    final_reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def interleaved(self, rng: random.Random) -> list[Message]:
        """Households first in bulk, then reports with the rest of the registry changes mixed in."""
        split = len(self.households) * 2 // 3
        head, tail = self.households[:split], list(self.households[split:])
        mixed: list[Message] = list(head)
        step = max(1, len(self.reports) // max(1, len(tail)))
        for i, msg in enumerate(self.reports):
            mixed.append(msg)
            if tail and i % step == 0:
                mixed.append(tail.pop(0))
        mixed.extend(tail)
        return mixed


def generate(seed: int, n_households: int, n_reports: int, n_villages: int = 300) -> Scenario:
    rng = random.Random(seed)
    sc = Scenario()
    villages = _villages(rng, n_villages)
    base = datetime(2022, 11, 1, tzinfo=UTC)
    hh_ids = [f"HH{seed}-{i:06d}" for i in range(n_households)]
    hh_updated: dict[str, datetime] = {}

    def household_doc(hid: str, updated: datetime) -> dict[str, Any]:
        desil = rng.choice([None, *range(1, 11)])
        programs = (
            sorted(rng.sample(["PKH", "BPNT", "PBI"], rng.randint(0, 2))) if desil and desil <= 5 else []
        )
        return {
            "household_id": hid,
            "village_code": rng.choice(villages),
            "updated_at": updated.isoformat(),
            "nik_head": f"{rng.randrange(10**15, 10**16)}",
            "kk_number": f"{rng.randrange(10**15, 10**16)}",
            "members": (members := rng.randint(1, 8)),
            "desil": desil,
            "programs": programs,
            # Plausible counts (schemas/households.py): each group within the members, and a child
            # under five neither elderly nor pregnant. The same draws as before, clamped.
            "elderly": (elderly := min(rng.randint(0, 2), members)),
            "disabled": min(rng.randint(0, 1), members),
            "under5": (under5 := min(rng.randint(0, 2), members - elderly)),
            "pregnant": min(rng.randint(0, 1), members - under5),
            "lat": round(-6.8 + rng.uniform(-0.3, 0.3), 5),
            "lon": round(107.1 + rng.uniform(-0.3, 0.3), 5),
        }

    def apply_household(hid: str, doc: dict[str, Any] | None) -> None:
        if doc is None:
            sc.final_households[hid] = None
            return
        live = sc.final_households.get(hid)
        if live is None or doc["updated_at"] >= live["updated_at"]:
            sc.final_households[hid] = doc

    for hid in hh_ids:
        updated = base + timedelta(minutes=rng.randint(0, 10_000))
        hh_updated[hid] = updated
        doc = household_doc(hid, updated)
        sc.households.append(("households", hid.encode(), json.dumps(doc).encode()))
        apply_household(hid, doc)
    # Mid-stream changes: newer updates, stale (older) updates and tombstones.
    for hid in rng.sample(hh_ids, n_households // 10):
        kind = rng.random()
        if kind < 0.6:
            hh_updated[hid] += timedelta(days=1)
            doc = household_doc(hid, hh_updated[hid])
        elif kind < 0.8:
            doc = household_doc(hid, hh_updated[hid] - timedelta(days=2))
        else:
            doc = None
        sc.households.append(("households", hid.encode(), json.dumps(doc).encode() if doc else None))
        apply_household(hid, doc)

    events = [
        ("E-cianjur", datetime(2022, 11, 21, 6, 21, tzinfo=UTC)),
        ("E-flood", datetime(2022, 11, 25, tzinfo=UTC)),
    ]
    unknown_hh = [f"UNREG{seed}-{i}" for i in range(n_reports // 50)]
    published: list[tuple[int, dict[str, Any]]] = []  # (order, doc)
    for i in range(n_reports):
        rid = f"R{seed}-{i:07d}"
        event_id, began = rng.choice(events)
        household_level = rng.random() < 0.8
        hid = rng.choice(hh_ids if rng.random() < 0.9 else unknown_hh) if household_level else None
        doc: dict[str, Any] = {
            "report_id": rid,
            "revision": 1,
            "event_id": event_id if rng.random() < 0.9 else None,
            # Distinct per report (whole hours plus i ms, i < 3,600,000), so "a household's latest
            # report" needs no tie-break by arrival; one format, so the text sorts as the time.
            "reported_at": (began + timedelta(hours=rng.randint(1, 200), milliseconds=i)).isoformat(
                timespec="milliseconds"
            ),
            "reporter_id": f"W{rng.randint(1, 500)}",
            "reporter_role": rng.choice(["tagana", "tksk", "pkh", "psm", "karang_taruna", "slrt", "other"]),
            "village_code": rng.choice(villages),
            "household_id": hid,
            "notes": "NIK 3203010101010001 disebut warga" if rng.random() < 0.01 else "",
        }
        if household_level:
            damage = rng.choice(["houses_light", "houses_moderate", "houses_heavy", None])
            if damage:
                doc[damage] = 1
            doc["displaced"] = rng.choice([0, 0, rng.randint(1, 6)])
            doc["injured"] = rng.choice([0, 0, 0, 1])
        else:
            for name in (
                "houses_light",
                "houses_moderate",
                "houses_heavy",
                "displaced",
                "dead",
                "injured",
                "missing",
            ):
                doc[name] = rng.randint(0, 20)
        versions = [doc]
        r = rng.random()
        if r < 0.10:  # revised
            revised = dict(doc, revision=2, displaced=rng.randint(0, 9))
            if household_level is False:
                revised["dead"] = rng.randint(0, 20)
            if rng.random() < 0.3:  # to the other event, or to none (placed by the rule above)
                revised["event_id"] = rng.choice([e for e, _ in events if e != doc["event_id"]] + [None])
            if household_level and rng.random() < 0.2:  # to another household
                revised["household_id"] = rng.choice(hh_ids)
            versions.append(revised)
        elif r < 0.12:  # retracted
            versions.append(dict(doc, revision=2, retracted=True))
        if rng.random() < 0.05:  # re-sent unchanged
            versions.append(dict(versions[-1]))
        for v in versions:
            published.append((len(published), v))

    # Shuffle arrival within windows of 200 messages.
    window = 200
    order = [p for p in published]
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        rng.shuffle(chunk)
        order[start : start + window] = chunk
    for _, v in order:
        clean = {k: val for k, val in v.items() if val is not None}
        sc.reports.append(("field-reports", v["report_id"].encode(), json.dumps(clean).encode()))
        best = sc.final_reports.get(v["report_id"])
        if best is None or v.get("revision", 1) > best.get("revision", 1):
            sc.final_reports[v["report_id"]] = v
    return sc


def malformed_messages(n: int, seed: int = 7) -> list[Message]:
    """``n`` invalid field reports and households, cycling through every kind of invalid input."""
    rng = random.Random(seed)
    good = {
        "report_id": "BAD",
        "reported_at": "2022-11-21T08:00:00Z",
        "village_code": "32.03.01.2001",
        "reporter_role": "tagana",
    }
    kinds: list[tuple[str, Any]] = [
        ("field-reports", b"{not json"),
        ("field-reports", b"\xff\xfe garbage"),
        ("field-reports", dict(good, displaced="many")),  # wrong type
        ("field-reports", dict(good, dead=1.5)),  # wrong type
        ("field-reports", {k: v for k, v in good.items() if k != "reported_at"}),  # missing field
        ("field-reports", {k: v for k, v in good.items() if k != "report_id"}),
        ("field-reports", dict(good, village_code="3203012001")),  # BPS-style code
        ("field-reports", dict(good, village_code="32.03.01.5001")),  # bad village digit
        ("field-reports", dict(good, injured=-3)),  # negative count
        ("field-reports", dict(good, household_id="HHX", houses_heavy=1, houses_light=1)),  # >1 house
        ("field-reports", dict(good, reporter_role="police")),
        ("field-reports", dict(good, reported_at="kemarin")),
        ("households", {"household_id": "HBAD", "village_code": "32.03.01.2001"}),  # missing updated_at
        (
            "households",
            {
                "household_id": "HBAD",
                "village_code": "32.03.01.2001",
                "updated_at": "2022-11-01T00:00:00Z",
                "nik_head": "12345",
            },
        ),
        (
            "households",
            {
                "household_id": "HBAD",
                "village_code": "32.03.01.2001",
                "updated_at": "2022-11-01T00:00:00Z",
                "desil": 11,
                "nik_head": "3203999988887777",
            },
        ),
        ("households", b"[1, 2, 3]"),
    ]
    out: list[Message] = []
    for i in range(n):
        topic, body = kinds[i % len(kinds)]
        if isinstance(body, dict):
            body = dict(body)
            key_field = "report_id" if topic == "field-reports" else "household_id"
            if key_field in body:
                body[key_field] = f"{body[key_field]}-{i}"
            value = json.dumps(body).encode()
            key = str(body.get(key_field, f"nokey-{i}")).encode()
        else:
            value, key = body, f"raw-{i}".encode()
        out.append((topic, key, value))
    rng.shuffle(out)
    return out


# ------------------------------------------------------------------ truth
def _regency(code: str) -> str:
    return code[:5]


def assign_events(reports: list[dict[str, Any]]) -> dict[str, str]:
    began: dict[str, datetime] = {}
    regencies: dict[str, set[str]] = defaultdict(set)
    for r in reports:
        if r.get("event_id"):
            t = datetime.fromisoformat(r["reported_at"])
            began[r["event_id"]] = min(began.get(r["event_id"], t), t)
            regencies[r["event_id"]].add(_regency(r["village_code"]))
    out = {}
    for r in reports:
        if r.get("event_id"):
            out[r["report_id"]] = r["event_id"]
            continue
        t = datetime.fromisoformat(r["reported_at"])
        cands = [(b, e) for e, b in began.items() if _regency(r["village_code"]) in regencies[e] and b <= t]
        best = max(cands) if cands else None
        out[r["report_id"]] = best[1] if best and best[0] >= t - timedelta(days=14) else "unassigned"
    return out


_FIGURES = ("houses_light", "houses_moderate", "houses_heavy", "displaced", "dead", "injured", "missing")


def _counted(sc: Scenario) -> list[tuple[str, dict[str, Any]]]:
    """(event_id, report) of every report that counts: village summaries, and per event and
    household the latest current report."""
    current = [r for r in sc.final_reports.values() if not r.get("retracted")]
    event_of = assign_events(current)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for r in current:
        event = event_of[r["report_id"]]
        hid = r.get("household_id")
        if not hid:
            out.append((event, r))
        elif (event, hid) not in latest or r["reported_at"] > latest[event, hid]["reported_at"]:
            latest[event, hid] = r
    return out + [(event, r) for (event, _), r in latest.items()]


def expected_impact_village(sc: Scenario) -> list[dict[str, Any]]:
    current = [r for r in sc.final_reports.values() if not r.get("retracted")]
    event_of = assign_events(current)
    reports_of: dict[tuple[str, str], int] = defaultdict(int)  # (event, household) -> reports
    for r in current:
        if r.get("household_id"):
            reports_of[event_of[r["report_id"]], r["household_id"]] += 1
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for event, r in _counted(sc):
        key = (event, r["village_code"])
        g = groups.setdefault(
            key,
            {"event_id": key[0], "village_code": key[1], "reports": 0, "households_affected": 0,
             **dict.fromkeys(_FIGURES, 0), "kpm_households_affected": 0, "vulnerable_persons_affected": 0,
             "unregistered_households_affected": 0},
        )  # fmt: skip
        for name in _FIGURES:
            g[name] += r.get(name, 0)
        hid = r.get("household_id")
        if not hid:
            g["reports"] += 1
            continue
        g["reports"] += reports_of[event, hid]
        g["households_affected"] += 1
        h = sc.final_households.get(hid)
        if h is None:
            g["unregistered_households_affected"] += 1
        else:
            # A KPM family receives PKH or Sembako (BPNT); PBI-JK alone covers persons, not a family.
            g["kpm_households_affected"] += bool({"PKH", "BPNT"} & set(h["programs"]))
            g["vulnerable_persons_affected"] += h["elderly"] + h["disabled"] + h["under5"] + h["pregnant"]
    return sorted(groups.values(), key=lambda g: (g["event_id"], g["village_code"]))


def expected_candidates(sc: Scenario) -> list[tuple[str, str, str, int | None]]:
    """(event_id, household_id, reason, desil) of every household to re-assess."""
    out = []
    for event, r in _counted(sc):
        hid = r.get("household_id")
        if not hid or not (r.get("houses_heavy", 0) > 0 or r.get("displaced", 0) > 0):
            continue
        h = sc.final_households.get(hid)
        if h is None:
            reason, desil = "unregistered", None
        elif h["desil"] is None:
            reason, desil = "unranked", None
        elif h["desil"] > 5:
            reason, desil = "above_desil_5", h["desil"]
        elif not h["programs"]:
            reason, desil = "no_programme", h["desil"]  # desil 1-5 and no programme at all
        else:
            continue
        out.append((event, hid, reason, desil))
    return sorted(out, key=lambda t: (t[0], t[1]))


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km (haversine), written out independently of the pipeline."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def nearest_villages(prefix: str, centre: tuple[float, float], n: int) -> list[str]:
    """The ``n`` villages under ``prefix`` whose shipped centroids are nearest ``centre``."""
    places = {c: p for c, p in village_positions().items() if c.startswith(prefix)}
    return sorted(places, key=lambda c: km(places[c], centre))[:n]

"""Hostile messages: what upstream systems send when they break the contracts, each certain to be
dead-lettered once at dampak's edge. Every case of the robustness issue is among them, with
random bytes and random JSON besides. (A tombstone without a key is not: kafka-python will not
send a record with neither; the unit tests cover it.)"""

from __future__ import annotations

import json
import random
from typing import Any

Message = tuple[str, bytes | None, bytes | None]

_GOOD_REPORT = {
    "reported_at": "2022-11-21T08:00:00Z",
    "village_code": "32.03.01.2001",
    "reporter_role": "tagana",
}
_GOOD_HOUSEHOLD = {"village_code": "32.03.01.2001", "updated_at": "2022-11-01T00:00:00Z"}
_BMKG = {"DateTime": "2022-11-21T06:21:10+00:00", "Coordinates": "-6.84,107.05", "Magnitude": "5.6",
         "Kedalaman": "10 km", "Wilayah": "x", "Dirasakan": "V-VI Cianjur"}  # fmt: skip

# (topic, changes to a valid message, or raw bytes). Dicts are merged into a valid base message.
_REPORTS: list[Any] = [
    {"reported_at": "0001-01-01T00:00:00+01:00"},
    {"reported_at": "9999-12-31T23:30:00-01:00"},
    {"reported_at": "1800-01-01T00:00:00Z"},
    {"reported_at": "2999-01-01T00:00:00Z"},
    {"displaced": 2**32},
    {"dead": 10**30},
    {"injured": -1},
    {"missing": "12"},
    {"village_code": "99.99.99.1999"},
    {"village_code": "\uff13\uff12.03.01.2001"},
    {"village_code": "3203012001"},
    {"household_id": "H", "displaced": 101},
    {"household_id": "H", "houses_heavy": 1, "houses_light": 1},
    {"notes": "x" * 5000},
    {"needs": ["tenda"] * 40},
    {"reporter_role": "police"},
    {"revision": 0},
    {"retracted": "yes"},
    {"lat": 91},
    {"meta": {"NIK_HEAD": "3203010101801234"}, "village_code": "nope"},
    "KEY_MISMATCH",
    "NO_ID",
    b'{"report_id":"t","household_id":"HHSECRET',
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"[]",
    b"null",
    None,  # a tombstone
    # Structural (tests/integration/structural.py has the full set, one of each).
    b"[" * 1_000,
    b'{"a":' * 700,
    b"1" * 5_000,
    b'{"report_id": "S", "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001", '
    b'"reporter_role": "tagana", "displaced": NaN}',
    b'{"report_id": "S", "reported_at": "2022-11-21T08:00:00Z", "village_code": "32.03.01.2001", '
    b'"reporter_role": "tagana", "displaced": 1' + b"0" * 5_000 + b"}",
    "RLO_ID",
    "NUL_ID",
    "UTF16",
]
_HOUSEHOLDS: list[Any] = [
    {"members": 70_000},
    {"members": 0},
    {"updated_at": "9999-01-01T00:00:00Z"},
    {"updated_at": "0001-01-01T00:00:00+01:00"},
    {"nik_head": "320301010180111X"},
    {"desil": 11},
    {"programs": ["BLT"]},
    {"elderly": 1000},
    {"village_code": "99.99.99.1999"},
    "KEY_MISMATCH",
    "NO_ID",
    b"[1, 2, 3]",
    b'{"household_id": "HHSECRET',
    {"members": 1, "elderly": 100, "disabled": 100, "under5": 100, "pregnant": 100},
    "RLO_ID",
    {"notes": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
    "LATIN1",
]
_ALERTS: list[Any] = [
    b"",
    b"neither",
    b"<alert><broken",
    b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"></alert>',
    {"bmkg": {"Magnitude": None}},
    {"bmkg": {"Dirasakan": "3203010101809876 Cianjur"}},
    {"bmkg": {"DateTime": "0001-01-01T00:00:00+01:00"}},
    {"bmkg": {"Coordinates": "north"}},
    {"hazard": "earthquake", "issued_at": "2022-11-21T06:21:10Z"},  # no lat/lon/magnitude/depth
    {"hazard": "flood", "issued_at": "2022-11-21T06:21:10Z", "areas": [{"village_code": "99.99.99.1999"}]},
    {"hazard": "meteor", "issued_at": "2022-11-21T06:21:10Z"},
]

_GOOD_LINK = {"action": "link", "event_id": "bmkg-a", "other_event_id": "bmkg-b", "operator": "posko",
              "reason": "one sequence", "decided_at": "2022-11-25T00:00:00Z"}  # fmt: skip
_LINKS: list[Any] = [
    {"action": "merge"},
    {"other_event_id": "bmkg-a"},  # an event linked to itself
    {"reason": "   "},
    {"operator": ""},
    {"decided_at": "2999-01-01T00:00:00Z"},
    "KEY_MISMATCH",
    "NO_ID",
    "RLO_ID",
    b"{not json",
    None,
]


def hostile_messages(n: int, seed: int = 7, tag: str = "X") -> list[Message]:
    """``n`` messages over the four input topics, each of which breaks its contract."""
    rng = random.Random(seed)
    kinds = [("field-reports", k) for k in _REPORTS] + [("households", k) for k in _HOUSEHOLDS]
    kinds += [("disaster-alerts", k) for k in _ALERTS] + [("field-reports", "RANDOM_BYTES")] * 4
    kinds += [("households", "RANDOM_JSON")] * 4 + [("incident-links", k) for k in _LINKS]
    out = []
    for i in range(n):
        topic, kind = kinds[i % len(kinds)]
        out.append(_message(topic, kind, f"{tag}{i}", rng))
    rng.shuffle(out)
    return out


def _message(topic: str, kind: Any, ident: str, rng: random.Random) -> Message:
    key = ident.encode()
    if kind is None:
        return (topic, key, None)
    if isinstance(kind, bytes):
        return (topic, key, kind)
    if kind == "RANDOM_BYTES":
        return (topic, key, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    if kind == "RANDOM_JSON":
        return (topic, key, json.dumps(_random_json(rng, 3)).encode())
    if topic == "disaster-alerts":
        if "bmkg" in kind:
            return (topic, key, json.dumps({"Infogempa": {"gempa": {**_BMKG, **kind["bmkg"]}}}).encode())
        return (topic, key, json.dumps({"event_id": ident, **kind}).encode())
    id_field, base = {
        "field-reports": ("report_id", _GOOD_REPORT),
        "incident-links": ("link_id", _GOOD_LINK),
    }.get(topic, ("household_id", _GOOD_HOUSEHOLD))
    base = dict(base)
    if kind in ("RLO_ID", "NUL_ID"):  # the key says the same id: only the characters are wrong
        odd = ident + ("\u202e" if kind == "RLO_ID" else "\u0000") + "x"
        return (topic, odd.encode(), json.dumps({**base, id_field: odd}).encode())
    if kind == "UTF16":
        return (topic, key, json.dumps({**base, id_field: ident}).encode("utf-16"))
    if kind == "LATIN1":
        doc = {**base, id_field: ident, "village_code": "32.03.01.2001\u00e9"}
        return (topic, key, json.dumps(doc, ensure_ascii=False).encode("latin-1"))
    if kind == "KEY_MISMATCH":
        return (topic, key + b"-other", json.dumps({**base, id_field: ident}).encode())
    if kind == "NO_ID":
        return (topic, key, json.dumps(base).encode())
    return (topic, key, json.dumps({**base, id_field: ident, **kind}).encode())


def _random_json(rng: random.Random, depth: int) -> Any:
    choice = rng.randrange(7 if depth else 4)
    if choice == 0:
        return rng.randrange(-(2**70), 2**70)
    if choice == 1:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(20)))
    if choice == 2:
        return rng.random() * 10 ** rng.randrange(300)
    if choice == 3:
        return rng.choice([None, True, False])
    if choice in (4, 5):
        return {"household_id" if rng.random() < 0.1 else f"k{j}": _random_json(rng, depth - 1)
                for j in range(rng.randrange(5))}  # fmt: skip
    return [_random_json(rng, depth - 1) for _ in range(rng.randrange(4))]

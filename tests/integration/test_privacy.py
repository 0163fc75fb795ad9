"""Personal data and keys on the real broker and chDB (issue 27, cases 9 and 10): what the worker
stores and publishes, and a pseudonym key changed under the same id."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.geo import village_positions
from schemas.regions import villages as real_villages
from tests.integration.conftest import _ports
from tests.integration.harness import Deployment
from tests.integration.test_alerts_exposure import BULLETIN, EVENT, _mmi

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

DEV_KEY = b"dampak-development-key-change-me"
#: Households per village below (a position was once published as their mean over at least 10).
MIN_HOUSEHOLDS_FOR_POSITION = 10
NIK = "3203010101809876"
# Three Cianjur villages near the 2022 epicentre: one geolocated household, MIN (10), and one
# fewer than MIN among others that are not geolocated.
LONE, ENOUGH, FEW = real_villages("32.03.")[:3]
POSITIONS = {LONE: (-6.85, 107.06), ENOUGH: (-6.83, 107.04), FEW: (-6.86, 107.03)}


def ref(kind: str, value: str, key: bytes = DEV_KEY, key_id: str = "k1") -> str:
    """The documented pseudonym (README, Personal data), computed independently."""
    return f"{key_id}:" + hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _households() -> list[dict[str, Any]]:
    out = []

    def add(code: str, n: int, located: bool) -> None:
        lat, lon = POSITIONS[code]
        for i in range(n):
            # Each household a little apart, so that a mean differs from any one position.
            where = {"lat": lat + i * 0.001, "lon": lon - i * 0.001} if located else {}
            hid = f"P-{code}-{'L' if located else 'U'}{i}"
            out.append({"household_id": hid, "village_code": code, "updated_at": "2022-11-01T00:00:00Z",
                        "members": 3, **where})  # fmt: skip

    add(LONE, 1, True)
    add(ENOUGH, MIN_HOUSEHOLDS_FOR_POSITION, True)
    add(FEW, MIN_HOUSEHOLDS_FOR_POSITION - 1, True)
    add(FEW, 5, False)
    return out


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One worker with the registry above, the Cianjur bulletin, a report whose reporter is
    identified by NIK, and two broken reports keyed by a NIK and by a household id."""
    dep = Deployment(uuid.uuid4().hex[:10], tmp_path_factory.mktemp("privacy") / "data", next(_ports))
    dep.start_worker()
    households = _households()
    dep.produce(("households", h["household_id"].encode(), json.dumps(h).encode()) for h in households)
    dep.wait_for("SELECT sum(households) AS n FROM dampak.village_stats", [{"n": len(households)}], 120)
    report = {"report_id": "P-R1", "reported_at": "2022-11-21T09:00:00Z", "village_code": LONE,
              "event_id": EVENT, "reporter_id": f"NIK {NIK}", "houses_heavy": 1}  # fmt: skip
    dep.produce(
        [
            ("disaster-alerts", EVENT.encode(), json.dumps(BULLETIN).encode()),
            ("field-reports", b"P-R1", json.dumps(report).encode()),
            ("field-reports", NIK.encode(), b"not json"),  # a report keyed by a NIK
            ("field-reports", b"P-HH-42", b'{"report_id": 1}'),  # keyed by a household id
        ]
    )
    dep.wait_for("SELECT count() AS n FROM dampak.field_reports", [{"n": 1}], 60)
    yield dep
    if dep.worker is not None and dep.worker.poll() is None:
        dep.kill_worker()
    dep.delete_topics()


def test_9_every_dead_letter_key_is_stored_as_a_pseudonym(deployment: Deployment) -> None:
    want = sorted([ref("household_id", NIK), ref("household_id", "P-HH-42")])
    deployment.wait_for(
        "SELECT key_ref FROM dampak.dead_letters ORDER BY key_ref", [{"key_ref": k} for k in want], 60
    )
    [row] = deployment.query(
        "SELECT countIf(position(toString(tuple(*)), {nik:String}) > 0 "
        "OR position(toString(tuple(*)), 'P-HH-42') > 0) AS n FROM dampak.dead_letter_state",
        nik=NIK,
    )
    assert row["n"] == 0


def test_9_a_reporter_identified_by_nik_is_masked(deployment: Deployment) -> None:
    [row] = deployment.query("SELECT reporter_id FROM dampak.field_reports")
    assert row["reporter_id"] == "NIK <redacted>"
    [row] = deployment.query(
        "SELECT countIf(position(toString(tuple(*)), {nik:String}) > 0) AS n FROM dampak.report_state",
        nik=NIK,
    )
    assert row["n"] == 0


def test_9_a_village_position_is_its_shipped_centroid_never_its_households(
    deployment: Deployment,
) -> None:
    dep = deployment
    centroids = village_positions()
    stats = {r["village_code"]: r for r in dep.query("SELECT * FROM dampak.village_stats")}
    assert stats[LONE]["households"] == 1 and stats[FEW]["households"] == 14
    for code in POSITIONS:
        # The published position is the village's centroid from the shipped boundaries, whatever
        # its households' coordinates, even for a village of one geolocated household.
        assert (stats[code]["lat"], stats[code]["lon"]) == pytest.approx(centroids[code], abs=1e-9)
        assert stats[code]["position_source"] == "village"
        assert (stats[code]["lat"], stats[code]["lon"]) != pytest.approx(POSITIONS[code], abs=1e-4)

    # The estimate places every village at that centroid too.
    dep.wait_for(
        "SELECT village_code FROM dampak.alert_exposure WHERE event_id = {e:String} ORDER BY village_code",
        [{"village_code": c} for c in sorted(POSITIONS)],
        90,
        e=EVENT,
    )
    [lone] = dep.query(
        "SELECT mmi_predicted FROM dampak.alert_exposure "
        "WHERE event_id = {e:String} AND village_code = {v:String}",
        e=EVENT,
        v=LONE,
    )
    assert lone["mmi_predicted"] == pytest.approx(_mmi(5.6, 10.0, *centroids[LONE]), abs=0.005)

    # The tokenless command-center page draws each village at its centroid: no household's
    # position, nor a mean of them, is there.
    url = f"http://127.0.0.1:{dep.settings.web.port}/pusat/data.json?event={EVENT}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        data = json.loads(resp.read())
    villages = {v["code"]: v for v in data["villages"]}
    assert set(villages) == set(POSITIONS)
    assert villages[LONE]["houses_heavy"] == 1 and villages[LONE]["mmi"] is not None
    for code in POSITIONS:
        assert (villages[code]["lat"], villages[code]["lon"]) == pytest.approx(centroids[code], abs=1e-9)
    assert NIK not in json.dumps(data)


def _refused(dep: Deployment, *args: str, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    """``dampak ARGS``, which must exit by itself (a worker that starts is killed and fails the test)."""
    try:
        return dep.dampak(*args, check=False, timeout_s=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dampak {' '.join(args)} did not refuse: it ran for {timeout_s:.0f}s")


def test_10_a_key_changed_under_the_same_id_is_refused_and_rotated_under_a_new_one(
    deployment: Deployment, tmp_path: Path
) -> None:
    dep = deployment
    figures = "SELECT village_code, households, persons FROM dampak.village_stats ORDER BY village_code"
    before = dep.query(figures)
    assert dep.stop_worker() == 0
    dep.worker = None
    dep.env |= {"DAMPAK_PRIVACY__HMAC_KEY": "a-new-secret-from-the-vault", "DAMPAK_PRIVACY__KEY_ID": "k1"}

    worker = _refused(dep, "worker")
    assert worker.returncode == 2, worker.stderr[-2000:]
    assert (
        "DAMPAK_PRIVACY__HMAC_KEY is not the key" in worker.stderr and "fingerprint differs" in worker.stderr
    )
    rotate = _refused(dep, "rotate-key")
    assert rotate.returncode == 2, rotate.stdout + rotate.stderr[-2000:]
    assert "changed but its id is still 'k1'" in rotate.stderr and "nothing was changed" in rotate.stderr
    assert "a-new-secret" not in worker.stderr + rotate.stderr
    assert dep.query(figures) == before  # nothing counted twice

    # Under a new id, the rotation goes through and every household still counts once.
    dep.env["DAMPAK_PRIVACY__KEY_ID"] = "k2"
    rotated = dep.dampak("rotate-key")
    assert "pseudonyms now use key 'k2'" in rotated.stdout
    assert dep.query(figures) == before
    refs = {r["household_ref"] for r in dep.query("SELECT household_ref FROM dampak.registry_state FINAL")}
    new = b"a-new-secret-from-the-vault"
    assert refs == {ref("household_id", h["household_id"], new, "k2") for h in _households()}
    letters = {r["key_ref"] for r in dep.query("SELECT key_ref FROM dampak.dead_letters")}
    assert letters == {ref("household_id", k, new, "k2") for k in (NIK, "P-HH-42")}

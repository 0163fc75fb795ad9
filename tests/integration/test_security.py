"""The worker's surfaces: analyst queries confined by the engine, /query over HTTP, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import _ports
from tests.integration.harness import ROOT, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

BYPASSES = [
    "SELECT * FROM file/**/('/etc/hostname','LineAsString')",
    "SELECT * FROM `file`('/etc/hostname','LineAsString')",
    "SELECT * FROM \"file\"('/etc/hostname','LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:1/x', 'LineAsString')",
    "SELECT * FROM urlCluster('default', 'http://127.0.0.1:1/x', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:1/b/x', 'LineAsString')",
    "SELECT file('/etc/hostname')",
    "SELECT number FROM system.numbers LIMIT 100000 SETTINGS max_result_rows = 1000000",
    "SELECT count() FROM numbers(10) SETTINGS max_execution_time = 100000, readonly = 0",
    "SELECT * FROM dampak.report_state",
    "SELECT 1 FROM dampak.regions WHERE code IN dampak.registry_state",
    "SELECT 1 FROM dampak.regions WHERE code NOT IN registry_state",
    # A parameterized view is called like a table function: only the scoped views, and their
    # argument is an expression like any other (a subquery reading a household is refused).
    "SELECT * FROM dampak.alerts(incident = 'x')",
    "SELECT * FROM dampak.impact_village_of(incident = (SELECT any(kk_ref) FROM dampak.registry_state))",
    "INSERT INTO dampak.regions SELECT * FROM dampak.regions",
    "SELECT 1; DROP TABLE dampak.regions",
    "SELECT 1 INTO OUTFILE '/tmp/dampak-outfile'",
    # A CTE "definition" in a comment or a string literal is no CTE (issue 27, case 8).
    "SELECT name, value FROM system.settings -- `system.settings` AS (",
    "SELECT * FROM system.settings /* `system.settings` AS ( */",
    "SELECT '`system.settings` AS (' AS s, name FROM system.settings",
]
#: Exact coordinates of a household: what the CTE bypass of issue 27 (case 8) read.
LAT, LON = -6.8412345, 107.0532109
CTE_BYPASSES = [
    "SELECT lat, lon FROM dampak.registry_state /* `dampak.registry_state` AS ( */",
    "SELECT '`dampak.registry_state` AS (' AS s, lat, lon FROM dampak.registry_state",
    "WITH `dampak.registry_state` AS (SELECT 1) SELECT lat, lon FROM dampak.registry_state",
]


def _post(
    url: str, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.parametrize("through", ["engine", "worker"])
def test_every_known_bypass_is_refused(deployment: Deployment, through: str) -> None:
    deployment.env["DAMPAK_CLICKHOUSE__QUERY_MAX_ROWS"] = "1000"
    deployment.dampak("init-db")
    if through == "worker":
        deployment.start_worker()
    for sql in BYPASSES:
        out = deployment.dampak("query", sql, check=False)
        assert out.returncode == 2, (sql, out.stdout)
        assert "hostname" not in out.stdout and "root" not in out.stdout, sql
    # What analysts do is still allowed, with the engine's limits.
    ok = deployment.dampak("query", "SELECT count() AS n FROM dampak.regions WHERE level = 'province'",
                           "--format", "tsv")  # fmt: skip
    assert ok.stdout.splitlines() == ["n", "38"]
    capped = deployment.dampak("query", "SELECT number FROM system.numbers LIMIT 1000", "--format", "tsv")
    assert len(capped.stdout.splitlines()) == 1 + 1000
    # One row more is refused whole, never cut short silently.
    over = deployment.dampak("query", "SELECT number FROM system.numbers LIMIT 1001", check=False)
    assert over.returncode == 2 and "QUERY_MAX_ROWS" in over.stderr and not over.stdout
    provinces = (
        "WITH p AS (SELECT code FROM dampak.regions WHERE level = 'province') SELECT count() AS n FROM p"
    )
    cte = deployment.dampak("query", provinces, "--format", "tsv")
    assert cte.stdout.splitlines() == ["n", "38"]
    # Qualified columns inside functions, and IN with a subquery, are ordinary analyst SQL.
    joined = (
        "SELECT min(r.code) AS first, count() AS n FROM dampak.regions AS r WHERE r.level = 'province'"
        " AND r.code IN (SELECT code FROM dampak.regions WHERE level = 'province')"
    )
    assert deployment.dampak("query", joined, "--format", "tsv").stdout.splitlines() == ["first\tn", "11\t38"]
    assert not Path("/tmp/dampak-outfile").exists()
    if through == "worker":
        assert deployment.stop_worker() == 0


def _memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def test_a_cte_named_in_a_comment_or_a_string_reads_no_household(deployment: Deployment) -> None:
    deployment.start_worker()
    household = {
        "household_id": "CTE-BYPASS-1", "village_code": "32.03.01.2001", "members": 4,
        "updated_at": "2022-11-01T00:00:00Z", "lat": LAT, "lon": LON,
    }  # fmt: skip
    deployment.produce([("households", b"CTE-BYPASS-1", json.dumps(household).encode())])
    deployment.wait_for("SELECT count() AS n FROM dampak.registry_state", [{"n": 1}], 120)
    url = f"http://127.0.0.1:{deployment.settings.web.port}/query"
    for sql in CTE_BYPASSES:
        out = deployment.dampak("query", sql, "--format", "tsv", check=False)
        assert out.returncode == 2, (sql, out.stdout)
        assert "dampak.registry_state is not an analyst object" in out.stderr, (sql, out.stderr)
        assert str(LAT) not in out.stdout and str(LON) not in out.stdout
        status, body = _post(url, {"sql": sql})
        assert status == 400 and str(LAT) not in json.dumps(body), (sql, body)
    # A real CTE is still ordinary analyst SQL.
    cte = "WITH p AS (SELECT code FROM dampak.regions WHERE level = 'province') SELECT count() AS n FROM p"
    assert _post(url, {"sql": cte}) == (200, {"columns": ["n"], "rows": [[38]]})
    assert deployment.stop_worker() == 0


def test_the_engine_caps_result_rows_and_bytes_and_the_worker_stays_small(deployment: Deployment) -> None:
    deployment.env["DAMPAK_CLICKHOUSE__QUERY_MAX_ROWS"] = "20"
    deployment.start_worker()
    assert deployment.worker is not None
    url = f"http://127.0.0.1:{deployment.settings.web.port}/query"
    # Each branch of a top-level UNION escaped the engine's row cap: 200,001 rows were fetched.
    union = "SELECT number FROM system.numbers LIMIT 200000 UNION ALL SELECT 1"
    out = deployment.dampak("query", union, "--format", "tsv", check=False)
    assert out.returncode == 2 and "over the cap of 20 rows" in out.stderr and not out.stdout, out
    assert _post(url, {"sql": union})[0] == 400
    assert len(deployment.dampak("query", "SELECT number FROM system.numbers LIMIT 20",
                                 "--format", "tsv").stdout.splitlines()) == 1 + 20  # fmt: skip
    # Four rows of 100 MB each: refused by the engine's byte cap before they reach Python.
    before = _memory_kb(deployment.worker.pid)
    huge = "SELECT repeat(repeat('x', 1000000), 100) FROM system.numbers LIMIT 4"
    status, body = _post(url, {"sql": huge})
    assert status == 400 and "QUERY_MAX_RESULT_BYTES" in body["error"], body
    after = _memory_kb(deployment.worker.pid)
    grown_mb = (after["VmHWM"] - max(before["VmHWM"], before["VmRSS"])) / 1024
    print(f"worker RSS {before['VmRSS'] // 1024} MB before, peak {after['VmHWM'] // 1024} MB after")
    # The engine computes the 400 MB block once, then refuses it (was: 492 MB -> 2.7 GB).
    assert grown_mb < 700, (before, after)
    assert _post(url, {"sql": "SELECT 1 AS one"}) == (200, {"columns": ["one"], "rows": [[1]]})
    assert deployment.stop_worker() == 0


def test_concurrent_queries_are_bounded_with_a_clear_answer(deployment: Deployment) -> None:
    deployment.env["DAMPAK_CLICKHOUSE__QUERY_CONCURRENCY"] = "1"
    deployment.env["DAMPAK_CLICKHOUSE__QUERY_WAIT_S"] = "0.5"
    deployment.start_worker()
    url = f"http://127.0.0.1:{deployment.settings.web.port}/query"
    slow: list[tuple[int, Any]] = []
    # Three sleeps of 3 s (the engine's most per block), one after the other: 9 s, little CPU.
    nine_s = "SELECT sleep(3) + a AS s FROM (SELECT sleep(3) + b AS a FROM (SELECT sleep(3) AS b))"
    runner = threading.Thread(target=lambda: slow.append(_post(url, {"sql": nine_s})))
    runner.start()
    time.sleep(0.8)
    started = time.monotonic()
    status, body = _post(url, {"sql": "SELECT 1 AS one"})
    assert status == 503 and "busy" in body["error"] and "QUERY_CONCURRENCY" in body["error"], body
    assert time.monotonic() - started < 2.5  # answered after the wait, not after the slow query
    out = deployment.dampak("query", "SELECT 1 AS one", check=False)
    assert runner.is_alive(), "the slow query ended too soon to show anything"
    assert out.returncode == 2 and "busy" in out.stderr, out
    runner.join()
    assert slow == [(200, {"columns": ["s"], "rows": [[0]]})]
    assert _post(url, {"sql": "SELECT 1 AS one"})[0] == 200  # free again
    assert deployment.stop_worker() == 0


def test_query_over_http_is_post_only_host_checked_and_scoped(deployment: Deployment) -> None:
    deployment.start_worker()
    url = f"http://127.0.0.1:{deployment.settings.web.port}/query"
    sql = {"sql": "SELECT 1 AS one"}
    assert _post(url, sql) == (200, {"columns": ["one"], "rows": [[1]]})
    get = urllib.request.Request(url + "?sql=SELECT%201")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(get, timeout=10)
    assert err.value.code == 405
    # A page in a browser that rebinds its own name to 127.0.0.1 sends its own Host.
    assert _post(url, sql, {"Host": "attacker.example:6066"})[0] == 403
    assert _post(url, {"sql": "SELECT count() FROM dampak.report_state"})[0] == 400
    assert _post(url, {"sql": "SELECT count() AS n FROM dampak.report_state", "scope": "internal"})[0] == 200
    assert deployment.stop_worker() == 0


def test_beyond_loopback_the_worker_needs_a_token(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = next(_ports)
    refused = Deployment("sec" + str(port), tmp_path / "a", port, DAMPAK_WEB__HOST="0.0.0.0")
    out = refused.dampak("worker", check=False)
    assert out.returncode == 2 and "DAMPAK_WEB__TOKEN" in out.stderr
    dep = Deployment("sec" + str(port), tmp_path / "b", port, DAMPAK_WEB__HOST="0.0.0.0",
                     DAMPAK_WEB__TOKEN="s3cret-token")  # fmt: skip
    dep.start_worker()
    url = f"http://127.0.0.1:{port}/query"
    assert _post(url, {"sql": "SELECT 1"})[0] == 401
    assert _post(url, {"sql": "SELECT 1"}, {"Authorization": "Bearer wrong"})[0] == 401
    assert _post(url, {"sql": "SELECT 1 AS one"}, {"Authorization": "Bearer s3cret-token"})[0] == 200
    # The CLI sends the configured token.
    assert dep.dampak("query", "SELECT 1 AS one", "--format", "tsv").stdout.splitlines() == ["one", "1"]
    assert dep.stop_worker() == 0


def test_a_slow_query_does_not_hold_up_writes(deployment: Deployment) -> None:
    deployment.env["DAMPAK_CLICKHOUSE__QUERY_TIMEOUT_S"] = "20"
    deployment.start_worker()
    slow = "SELECT count() FROM system.numbers WHERE sipHash64(number) % 7 = 3 AND number < 3000000000"
    runner = threading.Thread(target=lambda: deployment.dampak("query", slow, check=False))
    runner.start()
    time.sleep(1.0)
    started = time.monotonic()
    doc = {"report_id": "during-slow", "reported_at": "2022-11-21T09:00:00Z", "village_code": "32.03.01.2001"}
    deployment.produce([("field-reports", b"during-slow", json.dumps(doc).encode())])
    deployment.wait_for("SELECT count() AS n FROM dampak.field_reports", [{"n": 1}], 15)
    visible_after = time.monotonic() - started
    assert runner.is_alive(), "the slow query ended too soon to show anything"
    assert visible_after < 10, visible_after
    runner.join()
    assert deployment.stop_worker() == 0


def test_the_built_in_key_is_refused_outside_development(kafka_bootstrap: str, tmp_path: Path) -> None:
    dep = Deployment("key" + str(os.getpid()), tmp_path, next(_ports), DAMPAK_DEV_MODE="false")
    out = dep.dampak("worker", check=False)
    assert out.returncode == 2 and "DAMPAK_PRIVACY__HMAC_KEY" in out.stderr


def test_config_masks_every_secret(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DAMPAK_DATA_DIR": str(tmp_path),
        "DAMPAK_CLICKHOUSE__DSN": "https://analyst:pw-in-userinfo@ch:8443/db?password=pw-in-query&secure=1",
        "DAMPAK_KAFKA__SASL_PASSWORD": "kafka-pw",
        "DAMPAK_PRIVACY__HMAC_KEY": "hmac-secret",
        "DAMPAK_WEB__TOKEN": "web-token",
    }
    for command in ("config", "status"):
        argv = [sys.executable, "-m", "streams", command]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
        for secret in ("pw-in-userinfo", "pw-in-query", "kafka-pw", "hmac-secret", "web-token"):
            assert secret not in out.stdout + out.stderr, (command, secret)

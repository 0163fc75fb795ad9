"""Test harness: an isolated dampak deployment (own topics, consumer group, data dir) per test,
with the worker as a real subprocess that can be stopped or SIGKILLed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sinks.analyst import query
from streams.domain.lag import GroupStatus
from streams.errors import DampakError
from streams.ops.admin import producer
from streams.runtime.worker import wait_until_ready
from streams.settings import KafkaSettings, Settings
from streams.topics import inputs_group

ROOT = Path(__file__).resolve().parents[2]


def delete_topics(bootstrap_servers: str, prefix: str, **client_options: Any) -> None:
    """Delete every topic whose name starts with ``prefix``, 100 per request."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=120_000, **client_options
    )
    try:
        mine = [t for t in admin.list_topics() if t.startswith(prefix)]
        for i in range(0, len(mine), 100):
            admin.delete_topics(mine[i : i + 100], timeout_ms=60_000)
    finally:
        admin.close()


class Deployment:
    def __init__(
        self, name: str, data_dir: Path, web_port: int, kafka: KafkaSettings | None = None, **env: str
    ) -> None:
        """``kafka``: another cluster than the default local broker (its ``DAMPAK_KAFKA__*``
        variables go in ``env`` too)."""
        self.name = name
        self.env = {
            **os.environ,
            "DAMPAK_APP_ID": f"test-{name}",
            "DAMPAK_KAFKA__TOPIC_PREFIX": f"test-{name}-",
            "DAMPAK_DATA_DIR": str(data_dir),
            "DAMPAK_WEB__PORT": str(web_port),
            "DAMPAK_LOG_LEVEL": os.environ.get("DAMPAK_TEST_LOG_LEVEL", "warning"),
            "DAMPAK_CLICKHOUSE__QUERY_MAX_ROWS": "500000",
            "DAMPAK_DEV_MODE": "true",
            **env,
        }
        self.settings = Settings(
            app_id=f"test-{name}",
            data_dir=data_dir,
            kafka=(kafka or KafkaSettings()).model_copy(update={"topic_prefix": f"test-{name}-"}),
            web={"port": web_port},
            clickhouse={"query_max_rows": 500_000},
        )
        self.worker: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "worker.log"
        data_dir.mkdir(parents=True, exist_ok=True)

    def topic(self, logical: str) -> str:
        return f"test-{self.name}-{logical}"

    def delete_topics(self) -> None:
        """Delete every topic of the deployment (named after it: its own, the changelogs and
        Faust's); best effort, as a broker stopped by the test refuses."""
        kafka = self.settings.kafka
        try:
            delete_topics(kafka.bootstrap_servers, self.topic(""), **kafka.client_options())
        except Exception as exc:  # cleanup only: never fail the test over it
            print(f"topics of {self.name} left on the broker: {type(exc).__name__}")

    def dampak(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout_s: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``dampak ARGS`` in this deployment; ``timeout_s``: raises subprocess.TimeoutExpired past it."""
        proc = subprocess.run(
            [sys.executable, "-m", "streams", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=timeout_s,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"dampak {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc

    def lag(self) -> tuple[str, int]:
        """``dampak lag`` of the worker's groups, the app's own (internal topics) and the one that
        routes the input topics: the worse status and the total lag over every partition they
        read, committed or not; ("?", -1) when it cannot be sampled."""
        app = self.settings.app_id
        out = self.dampak("lag", "--json", "--group", app, "--group", inputs_group(app), check=False)
        try:
            groups = json.loads(out.stdout)
        except ValueError:
            return "?", -1
        status = max((GroupStatus[g["status"]] for g in groups), default=GroupStatus.OK)
        return status.name, sum(p["lag"] for g in groups for p in g["partitions"])

    # -------------------------------------------------------------- worker
    def start_worker(self, command: str = "worker", wait: bool = True) -> None:
        """Start ``dampak worker`` (or ``dampak writer``) and wait until it is ready (or not:
        ``wait_ready`` later)."""
        assert self.worker is None or self.worker.poll() is not None
        with open(self.log, "ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "streams", command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout_s: float = 90) -> None:
        assert self.worker is not None
        try:
            wait_until_ready(f"http://127.0.0.1:{self.settings.web.port}", self.worker, timeout_s)
        except DampakError as exc:
            raise AssertionError(f"{exc}: {self.log_tail()}") from exc

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()

    def stop_worker(self, timeout_s: float = 60) -> int:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGTERM)
        try:
            return self.worker.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()
            raise AssertionError(f"worker ignored SIGTERM for {timeout_s}s: {self.log_tail()}") from None

    def ddl(self, sql: str) -> None:
        """Run DDL on the deployment's embedded engine from another process (worker stopped)."""
        code = (
            "import clickhouse_connect, sys; "
            f"clickhouse_connect.get_client(dsn={self.settings.clickhouse_dsn!r}).command(sys.argv[1])"
        )
        subprocess.run([sys.executable, "-c", code, sql], check=True, cwd=ROOT)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # -------------------------------------------------------------- data
    def produce(
        self,
        messages: Iterable[tuple[str, bytes | None, bytes | None]],
        partitions: random.Random | None = None,
    ) -> int:
        """Publish (logical topic, key, value) in order; returns the count. With ``partitions``,
        each message goes to a random explicit partition (as a publisher with another partitioner,
        or none, would put it) instead of the one its key hashes to."""
        prod = producer(self.settings)
        n = 0
        for logical, key, value in messages:
            partition = partitions.randrange(self.settings.kafka.partitions) if partitions else None
            prod.send(self.topic(logical), key=key, value=value, partition=partition)
            n += 1
        prod.flush()
        prod.close()
        return n

    def query(self, sql: str, **parameters: Any) -> list[dict[str, Any]]:
        """Rows as dicts: through the running worker, or a ``dampak query`` process when none runs
        (opening the embedded engine in the test process would keep it from the next worker).
        ``parameters`` fill the query's ``{name:Type}`` placeholders, server-side."""
        # Tests inspect internal tables too: the operators' scope.
        if self.worker is not None and self.worker.poll() is None:
            columns, rows = query(self.settings.clickhouse_target, sql, parameters, "internal")
            return [dict(zip(columns, row, strict=True)) for row in rows]
        params = [arg for name, value in parameters.items() for arg in ("--param", f"{name}={value}")]
        out = self.dampak("query", sql, *params, "--internal", "--format", "json")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def wait_for(self, sql: str, expected: Any, timeout_s: float = 240, **parameters: Any) -> Any:
        """Poll ``sql`` until its rows equal ``expected`` and return them; raises AssertionError
        with the last rows when the timeout passes."""
        deadline = time.monotonic() + timeout_s
        rows: Any = None
        while time.monotonic() < deadline:
            rows = self.query(sql, **parameters)
            if rows == expected:
                return rows
            time.sleep(1.0)
        raise AssertionError(
            f"not reached within {timeout_s:.0f}s: {sql}\n"
            f"{_difference(expected, rows)}\n"
            f"expected {_short(expected)}\n     got {_short(rows)}"
        )


def _difference(expected: Any, rows: Any, limit: int = 10) -> str:
    """The rows only one side has (up to ``limit`` each), so that a long table's mismatch is
    readable."""
    if not isinstance(expected, list) or not isinstance(rows, list):
        return "rows differ"
    want, have = [repr(r) for r in expected], [repr(r) for r in rows]
    want_set, have_set = set(want), set(have)
    missing = [r for r in want if r not in have_set]
    extra = [r for r in have if r not in want_set]
    lines = [f"{len(want)} rows expected, {len(have)} got"]
    lines += [f"  only expected: {r}" for r in missing[:limit]]
    lines += [f"  only got:      {r}" for r in extra[:limit]]
    return "\n".join(lines)


def _short(rows: Any, limit: int = 2000) -> str:
    text = repr(rows)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"

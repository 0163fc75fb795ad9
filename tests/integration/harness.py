"""Test harness: an isolated dampak deployment (own topics, consumer group, data dir) per test,
with the worker as a real subprocess that can be stopped or SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from streams.cli import query
from streams.errors import DampakError
from streams.settings import Settings
from streams.worker import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]


class Deployment:
    def __init__(self, name: str, data_dir: Path, web_port: int, **env: str) -> None:
        self.name = name
        self.env = {
            **os.environ,
            "DAMPAK_APP_ID": f"test-{name}",
            "DAMPAK_KAFKA__TOPIC_PREFIX": f"test-{name}-",
            "DAMPAK_DATA_DIR": str(data_dir),
            "DAMPAK_WEB__PORT": str(web_port),
            "DAMPAK_LOG_LEVEL": "warning",
            "DAMPAK_CLICKHOUSE__QUERY_MAX_ROWS": "500000",
            **env,
        }
        self.settings = Settings(
            app_id=f"test-{name}",
            data_dir=data_dir,
            kafka={"topic_prefix": f"test-{name}-"},
            web={"port": web_port},
            clickhouse={"query_max_rows": 500_000},
        )
        self.worker: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "worker.log"
        data_dir.mkdir(parents=True, exist_ok=True)

    def topic(self, logical: str) -> str:
        return f"test-{self.name}-{logical}"

    def dampak(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [sys.executable, "-m", "streams", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"dampak {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc

    # -------------------------------------------------------------- worker
    def start_worker(self) -> None:
        assert self.worker is None or self.worker.poll() is not None
        with open(self.log, "ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
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

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # -------------------------------------------------------------- data
    def produce(self, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> int:
        """Publish (logical topic, key, value) in order; returns the count."""
        producer = KafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers, linger_ms=10, acks="all"
        )
        n = 0
        for logical, key, value in messages:
            producer.send(self.topic(logical), key=key, value=value)
            n += 1
        producer.flush()
        producer.close()
        return n

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows as dicts: through the running worker, or a ``dampak query`` process when none runs
        (opening the embedded engine in the test process would keep it from the next worker)."""
        if self.worker is not None and self.worker.poll() is None:
            columns, rows = query(self.settings, sql)
            return [dict(zip(columns, row, strict=True)) for row in rows]
        out = self.dampak("query", sql, "--format", "json")
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def wait_for(self, sql: str, expected: Any, timeout_s: float = 240) -> Any:
        """Poll ``sql`` until its rows equal ``expected``; returns the last rows either way."""
        deadline = time.monotonic() + timeout_s
        rows: Any = None
        while time.monotonic() < deadline:
            rows = self.query(sql)
            if rows == expected:
                return rows
            time.sleep(1.0)
        return rows

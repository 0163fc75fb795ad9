"""The local Apache Kafka broker behind ``dampak up/down/status`` (no Docker needed).

Kafka 4.x runs as one combined broker+controller in KRaft mode on 127.0.0.1, from jars that Maven
resolves from Maven Central into ``~/.m2`` (``deploy/local/pom.xml``). Storage is formatted with
``kafka.tools.StorageTool format --standalone``; logs go to ``<data dir>/kafka/logs``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.admin import broker_answers
from streams.errors import LocalStackError
from streams.settings import Settings

__all__ = ["DEPLOY_LOCAL", "LocalKafka", "StackStatus"]

logger = logging.getLogger(__name__)

#: This folder: the Maven project of the broker jars and its log configuration.
DEPLOY_LOCAL = Path(__file__).resolve().parent


@dataclass(frozen=True)
class StackStatus:
    bootstrap_servers: str
    managed: bool  # True when this is the bundled local broker
    answering: bool
    pid: int | None
    log_file: Path | None


class LocalKafka:
    """Prepare, start, stop and report the bundled broker. All state lives under ``<data dir>/kafka``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir / "kafka"
        self.log_dir = self.root / "logs"
        self.storage_dir = self.root / "data"
        self.pid_file = self.root / "broker.pid"
        self.properties = self.root / "server.properties"
        self.classpath_file = self.root / f"classpath-{settings.local_kafka.version}.txt"
        host, _, port = settings.kafka.bootstrap_servers.partition(":")
        self.host, self.port = host, int(port or 9092)

    # ------------------------------------------------------------------ public
    def status(self) -> StackStatus:
        managed = self.settings.uses_local_kafka
        return StackStatus(
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            managed=managed,
            answering=broker_answers(
                self.settings.kafka.bootstrap_servers, **self.settings.kafka.client_options()
            ),
            pid=self._running_pid() if managed else None,
            log_file=self.log_dir / "server.log" if managed else None,
        )

    def up(self) -> str:
        """Start the broker unless one already answers; returns 'external', 'reused' or 'started'.

        Raises LocalStackError with the tail of the broker log when it does not come up in time.
        """
        if not self.settings.uses_local_kafka:
            return "external"
        if broker_answers(self.settings.kafka.bootstrap_servers):
            return "reused"
        stale = self._running_pid()
        if stale is not None:
            # Our broker is alive but not answering yet (still starting): wait for it.
            self._wait_until_answering(stale)
            return "reused"
        classpath = self.classpath()
        self._write_config()
        if not (self.storage_dir / "meta.properties").exists():
            self._format(classpath)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self._java(),
            f"-Xmx{self.settings.local_kafka.heap}",
            f"-Xms{self.settings.local_kafka.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'log4j2.yaml'}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(self.properties),
        ]
        with open(self.log_dir / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid_file.write_text(str(proc.pid))
        logger.info("started Kafka %s (pid %d)", self.settings.local_kafka.version, proc.pid)
        self._wait_until_answering(proc.pid)
        return "started"

    def down(self) -> bool:
        """Stop the broker that ``up`` started (by its pid file); returns False if none was running."""
        pid = self._running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            logger.warning("broker pid %d ignored SIGTERM for 30s; killing it", pid)
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def classpath(self) -> str:
        """The broker classpath, resolved by Maven once per Kafka version and cached."""
        if self.classpath_file.exists():
            cp = self.classpath_file.read_text().strip()
            if cp and all(Path(jar).exists() for jar in cp.split(os.pathsep)):
                return cp
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalStackError("Maven (mvn) is needed to fetch the Kafka jars; install it or use Docker")
        self.root.mkdir(parents=True, exist_ok=True)
        logger.info("resolving Kafka %s jars with Maven", self.settings.local_kafka.version)
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(DEPLOY_LOCAL / "pom.xml"),
                f"-Dkafka.version={self.settings.local_kafka.version}",
                "dependency:build-classpath",
                f"-Dmdep.outputFile={self.classpath_file}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not self.classpath_file.exists():
            raise LocalStackError(
                f"mvn dependency:build-classpath failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return self.classpath_file.read_text().strip()

    # ----------------------------------------------------------------- private
    def _write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ctl = self.settings.local_kafka.controller_port
        k = self.settings.kafka
        self.properties.write_text(
            "\n".join(
                [
                    "# Written by `dampak up`; edits are overwritten.",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={self.host}:{ctl}",
                    f"listeners=PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{ctl}",
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.storage_dir}",
                    f"num.partitions={k.partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )

    def _format(self, classpath: str) -> None:
        java = self._java()
        uuid = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True,
            text=True,
            check=False,
        )
        cluster_id = (
            uuid.stdout.strip().splitlines()[-1] if uuid.returncode == 0 and uuid.stdout.strip() else ""
        )
        if not cluster_id:
            raise LocalStackError(f"StorageTool random-uuid failed: {uuid.stderr[-1000:]}")
        fmt = subprocess.run(
            [
                java,
                f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.log_dir}",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise LocalStackError(f"StorageTool format failed: {fmt.stdout[-1000:]}{fmt.stderr[-1000:]}")

    def _wait_until_answering(self, pid: int) -> None:
        deadline = time.monotonic() + self.settings.local_kafka.start_timeout_s
        while time.monotonic() < deadline:
            if broker_answers(self.settings.kafka.bootstrap_servers, timeout_s=1.0):
                return
            if not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise LocalStackError(f"Kafka exited during start-up; last log lines:\n{self._log_tail()}")
            time.sleep(0.5)
        raise LocalStackError(
            f"Kafka did not answer within the start timeout; last log lines:\n{self._log_tail()}"
        )

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc (macOS): trust the pid file
        return pid if b"kafka.Kafka" in cmdline and str(self.properties).encode() in cmdline else None

    def _log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("stdout.log", "server.log"):
            path = self.log_dir / name
            if path.exists():
                text += (
                    f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
                )
        return text or "(no log written)"

    def _java(self) -> str:
        java = shutil.which(self.settings.local_kafka.java)
        if java is None:
            raise LocalStackError("Java 17+ is needed for the local broker; install it or use Docker")
        return java


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True

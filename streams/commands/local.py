"""The local development stack (``deploy/local``): ``dampak up``, ``down``, ``status`` and ``demo``.
The dev tools are imported here, by the commands, never by the runtime."""

from __future__ import annotations

import argparse
import json
import logging

from streams.settings import Settings

__all__ = ["cmd_demo", "cmd_down", "cmd_status", "cmd_up"]

logger = logging.getLogger(__name__)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka
    from streams.ops.admin import check_kafka, ensure_topics

    local = LocalKafka(settings, secure=True if args.secure else None, brokers=args.brokers)
    result = local.up()
    if result == "external":
        print(f"using the Kafka cluster at {settings.kafka.bootstrap_servers} (nothing started locally)")
        check_kafka(settings)
        print(f"topics ready ({len(ensure_topics(settings))} created)")
        return 0
    kind = f"{local.brokers} nodes" if local.brokers > 1 else "node"
    mode = "SASL_SSL (SCRAM-SHA-512)" if local.secure else "PLAINTEXT"
    print(f"Kafka {settings.local_kafka.version} {result}: {kind} at {local.bootstrap_servers}, {mode}")
    created = ensure_topics(settings.model_copy(update={"kafka": local.client_kafka()}))
    print(f"topics ready ({len(created)} created)")
    if local.secure or local.brokers > 1:
        print(f"settings for every dampak command: {local.env_file}  (set -a; . {local.env_file}; set +a)")
    if settings.privacy.uses_default_key and not settings.dev_mode:
        print("for local development, run the worker with DAMPAK_DEV_MODE=true (built-in pseudonym key)")
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka

    stopped = LocalKafka(settings).down()
    print("Kafka stopped" if stopped else "no local Kafka started by dampak is running")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.broker import LocalKafka
    from sinks.connection import holder

    st = LocalKafka(settings).status()
    worker = holder(settings.clickhouse_target)
    report = {
        "kafka": {
            "bootstrap_servers": st.bootstrap_servers,
            "local": st.managed,
            "answering": st.answering,
            "pid": st.pid,
            "log": str(st.log_file) if st.log_file else None,
        },
        "clickhouse": settings.redacted()["clickhouse"]["dsn"],
        "worker": worker,
    }
    print(json.dumps(report, indent=2))
    return 0 if st.answering else 1


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.local.demo import run_demo

    return run_demo(settings, keep_running=args.keep_running)

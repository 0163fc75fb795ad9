"""``dampak lag``: consumer lag per partition with its status, once or every few seconds
(the sampling is ``streams.ops.lag``, shared with the worker's timer)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from streams.commands.cli_output import print_rows
from streams.settings import Settings

__all__ = ["cmd_lag"]

logger = logging.getLogger(__name__)


def cmd_lag(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from streams.ops.admin import check_kafka
    from streams.ops.lag import LagMonitor

    check_kafka(settings)
    monitor = LagMonitor(settings, history_file=settings.data_dir / "lag-history.json")
    try:
        while True:
            groups = monitor.sample(args.group)
            if args.json:
                print(json.dumps([g.as_dict() for g in groups]), flush=True)
            else:
                for g in groups:
                    print(f"group {g.group}: {g.status} ({g.members} members)")
                    rows = [
                        (p.topic, p.partition, p.committed, p.end, p.lag, p.lag_seconds, p.status)
                        for p in g.partitions
                    ]
                    cols = ["topic", "partition", "committed", "log_end", "lag", "lag_seconds", "status"]
                    print_rows(cols, rows, "table", sys.stdout)
                sys.stdout.flush()
            if not args.watch:
                return 0
            time.sleep(args.watch)
    finally:
        monitor.close()

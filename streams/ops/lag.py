"""Consumer lag of the app's groups, with kafka-python: sampling, history and Burrow-style status.

Used by ``dampak lag`` (history kept in ``<data dir>/lag-history.json`` between runs) and by the
worker (samples every ``lag.sample_interval_s`` into Prometheus gauges and ClickHouse).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import CoordinatorNotAvailableError

from streams.domain.lag import (
    GroupLag,
    GroupStatus,
    PartitionLag,
    Sample,
    Status,
    evaluate_group,
    evaluate_partition,
    lag_of,
)
from streams.settings import Settings
from streams.topics import group_topics

__all__ = ["LagMonitor"]

logger = logging.getLogger(__name__)


class LagMonitor:
    """Samples committed and log-end offsets; keeps a sliding window of samples per partition."""

    def __init__(self, settings: Settings, history_file: Path | None = None) -> None:
        self.settings = settings
        self.history_file = history_file
        self.history: dict[tuple[str, str, int], list[Sample]] = defaultdict(list)
        if history_file is not None and history_file.exists():
            self._load(history_file)
        opts = {"bootstrap_servers": settings.kafka.bootstrap_servers, **settings.kafka.client_options()}
        self._admin = KafkaAdminClient(**opts)
        # Reads one message per lagging partition (for its timestamp): keep fetches small and skip
        # kafka-python's pure-Python CRC checks, which would compete with a worker for the GIL.
        self._consumer = KafkaConsumer(
            **opts,
            group_id=None,
            enable_auto_commit=False,
            check_crcs=False,
            max_partition_fetch_bytes=settings.lag.fetch_bytes,
        )

    def close(self) -> None:
        self._admin.close()
        self._consumer.close()

    def groups(self) -> list[str]:
        """The app's consumer groups: its id, and any group prefixed by it."""
        app_id = self.settings.app_id
        found = [g["group_id"] if isinstance(g, dict) else g[0] for g in self._admin.list_groups()]
        return sorted(g for g in found if g == app_id or g.startswith(f"{app_id}-")) or [app_id]

    def sample(self, groups: list[str] | None = None) -> list[GroupLag]:
        """Take one sample of every group and evaluate it over the window."""
        groups = groups or self.groups()
        now = time.time()
        described, committed_by_group = self._group_state(groups)
        out = []
        for group in groups:
            topics = set(group_topics(group, self.settings))
            committed = {
                tp: meta.offset
                for tp, meta in committed_by_group.get(group, {}).items()
                if tp.topic in topics
            }
            tps = sorted(set(committed) | set(self._subscribed_partitions(group)))
            if not tps:
                out.append(GroupLag(group, GroupStatus.OK.name, _members(described, group), []))
                continue
            ends = self._offsets(tps, OffsetSpec.LATEST)
            starts = self._offsets(tps, OffsetSpec.EARLIEST)
            samples = {}
            for tp in tps:
                c = committed.get(tp)
                samples[tp] = Sample(at=now, committed=c if c is not None and c >= 0 else None,
                                     end=ends[tp], start=starts[tp])  # fmt: skip
            members = _members(described, group)
            ages = self._oldest_unconsumed_age(
                {
                    tp: s.committed if s.committed is not None else s.start
                    for tp, s in samples.items()
                    if lag_of(s)
                },
                now,
            )
            parts = []
            for tp, s in samples.items():
                hist = self.history[(group, tp.topic, tp.partition)]
                hist.append(s)
                del hist[: max(0, len(hist) - 500)]
                status = evaluate_partition(
                    hist, self.settings.lag.window_s, self.settings.lag.allowed_lag, members > 0
                )
                parts.append(
                    PartitionLag(group, tp.topic, tp.partition, s.committed, s.end, lag_of(s),
                                 round(ages.get(tp, 0.0), 3), status.name)
                )  # fmt: skip
            group_status = evaluate_group([Status[p.status] for p in parts])
            out.append(GroupLag(group, group_status.name, members, parts))
        if self.history_file is not None:
            self._save(self.history_file)
        return out

    # ------------------------------------------------------------------ helpers
    def _group_state(self, groups: list[str]) -> tuple[Any, dict[str, Any]]:
        """Members and committed offsets of ``groups``. A new cluster has no group coordinator
        until the first group asks for one: wait for it briefly (it is created on request)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return self._admin.describe_groups(groups), self._admin.list_group_offsets(groups)
            except CoordinatorNotAvailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _subscribed_partitions(self, group: str) -> list[TopicPartition]:
        """Every partition the group reads, committed or not (a partition never committed counts
        from its start)."""
        out = []
        for topic in sorted(group_topics(group, self.settings)):
            parts = self._consumer.partitions_for_topic(topic) or set()
            out += [TopicPartition(topic, p) for p in sorted(parts)]
        return out

    def _offsets(self, tps: list[TopicPartition], spec: Any) -> dict[TopicPartition, int]:
        result = self._admin.list_partition_offsets({tp: spec for tp in tps})
        return {tp: int(v.offset) for tp, v in result.items()}

    def _oldest_unconsumed_age(
        self, positions: dict[TopicPartition, int], now: float
    ) -> dict[TopicPartition, float]:
        """Seconds since the first unconsumed message of each lagging partition was produced."""
        if not positions:
            return {}
        self._consumer.assign(list(positions))
        for tp, offset in positions.items():
            self._consumer.seek(tp, offset)
        ages: dict[TopicPartition, float] = {}
        deadline = time.monotonic() + 3.0
        while len(ages) < len(positions) and time.monotonic() < deadline:
            for tp, records in self._consumer.poll(timeout_ms=500, max_records=len(positions)).items():
                if tp not in ages and records:
                    ages[tp] = max(0.0, now - records[0].timestamp / 1000.0)
                    self._consumer.pause(tp)
        self._consumer.assign([])
        return ages

    def _load(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        for key, samples in raw.items():
            group, topic, partition = key.rsplit("|", 2)
            self.history[(group, topic, int(partition))] = [Sample(**s) for s in samples]

    def _save(self, path: Path) -> None:
        horizon = time.time() - 3 * self.settings.lag.window_s
        data = {
            f"{g}|{t}|{p}": [asdict(s) for s in samples if s.at >= horizon][-200:]
            for (g, t, p), samples in self.history.items()
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))


def _members(described: Any, group: str) -> int:
    info = described.get(group, {}) if isinstance(described, dict) else {}
    members = info.get("members", []) if isinstance(info, dict) else []
    return len(members)

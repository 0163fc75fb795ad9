"""Consumer-lag evaluation after Burrow's rules, over a sliding window of offset samples (pure).

Per partition, over the samples in the window:
- OK:    lag was at or below the allowed lag at some point in the window (or it is shrinking);
- WARN:  the committed offset advances but lag grows;
- STALL: the committed offset does not move while lag > 0: for a whole window while the group
         has a consumer (it is there, but stuck), at once while it has none;
- STOP:  no commits for longer than the window, and no consumer in the group;
and a group takes the worst partition status, with STALL and STOP counted as ERR.

A committed offset is the *next* offset to read, so lag = log-end offset - committed offset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from itertools import pairwise
from typing import Any

__all__ = [
    "GroupLag",
    "GroupStatus",
    "PartitionLag",
    "Sample",
    "Status",
    "evaluate_group",
    "evaluate_partition",
    "lag_of",
]

logger = logging.getLogger(__name__)


class Status(IntEnum):
    """Partition status; the numeric value is ``dampak_consumergroup_status`` for groups."""

    OK = 0
    WARN = 1
    STALL = 2
    STOP = 3


class GroupStatus(IntEnum):
    OK = 0
    WARN = 1
    ERR = 2


@dataclass(frozen=True)
class Sample:
    at: float  # unix seconds
    committed: int | None  # next offset to read; None when the group never committed
    end: int  # log-end offset (the offset the next produced message will get)
    start: int = 0  # log-start offset (where an uncommitted consumer begins)


def lag_of(sample: Sample) -> int:
    base = sample.committed if sample.committed is not None else sample.start
    return max(0, sample.end - base)


def evaluate_partition(
    samples: Sequence[Sample], window_s: float, allowed_lag: int, consumer_active: bool = False
) -> Status:
    """Status of one partition from its samples (oldest first); the last sample is "now".

    A committed offset that does not move while lag > 0 is STALL while the group has active
    members (a consumer is there but stuck, e.g. on a failing write), and STOP once it has not
    moved for longer than the window with no consumer in the group.
    """
    if not samples:
        return Status.OK
    now = samples[-1].at
    window = [s for s in samples if s.at >= now - window_s] or [samples[-1]]
    lags = [lag_of(s) for s in window]
    if min(lags) <= allowed_lag:
        return Status.OK
    committed = [s.committed for s in window]
    if all(c == committed[-1] for c in committed):
        unchanged_since = min(s.at for s in samples if s.committed == committed[-1])
        unchanged_s = now - unchanged_since
        if not consumer_active:
            return Status.STOP if unchanged_s > window_s else Status.STALL
        # With a consumer there, judged on a full window only, as Burrow does: in a burst, a
        # partition whose turn has not come yet (its offset is committed a few seconds later)
        # is not a stuck one.
        if unchanged_s >= window_s:
            return Status.STALL
    if all(b >= a for a, b in pairwise(lags)) and lags[-1] > lags[0]:
        return Status.WARN
    return Status.OK


def evaluate_group(statuses: Sequence[Status]) -> GroupStatus:
    """The worst partition status, STALL and STOP counted as ERR."""
    worst = max(statuses, default=Status.OK)
    if worst >= Status.STALL:
        return GroupStatus.ERR
    return GroupStatus.WARN if worst is Status.WARN else GroupStatus.OK


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    lag_seconds: float
    status: str


@dataclass(frozen=True)
class GroupLag:
    group: str
    status: str
    members: int
    partitions: list[PartitionLag]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "partitions": [asdict(p) for p in self.partitions]}

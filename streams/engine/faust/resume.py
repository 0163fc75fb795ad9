"""After a rebalance, stream partitions are sought to their committed offsets *before* they are
resumed, never after.

faust-streaming ends a rebalance (``Recovery.on_recovery_completed``) by resuming the stream partitions
and then seeking them to their committed offsets. Between the two, its fetcher may already hand
over records of a resumed partition, fetched ahead while the tables were restored from their
changelogs, and it remembers the highest offset it handed over (``Consumer._read_offset``). The
seek then moves the partition back to its committed offset, and the fetcher drops every record
below the remembered offset as already read ("DROPPED MESSAGE ROFF", logged at Faust's dev level
only). The records that were fetched ahead but never delivered are never delivered: no handler
sees them and the committed offset stops in front of them until the worker restarts.

Seen in ``tests/integration/test_writer_split.py`` with standby replicas off, where a worker that
takes partitions back restores them from their changelogs first: in about one run in five a few
hundred reports of those partitions were missing (with standby replicas the restore has nothing
to read and the window was too short to hit). Sought first, a paused partition has no records to
hand over, so the fetcher's read offset and the consumer's position agree when it resumes.

The seek must also reach partitions that have no committed offset yet. During the rebalance the
fetcher can take records of a stream partition from aiokafka and then drop them, because Faust
has meanwhile taken the partition out of its active set (it hands aiokafka that set, mutable,
from its own thread): aiokafka's position has moved past them. The seek to the committed offset
is what brings them back, but aiokafka's ``seek_to_committed`` seeks only to a committed offset
above 0, so a partition nobody has committed yet (a new topic or a new group, and every partition
two workers start on together) kept its position after the dropped records: they were never
handled, and the partition was never committed (its lag never reached 0; or, had later records
been handled, the commit would have passed them). Such partitions are sought to their start here,
where ``auto_offset_reset="earliest"`` would have begun them.
"""

# Works around faust-streaming 0.15.3 ``Recovery.on_recovery_completed`` (faust/tables/recovery.py)
# calling ``consumer.resume_partitions`` before ``consumer.perform_seek``: the order faust-streaming
# PR #217 (issue #216) fixed in ``Recovery._resume_streams`` only, for apps without tables; and
# aiokafka 0.14 ``AIOKafkaConsumer.seek_to_committed`` seeking only to an offset above 0
# (aiokafka/consumer/consumer.py: ``if offset and offset > 0``).

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.recovery import Recovery

__all__ = ["seek_before_resuming"]

_PATCHED = "_dampak_seek_before_resuming"


def seek_before_resuming() -> None:
    """Patch Faust's recovery (once per process)."""
    if not getattr(Recovery, _PATCHED, False):
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
        setattr(Recovery, _PATCHED, True)


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` (the end of every rebalance of an app with tables), with
    the seek before the resume."""
    app = self.app
    consumer = app.consumer
    self.log.info("Restore complete!")
    await app.on_rebalance_complete.send()
    self._set_recovery_ended()
    completions = [
        asyncio.ensure_future(
            table.on_recovery_completed(self.actives_for_table[table], self.standbys_for_table[table])
        )
        for table in self.tables.values()
    ]
    if completions:
        await asyncio.wait(completions)
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again app id %s param %s", app.consumer_generation_id,
                         generation_id)  # fmt: skip
        return
    streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(_seek_to_committed(app, streams), timeout=app.conf.broker_request_timeout)
    consumer.resume_partitions(streams)
    self.completed.set()
    app.flow_control.resume()
    consumer.resume_flow()
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


async def _seek_to_committed(app: Any, streams: set[Any]) -> None:
    """Every partition to its committed offset, and stream partitions without one (or with 0,
    which aiokafka does not seek to either) to their start."""
    consumer = app.consumer
    await consumer.perform_seek()
    if app.conf.consumer_auto_offset_reset != "earliest":
        return
    # perform_seek keeps an offset only when it is above 0.
    uncommitted = {tp: 0 for tp in streams if not consumer._committed_offset.get(tp)}
    if uncommitted:
        await consumer.seek_wait(uncommitted)

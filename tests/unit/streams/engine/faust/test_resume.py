"""The end of a rebalance seeks the stream partitions before it resumes them
(streams/engine/faust/resume.py)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from faust.tables.recovery import Recovery

from streams.engine.faust.resume import _on_recovery_completed, seek_before_resuming

CHANGELOG = "app-registry-changelog"


class _Calls(list[str]):
    def note(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.append(name)

        return record

    def note_async(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.append(name)

        return record


class _Namespace:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


class _Tables(dict[str, Any]):
    def __init__(self, calls: _Calls) -> None:
        super().__init__(registry=_Namespace(on_recovery_completed=calls.note_async("table completed")))
        self.on_actives_ready = calls.note("actives ready")
        self.on_standbys_ready = calls.note("standbys ready")


Committed = dict[Any, int | None]


def _recovery(calls: _Calls, generation: int, assigned: set[Any], committed: Committed | None = None) -> Any:
    resumed: list[set[Any]] = []
    sought: list[dict[Any, int]] = []

    def resume_partitions(tps: set[Any]) -> None:
        calls.append("resume partitions")
        resumed.append(tps)

    async def seek_wait(partitions: dict[Any, int]) -> None:
        calls.append("seek to start")
        sought.append(partitions)

    consumer = _Namespace(
        assignment=lambda: assigned,
        perform_seek=calls.note_async("seek"),
        seek_wait=seek_wait,
        # Faust's map after perform_seek: committed offsets above 0, the rest None.
        _committed_offset=dict(committed or {}),
        resume_partitions=resume_partitions,
        resume_flow=calls.note("resume flow"),
    )
    app = _Namespace(
        consumer=consumer,
        consumer_generation_id=generation,
        conf=_Namespace(broker_request_timeout=5.0, consumer_auto_offset_reset="earliest"),
        on_rebalance_complete=_Namespace(send=calls.note_async("rebalance complete")),
        flow_control=_Namespace(resume=calls.note("resume flow control")),
        _fetcher=_Namespace(maybe_start=calls.note_async("fetcher started")),
        assignor=_Namespace(assigned_standbys=lambda: set()),
        on_rebalance_end=calls.note("rebalance end"),
    )
    tables = _Tables(calls)

    async def wait(coro: Any, timeout: float | None = None) -> None:
        await coro

    return _Namespace(
        app=app,
        log=_Namespace(info=calls.note("log"), warning=calls.note("warning")),
        tables=tables,
        actives_for_table={tables["registry"]: set()},
        standbys_for_table={tables["registry"]: set()},
        completed=asyncio.Event(),
        _set_recovery_ended=calls.note("recovery ended"),
        _is_changelog_tp=lambda tp: tp[0] == CHANGELOG,
        _wait=wait,
        resumed=resumed,
        sought=sought,
    )


def test_stream_partitions_are_sought_before_they_are_resumed() -> None:
    calls = _Calls()
    assigned = {("app-field-reports", 0), ("app-field-reports", 1), (CHANGELOG, 0)}
    recovery = _recovery(calls, generation=3, assigned=assigned)

    asyncio.run(_on_recovery_completed(recovery, generation_id=3))

    order = [c for c in calls if c != "log"]
    assert order.index("seek") < order.index("resume partitions") < order.index("resume flow")
    # The changelog partitions stay paused.
    assert recovery.resumed == [{("app-field-reports", 0), ("app-field-reports", 1)}]
    assert recovery.completed.is_set()
    assert order[-1] == "rebalance end"


def test_stream_partitions_without_a_committed_offset_are_sought_to_their_start() -> None:
    """aiokafka seeks only to a committed offset above 0: records fetched and dropped during the
    rebalance on a partition nobody has committed would never be handled."""
    calls = _Calls()
    reports = [("app-field-reports", p) for p in range(3)]
    assigned = {*reports, (CHANGELOG, 0)}
    committed: Committed = {reports[0]: 120, reports[1]: None}
    recovery = _recovery(calls, generation=2, assigned=assigned, committed=committed)

    asyncio.run(_on_recovery_completed(recovery, generation_id=2))

    # Committed at 0 (None in Faust's map) and never committed: both from their start; the
    # committed one and the changelog (restored by the tables) are left alone.
    assert recovery.sought == [{reports[1]: 0, reports[2]: 0}]
    order = [c for c in calls if c != "log"]
    assert order.index("seek") < order.index("seek to start") < order.index("resume partitions")


def test_a_rebalance_begun_meanwhile_resumes_nothing() -> None:
    calls = _Calls()
    recovery = _recovery(calls, generation=4, assigned={("app-field-reports", 0)})

    asyncio.run(_on_recovery_completed(recovery, generation_id=3))

    assert "seek" not in calls and "resume partitions" not in calls and "warning" in calls
    assert not recovery.completed.is_set()


def test_the_patch_replaces_faust_own_method_of_the_same_signature() -> None:
    original = Recovery.on_recovery_completed
    seek_before_resuming()
    assert Recovery.on_recovery_completed is _on_recovery_completed
    ours = inspect.signature(_on_recovery_completed).parameters
    assert list(inspect.signature(original).parameters) == list(ours)

"""Faust's acks of messages fetched in an earlier group generation are refused
(streams/engine/faust/acks.py)."""

from __future__ import annotations

from types import SimpleNamespace

from streams.engine.faust.acks import guarded


def test_faust_acks_of_an_earlier_generation_are_refused() -> None:
    """Faust acks the messages its stream skips after a rebalance; they must not move offsets."""
    recorded: list[int] = []

    def ack(consumer: object, message: SimpleNamespace) -> bool:
        recorded.append(message.offset)
        return True

    consumer = SimpleNamespace(app=SimpleNamespace(consumer_generation_id=7))
    checked = guarded(ack)
    old = SimpleNamespace(generation_id=6, tp="t-0", offset=10)
    now = SimpleNamespace(generation_id=7, tp="t-0", offset=11)
    untracked = SimpleNamespace(generation_id=None, tp="t-0", offset=12)
    assert [checked(consumer, m) for m in (old, now, untracked)] == [False, True, True]
    assert recorded == [11, 12]

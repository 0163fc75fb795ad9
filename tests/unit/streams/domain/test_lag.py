"""Burrow-style evaluation of lag windows."""

from __future__ import annotations

from streams.domain.lag import GroupStatus, Sample, Status, evaluate_group, evaluate_partition, lag_of


def _s(at: float, committed: int | None, end: int) -> Sample:
    return Sample(at=at, committed=committed, end=end)


def test_lag_is_log_end_minus_the_next_offset_to_read() -> None:
    assert lag_of(_s(0, 10, 10)) == 0  # committed 10 = next to read is 10; nothing left
    assert lag_of(_s(0, 10, 13)) == 3
    assert lag_of(Sample(at=0, committed=None, end=13, start=5)) == 8


def test_ok_when_lag_touched_zero_in_the_window() -> None:
    assert evaluate_partition([_s(0, 5, 5), _s(10, 5, 9)], 60, 0) is Status.OK


def test_warn_when_offsets_advance_but_lag_grows() -> None:
    assert evaluate_partition([_s(0, 5, 10), _s(10, 7, 20), _s(20, 9, 30)], 60, 0) is Status.WARN


def test_ok_when_catching_up() -> None:
    assert evaluate_partition([_s(0, 5, 30), _s(10, 20, 30), _s(20, 25, 30)], 60, 0) is Status.OK


def test_stall_or_stop_when_the_committed_offset_does_not_move_for_a_whole_window() -> None:
    samples = [_s(0, 5, 10), _s(30, 5, 12)]
    # Unmoved for 30 s of a 60 s window: not judged yet (a burst's partition waiting for its
    # turn), only its growing lag shows.
    assert evaluate_partition(samples, 60, 0, consumer_active=True) is Status.WARN
    assert evaluate_partition([_s(0, 5, 10)], 60, 0, consumer_active=True) is Status.OK  # one sample
    assert evaluate_partition(samples, 60, 0) is Status.STALL  # nobody there: nothing will move it
    samples.append(_s(90, 5, 12))
    assert evaluate_partition(samples, 60, 0) is Status.STOP  # unmoved for 90 s > 60 s, nobody there
    assert evaluate_partition(samples, 60, 0, consumer_active=True) is Status.STALL  # there, but stuck


def test_allowed_lag_and_group_status() -> None:
    assert evaluate_partition([_s(0, 5, 8)], 60, allowed_lag=3) is Status.OK
    assert evaluate_group([Status.OK, Status.WARN]) is GroupStatus.WARN
    assert evaluate_group([Status.OK, Status.STALL]) is GroupStatus.ERR
    assert evaluate_group([Status.STOP]) is GroupStatus.ERR
    assert evaluate_group([]) is GroupStatus.OK

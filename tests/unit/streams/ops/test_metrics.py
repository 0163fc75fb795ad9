"""The batch histogram reads as prometheus_client's own histogram does, for the same values."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.ops.metrics import BatchHistogram

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5)
VALUES = [0.0, 0.05, 0.0500001, 0.3, 0.5, 0.99, 1.0, 4.2, 7.5, 300.0, 0.1]


def _samples(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line.startswith("h_") and "_created" not in line]


def test_a_batch_histogram_exposes_what_a_histogram_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("h_seconds", "help", BUCKETS, registry=ours)
    reference = Histogram("h_seconds", "help", buckets=BUCKETS, registry=theirs)
    batch.observe_all(VALUES[:4])
    batch.observe_all(VALUES[4:])
    batch.observe_all([])
    for value in VALUES:
        reference.observe(value)
    assert _samples(ours) == _samples(theirs)
    assert 'h_seconds_bucket{le="0.05"} 2.0' in _samples(ours)  # a bound counts as inside
    assert "h_seconds_count 11.0" in _samples(ours)

"""What one table read and one table write cost a handler: a Faust table with its JSON codec
against ``TableState`` on a raw table, both on RocksDB, in one process (no broker: a write's
changelog record is queued, in Faust's producer buffer or in ``Changelog`` as in a worker, and
not sent; publishing a batch of them is measured with the worker). The ways take turns for five
rounds; the median round is reported.

    python -m tests.bench.tables [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
import weakref
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import faust
from faust.streams import _current_event

from sinks.config import Backoff
from streams.engine.faust.changelog import AioBatchSender, Changelog
from streams.engine.faust.state import TableState, encode

#: A report's stored copy, as decide_report writes it.
VALUE = {
    "revision": 2,
    "digest": "9f2c4e1a7b3d5c6e",
    "copy": 1,
    "position": 123456789,
    "household_id": "3201",
}


ROUNDS = 5


class _Event:
    def __init__(self, topic: str) -> None:
        self.message = SimpleNamespace(partition=0, topic=topic)


async def _measure(n: int) -> dict[str, dict[str, float]]:
    app = faust.App("bench-tables", store="rocksdb://", datadir=tempfile.mkdtemp())
    faust_json = app.Table("json", default=None, partitions=6)
    raw = app.Table("raw", default=None, partitions=6, key_type=bytes, value_type=bytes)
    app.finalize()
    event = _Event("source")
    faust_json._verified_source_topics_for_partitions.add("source")
    token = _current_event.set(weakref.ref(event))
    state, store = TableState(raw, Changelog(AioBatchSender(lambda: None), Backoff())), raw.data
    ways: dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]] = {
        "Faust table (JSON codec)": (lambda k: faust_json.__setitem__(k, VALUE), faust_json.get),
        "TableState (raw table)": (lambda k: state.__setitem__(k, VALUE), state.get),
        "the RocksDB store alone (no changelog)": (
            lambda k: store._set(encode(k), encode(VALUE)),
            lambda k: store._get(encode(k)),
        ),
    }
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in ways}
    try:
        for round_ in range(ROUNDS):  # the ways take turns; the median round is reported
            for label, (write, read) in ways.items():
                gc.collect()
                t0 = time.perf_counter()
                for i in range(n):
                    write(f"r{round_}-{i}")
                t1 = time.perf_counter()
                for i in range(n):  # half hits, half misses
                    read(f"r{round_}-{i}" if i % 2 else f"absent-{i}")
                t2 = time.perf_counter()
                samples[label].append(((t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6))
    finally:
        _current_event.reset(token)
    return {
        label: {
            "write_us": round(statistics.median(w for w, _ in s), 1),
            "read_us": round(statistics.median(r for _, r in s), 1),
        }
        for label, s in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    print("| way | one write (with its changelog record queued) | one read (half misses) |")
    print("|---|---:|---:|")
    for label, r in asyncio.run(_measure(args.n)).items():
        print(f"| {label} | {r['write_us']} µs | {r['read_us']} µs |")


if __name__ == "__main__":
    main()

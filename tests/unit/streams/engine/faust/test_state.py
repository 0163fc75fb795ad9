"""TableState reads a serialized store once per read, and writes to the store (RocksDB: in one
write batch per partition, when the changelog is flushed) and to the changelog in the current
event's partition."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.stores.base import SerializedStore
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event

from streams.engine.faust.state import TableState


class _DictStore(SerializedStore):  # type: ignore[type-arg]
    def __init__(self, app: faust.App, table: Any) -> None:
        super().__init__("dict://", app, table, table_name="t")
        self.raw: dict[bytes, bytes] = {}
        self.gets = 0

    def _get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return self.raw.get(key)

    def _set(self, key: bytes, value: bytes | None) -> None:
        assert value is not None
        self.raw[key] = value

    def _del(self, key: bytes) -> None:
        self.raw.pop(key, None)

    def _iterkeys(self) -> Iterator[bytes]:
        return iter(self.raw)

    def _itervalues(self) -> Iterator[bytes | None]:
        return iter(self.raw.values())

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.raw.items())

    def _size(self) -> int:
        return len(self.raw)

    def _contains(self, key: bytes) -> bool:
        self.gets += 1
        return key in self.raw

    def _clear(self) -> None:
        self.raw.clear()

    def reset_state(self) -> None:
        self.raw.clear()

    def backup_partition(self, tp: Any, flush: bool = True, purge: bool = False, keep: int = 1) -> None:
        raise NotImplementedError

    def restore_backup(self, tp: Any, latest: bool = True, backup_id: int = 0) -> None:
        raise NotImplementedError


class _Table:
    """A Faust table's surface that TableState uses: its store and its changelog topic."""

    def __init__(self, app: faust.App) -> None:
        self.data = _DictStore(app, self)
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-t-changelog")


class _Event:
    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


class _RocksStore(RocksDBStore):
    """Faust's RocksDB store, its partitions' databases opened under ``root``."""

    def __init__(self, root: Path) -> None:  # Faust's needs an app and a table: not what is tested
        self._dbs = {}
        self.rocksdb_options = RocksDBOptions()
        self.root = root

    def _open_for_partition(self, partition: int) -> Any:
        return self.rocksdb_options.open(self.root / f"p{partition}")


class _Changelog:
    def __init__(self) -> None:
        self.changes: list[tuple[str, int, bytes, bytes | None]] = []
        self.writers: list[Any] = []

    def before_publishing(self, write: Any) -> None:
        self.writers.append(write)

    def flush(self) -> None:
        for write in self.writers:
            write()

    def add(self, store: Any, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        self.changes.append((topic, partition, key, value))


def test_reads_look_up_the_store_once_and_writes_reach_the_changelog_as_faust_json() -> None:
    app = faust.App("state-test")
    table, changelog = _Table(app), _Changelog()
    state = TableState(table, changelog)  # type: ignore[arg-type]
    doc = {"seq": 3, "desil": 2, "programs": ["PKH"], "lat": -6.5, "note": "é"}
    event = _Event(partition=4)
    token = _current_event.set(weakref.ref(event))
    try:
        state["h1"] = doc
        # The bytes Faust's JSON codec writes: stores and changelogs written before read the same.
        key, value = (
            app.serializers.dumps_key(None, "h1", serializer="json"),
            app.serializers.dumps_value(None, doc, serializer="json"),
        )
        assert changelog.changes == [("app-t-changelog", 4, key, value)]
        assert table.data.raw == {key: value}
        table.data.gets = 0
        assert state.get("h1") == doc
        assert table.data.gets == 1
        assert state.get("absent") is None and state.get("absent", []) == []
        assert "h1" in state and "absent" not in state
        assert list(state) == ["h1"] and len(state) == 1
        del state["h1"]
        assert changelog.changes[-1] == ("app-t-changelog", 4, key, None) and state.get("h1") is None
    finally:
        _current_event.reset(token)


def test_a_change_outside_an_event_is_refused() -> None:
    state = TableState(_Table(faust.App("state-test")), _Changelog())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        state["h1"] = {}


def test_rocksdb_changes_are_read_at_once_and_written_in_one_batch_per_partition_at_the_flush(
    tmp_path: Path,
) -> None:
    table, changelog = _Table(faust.App("state-test")), _Changelog()
    store = table.data = _RocksStore(tmp_path)  # type: ignore[assignment]
    state = TableState(table, changelog)  # type: ignore[arg-type]
    one, two = _Event(partition=1), _Event(partition=2)
    token = _current_event.set(weakref.ref(one))
    try:
        state["h0"] = {"seq": 0}
        changelog.flush()  # an earlier batch's change, in the store
        state["h1"], state["h2"] = {"seq": 1}, {"seq": 2}
        del state["h0"]
        state["h2"] = {"seq": 3}
        # Read back before the flush, from the unwritten changes; not yet in the store.
        assert state.get("h1") == {"seq": 1} and state.get("h2") == {"seq": 3} and state.get("h0") is None
        db = store._db_for_partition(1)
        assert db.get(b'"h1"') is None and db.get(b'"h0"') == b'{"seq":0}'
        assert [c[2:] for c in changelog.changes[1:]] == [
            (b'"h1"', b'{"seq":1}'), (b'"h2"', b'{"seq":2}'), (b'"h0"', None), (b'"h2"', b'{"seq":3}'),
        ]  # fmt: skip
        _current_event.reset(token)
        token = _current_event.set(weakref.ref(two))
        assert state.get("h1") is None  # another partition's changes are not its own
        changelog.flush()
        assert db.get(b'"h1"') == b'{"seq":1}' and db.get(b'"h2"') == b'{"seq":3}' and db.get(b'"h0"') is None
        assert store._db_for_partition(2).get(b'"h1"') is None
        _current_event.reset(token)
        token = _current_event.set(weakref.ref(one))
        assert state.get("h2") == {"seq": 3} and state.get("h0") is None  # now from the store
    finally:
        _current_event.reset(token)

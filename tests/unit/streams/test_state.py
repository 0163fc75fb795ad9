"""TableState reads a serialized store once per read and writes through the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from faust.stores.base import SerializedStore

from streams.engine.state import TableState


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


class _Table(dict[bytes, Any]):
    """A Faust table's surface: a mapping whose changes are seen (as its changelog would be)."""

    def __init__(self, app: faust.App) -> None:
        super().__init__()
        self.data = _DictStore(app, self)
        self.changes: list[tuple[bytes, Any]] = []

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.changes.append((key, value))
        super().__setitem__(key, value)
        self.data._set(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.changes.append((key, None))
        super().__delitem__(key)
        self.data._del(key)


def test_reads_look_up_the_store_once_and_writes_go_through_the_table_as_faust_json() -> None:
    app = faust.App("state-test")
    table = _Table(app)
    state = TableState(table)
    doc = {"seq": 3, "desil": 2, "programs": ["PKH"], "lat": -6.5, "note": "é"}
    state["h1"] = doc
    # The bytes Faust's JSON codec writes: stores and changelogs written before read the same.
    key, value = (
        app.serializers.dumps_key(None, "h1", serializer="json"),
        app.serializers.dumps_value(None, doc, serializer="json"),
    )
    assert table.changes == [(key, value)]
    table.data.gets = 0
    assert state.get("h1") == doc
    assert table.data.gets == 1
    assert state.get("absent") is None and state.get("absent", []) == []
    assert "h1" in state and "absent" not in state
    assert list(state) == ["h1"] and len(state) == 1
    del state["h1"]
    assert table.changes[-1] == (key, None) and state.get("h1") is None

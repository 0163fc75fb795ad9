"""Start-up under a fault (issue 27, case 12): the engine's start-up retried in place on an
infrastructure fault only, and local tables ahead of their changelogs named in one line."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import rocksdict
from aiokafka import TopicPartition
from clickhouse_connect.driver.exceptions import DatabaseError

import streams.runtime.restore as restore
import streams.runtime.startup as startup
from sinks.errors import RowsRejected
from streams.errors import DampakError
from streams.settings import Settings


def _ch_error(code: int, text: str) -> DatabaseError:
    exc = DatabaseError(f"Code: {code}. DB::Exception: {text}")
    exc.code = code
    return exc


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The start-up's ClickHouse calls, each failing with what ``faults`` holds for it, in order."""
    faults: dict[str, list[BaseException]] = {"connect": [], "init_db": [], "check": []}
    calls: dict[str, int] = {"connect": 0, "init_db": 0, "check": 0, "sleeps": 0}

    def step(name: str, result: Any = None) -> Any:
        calls[name] += 1
        if faults[name]:
            raise faults[name].pop(0)
        return result

    monkeypatch.setattr("sinks.connection.connect", lambda target: step("connect", "client"))
    monkeypatch.setattr("sinks.migrations.init_db", lambda *a, **k: step("init_db", []))
    monkeypatch.setattr("streams.runtime.startup.check_no_rotation_pending", lambda *a, **k: step("check"))
    monkeypatch.setattr(
        "streams.runtime.startup.time.sleep", lambda s: calls.__setitem__("sleeps", calls["sleeps"] + 1)
    )
    return {"faults": faults, "calls": calls}


def _target() -> Any:
    return SimpleNamespace(database="dampak", embedded=True)


def test_a_full_disk_at_start_up_is_retried_with_one_line_per_retry(
    engine: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    full = _ch_error(243, "Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)")
    engine["faults"]["check"] = [full, full, full]  # the key id's insert, as on a full disk
    with caplog.at_level(logging.WARNING, logger="streams.runtime.startup"):
        client = startup.open_clickhouse(Settings(), _target())
    assert client == "client"
    assert engine["calls"]["connect"] == 1 and engine["calls"]["check"] == 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and engine["calls"]["sleeps"] == 3, lines
    assert all("NOT_ENOUGH_SPACE" in line and "retrying in" in line and "\n" not in line for line in lines)


def test_a_fault_opening_the_engine_is_retried_too(engine: dict[str, Any]) -> None:
    engine["faults"]["connect"] = [OSError("connection refused")]
    engine["faults"]["init_db"] = [_ch_error(243, "not enough space")]
    assert startup.open_clickhouse(Settings(), _target()) == "client"
    assert engine["calls"]["connect"] == 2 and engine["calls"]["sleeps"] == 2


def test_what_is_not_infrastructure_stops_the_start_at_once(engine: dict[str, Any]) -> None:
    engine["faults"]["check"] = [DampakError("ClickHouse holds pseudonyms of key 'k0'")]
    with pytest.raises(DampakError, match="k0"):
        startup.open_clickhouse(Settings(), _target())
    engine["faults"]["check"] = [_ch_error(69, "argument out of bound")]
    with pytest.raises(RowsRejected):
        startup.open_clickhouse(Settings(), _target())
    assert engine["calls"]["sleeps"] == 0


class _Store:
    """What check_local_state reads of a Faust RocksDB store: real RocksDB files in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rocksdb_options = SimpleNamespace(
            open=lambda p: rocksdict.Rdict(str(p), options=rocksdict.Options(raw_mode=True))
        )

    def partition_path(self, partition: int) -> Path:
        return self.path / f"registry-{partition}.db"

    def persist(self, partition: int, offset: int) -> None:
        db = self.rocksdb_options.open(self.partition_path(partition))
        db.put(restore.OFFSET_KEY, str(offset).encode())
        db.close()


def _tables(store: _Store) -> dict[str, Any]:
    topic = SimpleNamespace(get_topic_name=lambda: "app-registry-changelog")
    return {"registry": SimpleNamespace(changelog_topic=topic, data=store, partitions=3)}


def test_local_tables_ahead_of_their_changelog_are_named_in_one_line_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _Store(tmp_path / "tables")
    store.path.mkdir()
    store.persist(0, 40)  # behind its changelog: fine
    store.persist(1, 31)  # the changelog was reset: it ends at 0
    ends = {TopicPartition("app-registry-changelog", 0): 100}

    async def end_offsets(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        assert sorted(tps) == [TopicPartition("app-registry-changelog", p) for p in (0, 1)]  # no store for 2
        return ends

    monkeypatch.setattr(restore, "_end_offsets", end_offsets)
    with pytest.raises(restore.StaleLocalState) as caught:
        restore.check_local_state(Settings(), _tables(store))
    message = str(caught.value)
    assert "\n" not in message
    assert "app-registry-changelog partition 1: applied up to offset 31, the changelog ends at 0" in message
    assert f"Run `rm -rf {store.path}`" in message
    assert not (store.path / "registry-2.db").exists()  # a store that did not exist is not created


def test_local_tables_behind_or_at_their_changelog_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _Store(tmp_path / "tables")
    store.path.mkdir()
    store.persist(0, 99)

    async def end_offsets(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 100 for tp in tps}

    monkeypatch.setattr(restore, "_end_offsets", end_offsets)
    restore.check_local_state(Settings(), _tables(store))  # raises nothing
    store.persist(0, 100)  # the next offset the changelog has not written yet
    with pytest.raises(restore.StaleLocalState, match="offset 100, the changelog ends at 100"):
        restore.check_local_state(Settings(), _tables(store))

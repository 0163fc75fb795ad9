"""``dampak produce``: logical topic names, an immediate error for an unknown topic, streaming, and
progress."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from streams.cli import main
from streams.errors import DampakError, InvalidMessage
from streams.ops import admin
from streams.ops.progress import Progress, format_duration
from streams.settings import Settings
from streams.topics import Topic, resolve_input


def test_logical_and_physical_names_resolve_through_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAMPAK_KAFKA__TOPIC_PREFIX", "prod-")
    settings = Settings()
    assert resolve_input("households", settings) is Topic.HOUSEHOLDS
    assert resolve_input("prod-field-reports", settings) is Topic.FIELD_REPORTS
    for wrong in ("household", "prod-households-dlq", "impact-notifications", "sink-rows"):
        expected = "input topics are households, field-reports, disaster-alerts, incident-links"
        with pytest.raises(DampakError, match=expected):
            resolve_input(wrong, settings)


def test_an_unknown_topic_exits_2_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No broker answers here: the topic is refused before any connection is tried.
    monkeypatch.setenv("DAMPAK_KAFKA__BOOTSTRAP_SERVERS", "10.255.255.1:9092")
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_:
        main(["produce", "housholds", "-"])
    assert exit_.value.code == 2 and time.monotonic() - started < 5
    assert "unknown topic 'housholds'" in capsys.readouterr().err


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.sent.append((topic, key, value))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_lines_are_published_as_they_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RecordingProducer()
    monkeypatch.setattr(admin, "producer", lambda settings: fake)
    read = 0

    def lines() -> Any:
        nonlocal read
        for i in range(1, 1001):
            read += 1
            # Streaming: every line read before has been sent already.
            assert len(fake.sent) == i - 1
            yield i, b'{"household_id": "H-%d"}' % i

    sent = admin.produce(Settings(), "t", lines(), "household_id")
    assert sent == 1000 == read and fake.sent[-1] == ("t", b"H-1000", b'{"household_id": "H-1000"}')


def test_a_line_without_its_key_stops_with_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = RecordingProducer()
    monkeypatch.setattr(admin, "producer", lambda settings: fake)
    stream = io.BytesIO(b'{"report_id": "a"}\n\n{"report_id": "b"}\n{"other": 1}\n{"report_id": "c"}\n')
    with pytest.raises(InvalidMessage, match=r"line 4: no 'report_id' field .*\(2 messages before it"):
        admin.produce(Settings(), "t", admin.iter_json_lines(stream), "report_id")
    assert [key for _, key, _ in fake.sent] == [b"a", b"b"]


def test_progress_shows_rate_share_and_eta_on_long_runs_only() -> None:
    out = io.StringIO()
    progress = Progress("produce households", total_bytes=1_000, stream=out, quiet_s=0.05, every_s=0.0)
    progress.update(10, 100)
    assert out.getvalue() == ""  # a short run prints nothing
    time.sleep(0.06)
    progress.update(500, 250)
    progress.finish(2_000, 1_000)
    first, last = out.getvalue().splitlines()
    assert first.startswith("produce households: 500 rows, ") and ", 25%, ETA 0:00" in first
    assert last.startswith("produce households: 2,000 rows") and last.endswith(", 100%")
    assert format_duration(3_725) == "1:02:05" and format_duration(65) == "1:05"

"""Progress of a long command on stderr: rows, rows/s and, when the input's size is known, the
share done and the time left. Silent for runs shorter than ``quiet_s`` (a small file prints only
its result), a line every ``every_s`` on a terminal (rewritten in place) and every few seconds
into a log file."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(
        self,
        label: str,
        total_bytes: int | None = None,
        stream: TextIO | None = None,
        quiet_s: float = 2.0,
        every_s: float | None = None,
    ) -> None:
        self.label = label
        self.total_bytes = total_bytes or None
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 5.0)
        self.quiet_s = quiet_s
        self.started = time.monotonic()
        self._next = self.started + quiet_s
        self.shown = False

    def line(self, rows: int, done_bytes: int | None, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        text = f"{self.label}: {rows:,} rows, {rows / elapsed:,.0f} rows/s"
        if self.total_bytes and done_bytes is not None:
            share = min(done_bytes / self.total_bytes, 1.0)
            text += f", {share:.0%}"
            if 0 < share < 1:
                text += f", ETA {format_duration(elapsed * (1 - share) / share)}"
        return text

    def update(self, rows: int, done_bytes: int | None = None) -> None:
        """Cheap unless a line is due: call it for every row."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        self._write(self.line(rows, done_bytes, now))

    def finish(self, rows: int, done_bytes: int | None = None) -> None:
        """The last line, when any line was shown."""
        if self.shown:
            self._write(self.line(rows, done_bytes, time.monotonic()), final=True)

    def _write(self, text: str, final: bool = False) -> None:
        self.shown = True
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

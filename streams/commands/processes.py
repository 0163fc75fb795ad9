"""``dampak worker`` and ``dampak writer``: the runtime's two processes, run until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging

from streams.settings import Settings

__all__ = ["cmd_worker", "cmd_writer"]

logger = logging.getLogger(__name__)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.runtime.worker import run_worker

    return run_worker(settings)


def cmd_writer(settings: Settings, args: argparse.Namespace) -> int:
    from streams.runtime.writer import run_writer

    return run_writer(settings)

"""``dampak produce``: publish a JSON-lines file (or standard input) to an input topic."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import IO

from streams.errors import DampakError
from streams.settings import Settings

__all__ = ["cmd_produce"]

logger = logging.getLogger(__name__)


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.ops.admin import check_kafka, check_topic_exists, iter_json_lines, produce
    from streams.ops.progress import Progress
    from streams.topics import KEY_FIELDS, physical_name, resolve_input

    topic = resolve_input(args.topic, settings)
    name = physical_name(topic, settings)
    key_field = args.key or KEY_FIELDS[topic]
    check_kafka(settings)
    check_topic_exists(settings, name)
    with contextlib.ExitStack() as stack:
        if args.file == "-":
            fh: IO[bytes] = sys.stdin.buffer
            size = None
        else:
            try:
                fh = stack.enter_context(open(args.file, "rb"))
            except OSError as exc:
                raise DampakError(f"cannot read {args.file}: {exc.strerror}") from exc
            size = os.fstat(fh.fileno()).st_size
        progress = Progress(f"produce {topic.value}", size)
        sent = produce(
            settings, name, iter_json_lines(fh), key_field, args.tombstone or (), raw=args.raw,
            progress=progress, position=fh.tell if size else lambda: None,
        )  # fmt: skip
    print(f"published {sent:,} messages to {name}" + (f" (keyed by {key_field})" if key_field else ""))
    return 0

"""What to do with an incoming copy of a report or a registry change, and the row versions that
make "the copy received last stands" hold in ClickHouse (pure).

A report's ``report_state`` row carries ``version = revision << 40 | copy << 20 | household_seq``:

- ``revision`` first: a higher revision always wins;
- ``copy`` counts the distinct copies of the report that dampak accepted, in the order it received
  them on ``field-reports-by-id`` (one partition per report, so the order is total), whatever
  household or village summary each copy names. A copy is its content at its revision: one seen
  before is a duplicate even when another copy stood since (a replay of the input hop can deliver
  earlier copies again, at new positions and in another order), so at most
  ``MAX_COPIES_PER_REVISION`` distinct copies of a revision are remembered and accepted;
- ``household_seq`` counts the registry changes of the household it names, so a re-enrichment of
  the same copy replaces the earlier one.

ReplacingMergeTree keeps the highest version per report; equal versions are the same copy and
registry state, so writing a row twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from enum import StrEnum

__all__ = ["COPY_BITS", "MAX_COPIES_PER_REVISION", "SEQ_BITS", "Revision", "decide_copy", "report_version"]

logger = logging.getLogger(__name__)

SEQ_BITS = 20
COPY_BITS = 20
_SEQ_MAX = (1 << SEQ_BITS) - 1
_COPY_MAX = (1 << COPY_BITS) - 1
#: Distinct copies (contents) of one revision of a report that are accepted and remembered; a
#: further one is refused (publish a higher revision), so a report's state stays bounded.
MAX_COPIES_PER_REVISION = 100


class Revision(StrEnum):
    """The decision about an incoming copy."""

    NEW = "new"  # it stands from now on
    DUPLICATE = "duplicate"  # the copy that stands, again: its rows are written again
    SEEN = "seen"  # an earlier copy of the same revision, again: a duplicate, and the copy that stands stays
    STALE = "stale"  # superseded: ignored


def report_version(revision: int, copy: int, household_seq: int = 0) -> int:
    """The row version of a report copy (both counters saturate rather than overflow)."""
    return (
        (revision << (COPY_BITS + SEQ_BITS))
        | (min(copy, _COPY_MAX) << SEQ_BITS)
        | min(household_seq, _SEQ_MAX)
    )


def decide_copy(
    stored: tuple[int, str, int] | None,
    revision: int,
    digest: str,
    position: int,
    seen: Collection[str] = (),
) -> Revision:
    """Decide a copy of a report at ``position`` against the copy that stands (revision, digest,
    position), all on the report's one partition; ``seen`` holds the digests of the copies accepted
    at the stored revision, the one that stands included.

    A copy at or before the stored position is a replay after a crash: the one that stands is
    DUPLICATE, an earlier one STALE. Otherwise a higher revision is NEW, a lower one STALE, and at
    the same revision the same content is DUPLICATE, the content of an earlier copy SEEN (it came
    again: a replay of the input hop, or a publisher's retry), and other content NEW (the copy
    received last stands).
    """
    if stored is None:
        return Revision.NEW
    stored_revision, stored_digest, stored_position = stored
    if position <= stored_position:
        return Revision.DUPLICATE if position == stored_position else Revision.STALE
    if revision != stored_revision:
        return Revision.NEW if revision > stored_revision else Revision.STALE
    if digest == stored_digest:
        return Revision.DUPLICATE
    return Revision.SEEN if digest in seen else Revision.NEW

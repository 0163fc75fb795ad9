"""The topic registry: logical topic names, their physical names, dead-letter topics, and every
fact derived from them: the local tables and their changelog names, which topics carry personal
keys, the dead-letter headers and the table key prefixes.

No other module spells a topic name, a local table's or a changelog's name, a header name or a key
prefix. Physical name = ``settings.kafka.topic_prefix`` + logical name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from streams.errors import DampakError
from streams.settings import Settings

__all__ = [
    "CONSUMED_TOPICS",
    "DLQ_INDEX",
    "DLQ_KEY_TRUNCATED_FROM",
    "DLQ_OFFSET",
    "DLQ_PARTITION",
    "DLQ_REASON",
    "DLQ_SUFFIX",
    "DLQ_TOPIC",
    "DLQ_TRUNCATED_FROM",
    "GROUP_TOPICS",
    "INDEX_KEY_PREFIX",
    "INPUT_TOPICS",
    "KEY_FIELDS",
    "PERSONAL_KEY_TOPICS",
    "REPORT_KEY_PREFIX",
    "LocalTable",
    "Topic",
    "TopicSpec",
    "all_specs",
    "changelog_name",
    "dlq_name",
    "group_topics",
    "inputs_group",
    "is_changelog",
    "physical_name",
    "reading_group",
    "resolve_input",
    "writer_group",
]

logger = logging.getLogger(__name__)

DLQ_SUFFIX = "-dlq"

# The headers of a dead letter (``<topic>-dlq``): why it was rejected and where it came from, so
# that the source topic keeps the original and ``dampak rotate-key`` can build its row again.
#: Why the message was rejected (short; never quotes input values).
DLQ_REASON = "dlq.reason"
#: The topic, partition and offset of the rejected message (of its bundle, on internal topics).
DLQ_TOPIC = "dlq.topic"
DLQ_PARTITION = "dlq.partition"
DLQ_OFFSET = "dlq.offset"
#: The message's index in its bundle (internal topics only).
DLQ_INDEX = "dlq.index"
#: The original size of a value (or key) cut to fit the dead-letter topic.
DLQ_TRUNCATED_FROM = "dlq.truncated_from"
DLQ_KEY_TRUNCATED_FROM = "dlq.key_truncated_from"


class Topic(StrEnum):
    """Logical topic names. Values are the public contract documented in README."""

    HOUSEHOLDS = "households"
    FIELD_REPORTS = "field-reports"
    DISASTER_ALERTS = "disaster-alerts"
    IMPACT_NOTIFICATIONS = "impact-notifications"
    #: Operators' decisions that two events are, or are not, one incident (``schemas.incidents``).
    INCIDENT_LINKS = "incident-links"
    #: Internal: validated households re-keyed by ``household_id`` with dampak's own partitioner,
    #: so that the registry does not depend on how a publisher partitioned ``households``.
    HOUSEHOLDS_BY_ID = "households-by-id"
    #: Internal: validated field reports re-keyed by ``report_id``; every copy of a report meets
    #: the one partition that decides which copy stands.
    REPORTS_BY_ID = "field-reports-by-id"
    #: Internal: household-level reports re-keyed by ``household_id`` (co-partitioned with
    #: ``households-by-id``, so the registry enriches them).
    REPORTS_BY_HOUSEHOLD = "field-reports-by-household"
    #: Internal: normalized alerts, one per event, keyed by ``event_id``: every bulletin of an
    #: event meets one partition, so the one received last stands.
    ALERTS_BY_EVENT = "disaster-alerts-by-event"
    #: Internal, with a separate writer (``DAMPAK_ROLE=compute`` workers and ``dampak writer``):
    #: the rows the compute workers produce, each keyed by table and row identity, carried in
    #: bundles and kept ``DAMPAK_SINK__ROWS_RETENTION_H`` hours (see ``streams.runtime.handoff``).
    SINK_ROWS = "sink-rows"


#: Topics that upstream systems publish to; each has a ``<topic>-dlq`` dead-letter topic.
INPUT_TOPICS: tuple[Topic, ...] = (
    Topic.HOUSEHOLDS,
    Topic.FIELD_REPORTS,
    Topic.DISASTER_ALERTS,
    Topic.INCIDENT_LINKS,
)
#: The field whose value keys the messages of each input topic (``dampak produce`` keys by it);
#: alerts are keyed by the worker, from the event the bulletin describes.
KEY_FIELDS: dict[Topic, str | None] = {
    Topic.HOUSEHOLDS: "household_id",
    Topic.FIELD_REPORTS: "report_id",
    Topic.DISASTER_ALERTS: None,
    Topic.INCIDENT_LINKS: "link_id",
}
#: Topics whose message keys are personal data (a household id): a dead letter's payload has every
#: occurrence of its key replaced by the key's pseudonym. (Every dead letter's ``key_ref`` is a
#: pseudonym, whatever its topic.)
PERSONAL_KEY_TOPICS: frozenset[Topic] = frozenset(
    {Topic.HOUSEHOLDS, Topic.HOUSEHOLDS_BY_ID, Topic.REPORTS_BY_HOUSEHOLD}
)
#: Topics the worker consumes.
CONSUMED_TOPICS: tuple[Topic, ...] = (
    *INPUT_TOPICS,
    Topic.HOUSEHOLDS_BY_ID,
    Topic.REPORTS_BY_ID,
    Topic.REPORTS_BY_HOUSEHOLD,
    Topic.ALERTS_BY_EVENT,
)
#: What each of the app's consumer groups reads, by the suffix of its group id: the Faust app's
#: own group (the app id) the internal topics, ``-inputs`` the input topics (routed on a plain
#: consumer group), ``-writer`` the rows compute workers hand to the writer.
GROUP_TOPICS: dict[str, tuple[Topic, ...]] = {
    "": tuple(t for t in CONSUMED_TOPICS if t not in INPUT_TOPICS),
    "-inputs": INPUT_TOPICS,
    "-writer": (Topic.SINK_ROWS,),
}


def inputs_group(app_id: str) -> str:
    """The consumer group that routes the input topics (a plain group beside the Faust app's,
    whose group id is ``app_id``)."""
    return f"{app_id}-inputs"


def writer_group(app_id: str) -> str:
    """The writer process's consumer group (``sink-rows``)."""
    return f"{app_id}-writer"


def reading_group(topic: Topic, app_id: str) -> str:
    """The consumer group of app ``app_id`` that reads (and commits) ``topic`` (``GROUP_TOPICS``)."""
    return app_id + next(suffix for suffix, topics in GROUP_TOPICS.items() if topic in topics)


def group_topics(group: str, settings: Settings) -> list[str]:
    """The physical topics consumer group ``group`` of the app reads (none for another group)."""
    if not group.startswith(settings.app_id):
        return []
    return [physical_name(t, settings) for t in GROUP_TOPICS.get(group.removeprefix(settings.app_id), ())]


class LocalTable(StrEnum):
    """The worker's local tables (RocksDB), each backed by a compacted changelog topic named by
    ``changelog_name`` and partitioned like the keyed topics (co-partitioned with its sources)."""

    REGISTRY = "registry"
    HOUSEHOLD_REPORTS = "household_reports"
    REPORT_COPIES = "report_copies"


#: Keys of ``household_reports``: one per report (``r|<len(household_id)>|<household_id><report_id>``)
#: and one index per household (``i|<household_id>``) listing its reports.
REPORT_KEY_PREFIX = "r|"
INDEX_KEY_PREFIX = "i|"

# Faust names a table's changelog ``<app id>-<table>-changelog`` itself; the admin's partition
# check, the registry import's snapshot and the key rotation find it by that name.
_CHANGELOG_SUFFIX = "-changelog"


def changelog_name(table: LocalTable, app_id: str) -> str:
    """The changelog topic of local table ``table`` of app ``app_id``."""
    return f"{app_id}-{table.value}{_CHANGELOG_SUFFIX}"


def is_changelog(name: str, app_id: str) -> bool:
    """Whether topic ``name`` is the changelog of one of app ``app_id``'s tables (of this version
    or an earlier one)."""
    return name.startswith(f"{app_id}-") and name.endswith(_CHANGELOG_SUFFIX)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: tuple[tuple[str, str], ...] = ()


def physical_name(topic: Topic, settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}{topic.value}"


def dlq_name(topic: Topic, settings: Settings) -> str:
    return physical_name(topic, settings) + DLQ_SUFFIX


def resolve_input(name: str, settings: Settings) -> Topic:
    """The input topic a user names, by its logical name (``households``) or its physical name
    (with ``DAMPAK_KAFKA__TOPIC_PREFIX``). Raises DampakError for any other name."""
    for topic in INPUT_TOPICS:
        if name in (topic.value, physical_name(topic, settings)):
            return topic
    choices = ", ".join(t.value for t in INPUT_TOPICS)
    raise DampakError(f"unknown topic {name!r}: dampak's input topics are {choices}")


def all_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the project creates, with declared partition counts.

    All keyed topics share one partition count, so that the registry table, its changelog and
    the re-keyed reports are co-partitioned.
    """
    k = settings.kafka
    specs = [
        TopicSpec(
            physical_name(t, settings),
            k.partitions,
            k.replication_factor,
            (("cleanup.policy", "delete"), ("retention.ms", str(settings.sink.rows_retention_h * 3_600_000)))
            if t is Topic.SINK_ROWS
            else (),
        )
        for t in Topic
    ]
    specs += [
        TopicSpec(dlq_name(t, settings), 1, k.replication_factor) for t in (*INPUT_TOPICS, Topic.SINK_ROWS)
    ]
    return specs

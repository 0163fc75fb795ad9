"""The topic registry: logical topic names, their physical names and dead-letter topics.

No other module spells a topic name. Physical name = ``settings.kafka.topic_prefix`` + logical name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from streams.settings import Settings

__all__ = ["DLQ_SUFFIX", "INPUT_TOPICS", "Topic", "TopicSpec", "all_specs", "dlq_name", "physical_name"]

logger = logging.getLogger(__name__)

DLQ_SUFFIX = "-dlq"


class Topic(StrEnum):
    """Logical topic names. Values are the public contract documented in README."""

    HOUSEHOLDS = "households"
    FIELD_REPORTS = "field-reports"
    DISASTER_ALERTS = "disaster-alerts"
    #: Internal: household-level field reports re-keyed by ``household_id`` (co-partitioned with households).
    REPORTS_BY_HOUSEHOLD = "field-reports-by-household"
    IMPACT_NOTIFICATIONS = "impact-notifications"


#: Topics that upstream systems publish to; each has a ``<topic>-dlq`` dead-letter topic.
INPUT_TOPICS: tuple[Topic, ...] = (Topic.HOUSEHOLDS, Topic.FIELD_REPORTS, Topic.DISASTER_ALERTS)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int


def physical_name(topic: Topic, settings: Settings) -> str:
    return f"{settings.kafka.topic_prefix}{topic.value}"


def dlq_name(topic: Topic, settings: Settings) -> str:
    return physical_name(topic, settings) + DLQ_SUFFIX


def all_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the project creates, with declared partition counts.

    All keyed topics share one partition count, so that the households registry table, its
    changelog and the re-keyed reports are co-partitioned.
    """
    k = settings.kafka
    specs = [TopicSpec(physical_name(t, settings), k.partitions, k.replication_factor) for t in Topic]
    specs += [TopicSpec(dlq_name(t, settings), 1, k.replication_factor) for t in INPUT_TOPICS]
    return specs

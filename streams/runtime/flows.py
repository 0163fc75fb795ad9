"""The worker's flows: each topic's handler, dead-letter topic and batching, and the features'
dependencies they are given (tables, reader, pseudonymizer, notifier). ``streams.runtime.app``
runs them: the input topics' on a plain consumer group, the internal topics' as Faust agents."""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass

from sinks.reader import ClickHouseReader
from streams.engine import Batching, Flow
from streams.engine.faust.state import TableState
from streams.features.alerts import AlertDeps, estimate_alert_impact, route_alert
from streams.features.field_reports import ReportDeps, decide_report, enrich_report, route_report
from streams.features.households import RegistryDeps, apply_household_change, route_household
from streams.features.incidents import IncidentDeps, record_incident_link
from streams.features.notifications import Notifier
from streams.privacy import Pseudonymizer
from streams.settings import Settings
from streams.topics import PERSONAL_KEY_TOPICS, LocalTable, Topic, dlq_name, physical_name

__all__ = ["FeatureDeps", "bundle_take", "feature_deps", "topic_flows"]

logger = logging.getLogger(__name__)


def bundle_take(settings: Settings) -> int:
    """How many records a bundled topic's agent takes at a time. A bundle holds what one batch
    forwarded to one partition. Faust bounds an agent's buffer by records, not bytes: a bundled
    topic's agent takes a few bundles per partition at a time and holds a few more unread, so a
    backlog on an internal topic is not read into memory whole."""
    return 2 * settings.kafka.partitions


@dataclass(frozen=True)
class FeatureDeps:
    """The features' dependencies."""

    registry: RegistryDeps
    reports: ReportDeps
    alerts: AlertDeps
    incidents: IncidentDeps


def feature_deps(
    settings: Settings,
    state: dict[LocalTable, TableState],
    pseudo: Pseudonymizer,
    reader: ClickHouseReader,
    notifier: Notifier,
) -> FeatureDeps:
    context = settings.contracts.context()

    def name(topic: Topic) -> str:
        return physical_name(topic, settings)

    registry = RegistryDeps(
        state[LocalTable.REGISTRY],
        state[LocalTable.HOUSEHOLD_REPORTS],
        pseudo,
        name(Topic.HOUSEHOLDS_BY_ID),
        context,
    )
    reports = ReportDeps(
        state[LocalTable.REGISTRY],
        state[LocalTable.HOUSEHOLD_REPORTS],
        state[LocalTable.REPORT_COPIES],
        pseudo,
        name(Topic.REPORTS_BY_ID),
        name(Topic.REPORTS_BY_HOUSEHOLD),
        context,
    )
    alerts = AlertDeps(
        reader,
        settings.displacement,
        settings.notify.alert_levels,
        notifier,
        name(Topic.ALERTS_BY_EVENT),
        context,
        gdp_per_capita_usd=settings.estimates.gdp_per_capita_usd,
    )
    return FeatureDeps(registry, reports, alerts, IncidentDeps(context))


def topic_flows(settings: Settings, batching: Batching, deps: FeatureDeps) -> dict[Topic, Flow]:
    """Each topic's flow: its handler, dead-letter topic and batching."""
    # The flows on the re-keyed topics: bundles taken a few at a time, and not waited for long.
    hop_batching = dataclasses.replace(
        batching, seconds=settings.sink.hop_batch_seconds, take=bundle_take(settings)
    )
    hop = functools.partial(Flow, batching=hop_batching)
    alert_batching = dataclasses.replace(batching, seconds=settings.sink.alert_batch_seconds)
    households_dlq = dlq_name(Topic.HOUSEHOLDS, settings)
    reports_dlq = dlq_name(Topic.FIELD_REPORTS, settings)
    alerts_dlq = dlq_name(Topic.DISASTER_ALERTS, settings)
    registry, reports, alerts = deps.registry, deps.reports, deps.alerts
    flows = {
        Topic.HOUSEHOLDS: Flow(
            "route_households",
            functools.partial(route_household, registry),
            households_dlq,
            batching,
            boundary=True,
        ),
        Topic.HOUSEHOLDS_BY_ID: hop(
            "apply_household_changes",
            functools.partial(apply_household_change, registry),
            households_dlq,
        ),
        Topic.FIELD_REPORTS: Flow(
            "route_reports", functools.partial(route_report, reports), reports_dlq, batching, boundary=True
        ),
        Topic.REPORTS_BY_ID: hop("decide_reports", functools.partial(decide_report, reports), reports_dlq),
        Topic.REPORTS_BY_HOUSEHOLD: hop(
            "enrich_reports",
            functools.partial(enrich_report, reports),
            reports_dlq,
        ),
        Topic.DISASTER_ALERTS: Flow(
            "route_alerts",
            functools.partial(route_alert, alerts),
            alerts_dlq,
            alert_batching,
            boundary=True,
        ),
        Topic.ALERTS_BY_EVENT: Flow(
            "estimate_alert_impact",
            functools.partial(estimate_alert_impact, alerts),
            alerts_dlq,
            alert_batching,
        ),
        Topic.INCIDENT_LINKS: Flow(
            "record_incident_links",
            functools.partial(record_incident_link, deps.incidents),
            dlq_name(Topic.INCIDENT_LINKS, settings),
            batching,
            boundary=True,
        ),
    }
    # Whether a flow's message keys are personal data is a fact of its topic.
    return {t: dataclasses.replace(f, personal_key=t in PERSONAL_KEY_TOPICS) for t, f in flows.items()}

"""The Grafana dashboard (deploy/grafana/) is well formed and queries only what the project defines.

Prometheus expressions may name only metrics declared in ``streams.ops.metrics`` (as exposed, e.g.
``_total`` for counters, ``_bucket``/``_sum``/``_count`` for histograms); ClickHouse queries may
name only tables declared in ``sinks.tables.TABLES`` and views of ``sinks.views.VIEWS``.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from sinks import tables, views
from streams.ops import metrics

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "dampak.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yml"

DATASOURCE_UIDS = {"prometheus", "clickhouse"}
PANEL_TYPES = {"timeseries", "stat", "table"}
METRIC_RE = re.compile(r"\bdampak_[a-z_]+")
OBJECT_RE = re.compile(r"\bdampak\.([a-z_]+)")
VIEW_RE = re.compile(r"CREATE OR REPLACE VIEW \{db\}\.([a-z_]+)")


# Samples each metric type exposes; a labelled metric exposes none until a child exists, so the names
# are derived from the type as well as read from ``collect()``.
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}


@cache
def allowed_metrics() -> frozenset[str]:
    """Sample names exposed by the metrics declared in ``streams.ops.metrics`` (``dampak_events_total``)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase | metrics.BatchHistogram):
            continue
        for family in value.collect():
            names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
            names.update(sample.name for sample in family.samples)
    return frozenset(names)


@cache
def clickhouse_objects() -> frozenset[str]:
    """Declared tables and views created by ``VIEWS``."""
    names: set[str] = set()
    names.update(t.name for t in tables.TABLES)
    for statement in views.VIEWS:
        names.update(VIEW_RE.findall(statement))
    return frozenset(names)


def load_dashboard() -> dict[str, Any]:
    with DASHBOARD.open(encoding="utf-8") as f:
        dashboard: dict[str, Any] = json.load(f)
    return dashboard


def _uid(obj: dict[str, Any]) -> str | None:
    datasource = obj.get("datasource")
    return datasource.get("uid") if isinstance(datasource, dict) else None


def _prometheus_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every Prometheus target and templating query."""
    found: list[tuple[str, str]] = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            if (_uid(target) or _uid(panel)) == "prometheus":
                found.append((f"panel {panel.get('title')!r} {target.get('refId')}", target.get("expr", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        if _uid(variable) == "prometheus":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            found.append((f"variable {variable.get('name')!r}", text))
    return found


def _clickhouse_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, SQL) for every ClickHouse target."""
    return [
        (f"panel {panel.get('title')!r} {target.get('refId')}", target.get("rawSql", ""))
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
        if (_uid(target) or _uid(panel)) == "clickhouse"
    ]


def query_problems(dashboard: dict[str, Any]) -> list[str]:
    """Every query that is empty or names a metric or ClickHouse object the project does not define."""
    problems: list[str] = []
    for where, expr in _prometheus_queries(dashboard):
        if not expr.strip():
            problems.append(f"{where}: empty expr")
        problems.extend(
            f"{where}: unknown metric {name}"
            for name in METRIC_RE.findall(expr)
            if name not in allowed_metrics()
        )
    for where, sql in _clickhouse_queries(dashboard):
        if not sql.strip():
            problems.append(f"{where}: empty rawSql")
        problems.extend(
            f"{where}: unknown ClickHouse object dampak.{name}"
            for name in OBJECT_RE.findall(sql)
            if name not in clickhouse_objects()
        )
    return problems


def structure_problems(dashboard: dict[str, Any]) -> list[str]:
    problems = [
        f"dashboard lacks {key!r}"
        for key in ("title", "uid", "schemaVersion", "panels", "time")
        if key not in dashboard
    ]
    seen: set[int] = set()
    for index, panel in enumerate(dashboard.get("panels", [])):
        where = f"panel #{index} {panel.get('title')!r}"
        panel_id = panel.get("id")
        if not isinstance(panel_id, int):
            problems.append(f"{where}: id missing or not an int")
        elif panel_id in seen:
            problems.append(f"{where}: duplicate id {panel_id}")
        else:
            seen.add(panel_id)
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: type {panel.get('type')!r} not in {sorted(PANEL_TYPES)}")
        if not panel.get("title"):
            problems.append(f"{where}: no title")
        grid = panel.get("gridPos")
        if not isinstance(grid, dict) or not all(type(grid.get(k)) is int for k in "xywh"):
            problems.append(f"{where}: gridPos needs int x, y, w, h: {grid!r}")
        if _uid(panel) not in DATASOURCE_UIDS:
            problems.append(
                f"{where}: datasource {panel.get('datasource')!r} not one of {sorted(DATASOURCE_UIDS)}"
            )
        if not panel.get("targets"):
            problems.append(f"{where}: no targets")
    return problems


def test_project_definitions_are_found() -> None:
    # Guards the checker itself: were these empty, every query would be "unknown" (or the regexes stale).
    assert {"dampak_events_total", "dampak_end_to_end_seconds_bucket", "dampak_consumergroup_lag"} <= (
        allowed_metrics()
    )
    assert {"consumer_lag", "dead_letter_state", "event_summary", "impact_regency", "minimum_needs"} <= (
        clickhouse_objects()
    )


def test_dashboard_structure() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "dampak-ops"
    assert dashboard["panels"], "dashboard has no panels"
    assert structure_problems(dashboard) == []


def test_dashboard_uses_both_datasources() -> None:
    dashboard = load_dashboard()
    assert _prometheus_queries(dashboard), "no Prometheus queries"
    assert _clickhouse_queries(dashboard), "no ClickHouse queries"


def test_dashboard_queries_name_only_defined_metrics_and_objects() -> None:
    assert query_problems(load_dashboard()) == []


def test_group_variable_queries_consumer_lag() -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    assert "group" in variables
    assert "label_values(dampak_consumergroup_lag, group)" in json.dumps(variables["group"]["query"])


def test_provisioned_datasources_cover_dashboard_uids() -> None:
    text = DATASOURCES.read_text(encoding="utf-8")
    dashboard = load_dashboard()
    used = {_uid(panel) for panel in dashboard["panels"]}
    used |= {_uid(t) for panel in dashboard["panels"] for t in panel["targets"] if _uid(t)}
    assert used == DATASOURCE_UIDS
    for uid in used:
        assert re.search(rf"^\s*uid:\s*[\"']?{uid}[\"']?\s*$", text, re.MULTILINE), uid


def _replace_in_first(dashboard: dict[str, Any], key: str, pattern: str, replacement: str) -> None:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            if re.search(pattern, target.get(key, "")):
                target[key] = re.sub(pattern, replacement, target[key], count=1)
                return
    raise AssertionError(f"no target {key} matches {pattern!r}")


@pytest.mark.parametrize(
    ("key", "pattern", "replacement", "expected"),
    [
        ("expr", r"dampak_events_total", "dampak_nope_total", "unknown metric dampak_nope_total"),
        (
            "expr",
            r"dampak_end_to_end_seconds_bucket",
            "dampak_end_to_end_seconds",
            "dampak_end_to_end_seconds",
        ),
        ("rawSql", r"dampak\.event_summary", "dampak.nope_summary", "dampak.nope_summary"),
    ],
)
def test_checker_rejects_unknown_names(key: str, pattern: str, replacement: str, expected: str) -> None:
    broken = copy.deepcopy(load_dashboard())
    _replace_in_first(broken, key, pattern, replacement)
    problems = query_problems(broken)
    assert any(expected in problem for problem in problems), problems


def test_structure_checker_rejects_broken_panels() -> None:
    broken = copy.deepcopy(load_dashboard())
    broken["panels"][1]["id"] = broken["panels"][0]["id"]
    broken["panels"][2]["gridPos"]["w"] = "12"
    broken["panels"][3]["datasource"] = {"type": "loki", "uid": "loki"}
    broken["panels"][4]["targets"] = []
    problems = "\n".join(structure_problems(broken))
    for fragment in ("duplicate id", "gridPos", "datasource", "no targets"):
        assert fragment in problems, problems

"""HTTP endpoints of a worker or writer: health, readiness, Prometheus metrics and queries.

``/query`` exists because the embedded ClickHouse admits one process: while a worker (or the
writer) holds it, ``dampak query`` is served here (confined by ClickHouse, limited, POST only,
token-protected). ``QueryEndpoint`` is the one implementation; Faust's pages (``register``) and
the writer's aiohttp server (``streams.writer``) both serve it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

import faust
import orjson
from faust.exceptions import ConsumerNotStarted
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.analyst import Limits, run_query
from sinks.connection import ConnectionPool
from sinks.errors import QueryBusy, QueryRejected
from streams.settings import Settings

__all__ = ["METRICS_CONTENT_TYPE", "QueryEndpoint", "metrics_body", "register", "worker_ready"]

logger = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0]


def metrics_body() -> bytes:
    return generate_latest()


def worker_ready(app: Any) -> tuple[bool, dict[str, Any]]:
    """Ready = partitions assigned, not rebalancing, table recovery finished, and the Kafka
    clients' metadata tasks running.

    ``tables.actives_ready`` is set when recovery of the active partitions ends and cleared on each
    rebalance (``recovery.completed`` is set once and never cleared, so it is not used).
    """
    checks = {
        "partitions_assigned": _assigned(app),
        "rebalancing": bool(app.rebalancing),
        "recovery_completed": bool(app.tables.actives_ready) and not app.in_recovery,
        "kafka_metadata": kafka_metadata_alive(app),
    }
    ready = (
        checks["partitions_assigned"]
        and not checks["rebalancing"]
        and checks["recovery_completed"]
        and checks["kafka_metadata"]
    )
    return ready, checks


def _assigned(app: Any) -> bool:
    """Whether the consumer holds partitions. The web server answers before the consumer's thread
    has started, and Faust's ``assignment()`` raises until then."""
    if not app.consumer:
        return False
    try:
        return bool(app.consumer.assignment())
    except ConsumerNotStarted:
        return False


def kafka_metadata_alive(app: Any) -> bool:
    """False when the metadata task of the consumer's or the producer's aiokafka client has ended.
    It never ends by itself; if it does, every metadata refresh of that client waits forever (the
    consumer stops without an error), and only a restart recovers."""
    consumer = getattr(getattr(app.consumer, "_thread", None), "_consumer", None) if app.consumer else None
    producer = getattr(app.producer, "_producer", None)
    clients = [getattr(consumer, "_client", None), getattr(producer, "client", None)]
    for client in clients:
        task = getattr(client, "_sync_task", None)
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            logger.error("a Kafka client's metadata task ended (%r): restart the worker", error)
            return False
    return True


class QueryEndpoint:
    """``POST /query`` with ``{"sql", "parameters", "scope"}``: one query (``sinks.analyst``).

    Refused: any other method, a Host header that does not name this process (a page in a browser
    cannot reach it by DNS rebinding), and, when the process is bound beyond loopback or the scope
    is ``internal``, a request without the bearer token. 503 when every query connection stayed
    busy for ``DAMPAK_CLICKHOUSE__QUERY_WAIT_S``.
    """

    def __init__(self, settings: Settings, queries: ConnectionPool) -> None:
        self._web = settings.web
        target = settings.clickhouse_target
        self._database = target.database
        self._limits = Limits.of(target)
        self._queries = queries

    async def answer(
        self, method: str, headers: Mapping[str, str], read_json: Callable[[], Any]
    ) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"error": "POST the query as JSON"}
        if not self._web.host_allowed(headers.get("Host", "")):
            return 403, {"error": "unknown Host"}
        body = await read_json() if headers.get("Content-Type", "").startswith("application/json") else None
        if not isinstance(body, dict):
            return 415, {"error": "expected a JSON object (Content-Type: application/json)"}
        scope = body.get("scope", "analyst")
        if scope not in ("analyst", "internal"):
            return 400, {"error": "scope is analyst or internal"}
        if (not self._web.loopback or scope == "internal") and not self._authorized(headers):
            return 401, {"error": "a bearer token is required"}
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return 400, {"error": "parameters must be an object"}
        try:
            columns, rows = await self._queries.run(
                run_query, str(body.get("sql", "")), parameters, self._limits, self._database, scope
            )
        except QueryBusy as exc:
            # The bound on concurrent queries: answered at once after the wait, never queued.
            return 503, {"error": str(exc)}
        except QueryRejected as exc:
            return 400, {"error": str(exc)}
        return 200, {"columns": columns, "rows": rows}

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        token = self._web.token
        if token is None:
            return self._web.loopback  # no token configured: only on a loopback-bound process
        given = headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def register(app: faust.App, settings: Settings, queries: ConnectionPool | None) -> None:
    """Pages of a worker; ``/query`` (when the worker holds ClickHouse) runs on ``queries``,
    never on the writer's connection."""

    def _json(view: faust.web.View, value: Any, status: int = 200) -> Any:
        return view.bytes(json_bytes(value), content_type="application/json", status=status)

    @app.page("/healthz")
    async def healthz(view: faust.web.View, request: faust.web.Request) -> Any:
        return _json(view, {"status": "alive"})

    @app.page("/readyz")
    async def readyz(view: faust.web.View, request: faust.web.Request) -> Any:
        ready, checks = worker_ready(app)
        return _json(view, {"ready": ready, **checks}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(view: faust.web.View, request: faust.web.Request) -> Any:
        return view.bytes(metrics_body(), content_type=METRICS_CONTENT_TYPE)

    if queries is None:
        return
    endpoint = QueryEndpoint(settings, queries)
    _register_center(app, settings, queries, _json)

    @app.page("/query")
    class Query(faust.web.View):
        async def get(self, request: faust.web.Request) -> Any:
            status, body = await endpoint.answer("GET", request.headers, request.json)
            return _json(self, body, status)

        async def post(self, request: faust.web.Request) -> Any:
            status, body = await endpoint.answer("POST", request.headers, request.json)
            return _json(self, body, status)


def _register_center(
    app: faust.App, settings: Settings, queries: ConnectionPool, as_json: Callable[..., Any]
) -> None:
    """The command-center page (``streams.ops.center``), its figures (``data.json``, for the most
    recent event or ``?event=ID``) and its libraries (``lib/NAME``): aggregated figures only, no
    personal data, so they are served without the token; the Host check still applies."""
    from sinks.center import figures
    from streams.domain.contours import alert_contours
    from streams.ops.center import LIBRARIES, SharedFigures, library, page, pipeline_state

    target = settings.clickhouse_target
    limits = Limits.of(target)

    def read(client: Any, event_id: str | None) -> dict[str, Any]:
        return figures(
            lambda sql, p: run_query(client, sql, p, limits, target.database), event_id, alert_contours
        )

    shared = SharedFigures(lambda event_id: queries.run(read, event_id))

    @app.page("/pusat/")
    async def center_page(view: faust.web.View, request: faust.web.Request) -> Any:
        if not settings.web.host_allowed(request.headers.get("Host", "")):
            return as_json(view, {"error": "unknown Host"}, 403)
        return view.html(page(settings.web.language, None, "data.json"))

    @app.page("/pusat/lib/{name}")
    async def center_library(view: faust.web.View, request: faust.web.Request, name: str) -> Any:
        # Leaflet and plotly.js from their installed packages: the page needs no CDN.
        if not settings.web.host_allowed(request.headers.get("Host", "")):
            return as_json(view, {"error": "unknown Host"}, 403)
        if name not in LIBRARIES:
            return as_json(view, {"error": "no such file"}, 404)
        # aiohttp takes a charset in the header only, not in ``content_type``.
        headers = {"Content-Type": LIBRARIES[name], "Cache-Control": "max-age=3600"}
        return view.bytes(library(name), headers=headers)

    @app.page("/pusat/data.json")
    async def center_data(view: faust.web.View, request: faust.web.Request) -> Any:
        if not settings.web.host_allowed(request.headers.get("Host", "")):
            return as_json(view, {"error": "unknown Host"}, 403)
        event_id = request.query.get("event") or None
        try:
            data = await shared.get(event_id)
        except QueryBusy as exc:
            return as_json(view, {"error": str(exc)}, 503)
        return as_json(view, {**data, "pipeline": pipeline_state()})

"""HTTP endpoints of the worker: health, readiness, Prometheus metrics and read-only queries.

``/query`` exists because the embedded engine admits one process: while a worker holds it,
``dampak query`` is served here (read-only, row-limited, time-limited).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.analyst import run_query
from sinks.connection import Connection
from sinks.errors import QueryRejected
from streams.settings import Settings

__all__ = ["register", "worker_ready"]

logger = logging.getLogger(__name__)


def worker_ready(app: Any) -> tuple[bool, dict[str, Any]]:
    """Ready = partitions assigned, not rebalancing, and table recovery finished.

    ``tables.actives_ready`` is set when recovery of the active partitions ends and cleared on each
    rebalance (``recovery.completed`` is set once and never cleared, so it is not used).
    """
    checks = {
        "partitions_assigned": bool(app.consumer.assignment()) if app.consumer else False,
        "rebalancing": bool(app.rebalancing),
        "recovery_completed": bool(app.tables.actives_ready) and not app.in_recovery,
    }
    ready = checks["partitions_assigned"] and not checks["rebalancing"] and checks["recovery_completed"]
    return ready, checks


def register(app: faust.App, settings: Settings, conn: Connection) -> None:
    limits = settings.clickhouse

    def _json(view: faust.web.View, value: Any, status: int = 200) -> Any:
        body = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
        return view.bytes(body, content_type="application/json", status=status)

    @app.page("/healthz")
    async def healthz(view: faust.web.View, request: faust.web.Request) -> Any:
        return _json(view, {"status": "alive"})

    @app.page("/readyz")
    async def readyz(view: faust.web.View, request: faust.web.Request) -> Any:
        ready, checks = worker_ready(app)
        return _json(view, {"ready": ready, **checks}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(view: faust.web.View, request: faust.web.Request) -> Any:
        return view.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/query")
    class Query(faust.web.View):
        async def _run(self, sql: str, parameters: Any) -> Any:
            if not sql:
                return _json(self, {"error": "no SQL given"}, status=400)
            if not isinstance(parameters, dict):
                return _json(self, {"error": "parameters must be an object"}, status=400)
            try:
                columns, rows = await conn.run(
                    run_query, conn.client, sql, parameters, limits.query_max_rows, limits.query_timeout_s
                )
            except QueryRejected as exc:
                return _json(self, {"error": str(exc)}, status=400)
            return _json(self, {"columns": columns, "rows": rows})

        async def get(self, request: faust.web.Request) -> Any:
            return await self._run(request.query.get("sql", ""), {})

        async def post(self, request: faust.web.Request) -> Any:
            body = await request.json()
            if not isinstance(body, dict):
                return _json(self, {"error": "expected a JSON object"}, status=400)
            return await self._run(body.get("sql", ""), body.get("parameters") or {})

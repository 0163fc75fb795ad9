"""HTTP endpoints of the worker: health, readiness, Prometheus metrics and read-only queries.

``/query`` exists because the embedded engine admits one process: while a worker holds it,
``dampak query`` is served here (confined by the engine, limited, POST only, token-protected).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.analyst import Limits, run_query
from sinks.connection import ConnectionPool
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


def register(app: faust.App, settings: Settings, queries: ConnectionPool) -> None:
    """Pages of the worker; ``/query`` runs on ``queries``, never on the writer's connection."""
    target = settings.clickhouse_target
    limits = Limits(target.query_max_rows, target.query_timeout_s, target.query_max_memory_bytes)

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
        """POST ``{"sql", "parameters", "scope"}``: one analyst query (``sinks.analyst``).

        Refused: any other method, a Host header that does not name this worker (a page in a
        browser cannot reach it by DNS rebinding), and, when the worker is bound beyond
        loopback or the scope is ``internal``, a request without the bearer token.
        """

        async def get(self, request: faust.web.Request) -> Any:
            return _json(self, {"error": "POST the query as JSON"}, status=405)

        async def post(self, request: faust.web.Request) -> Any:
            if not settings.web.host_allowed(request.headers.get("Host", "")):
                return _json(self, {"error": "unknown Host"}, status=403)
            json_body = request.headers.get("Content-Type", "").startswith("application/json")
            body = await request.json() if json_body else None
            if not isinstance(body, dict):
                return _json(
                    self, {"error": "expected a JSON object (Content-Type: application/json)"}, status=415
                )
            scope = body.get("scope", "analyst")
            if scope not in ("analyst", "internal"):
                return _json(self, {"error": "scope is analyst or internal"}, status=400)
            if (not settings.web.loopback or scope == "internal") and not _authorized(request):
                return _json(self, {"error": "a bearer token is required"}, status=401)
            parameters = body.get("parameters") or {}
            if not isinstance(parameters, dict):
                return _json(self, {"error": "parameters must be an object"}, status=400)
            try:
                columns, rows = await queries.run(
                    run_query, str(body.get("sql", "")), parameters, limits, target.database, scope
                )
            except QueryRejected as exc:
                return _json(self, {"error": str(exc)}, status=400)
            return _json(self, {"columns": columns, "rows": rows})

    def _authorized(request: faust.web.Request) -> bool:
        token = settings.web.token
        if token is None:
            return settings.web.loopback  # no token configured: only from a loopback-bound worker
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.get_secret_value().encode())

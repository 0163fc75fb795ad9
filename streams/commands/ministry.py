"""``dampak coverage INCIDENT`` and ``dampak entitlements INCIDENT``: what the ministry acts on.

Coverage: per kecamatan, the villages the incident struck (estimated MMI VI or more, or an area
hazard's medium or high class) that no social worker has reported from yet, for dispatching TKSK
and Tagana. Entitlements: what Kemensos owes under Permensos 4/2015, per regency and kind, from the
reported figures. Times are shown in the zone of the place (WIB, WITA or WIT).
"""

from __future__ import annotations

import argparse
import logging
import sys

from streams.settings import Settings

__all__ = ["cmd_coverage", "cmd_entitlements"]

logger = logging.getLogger(__name__)

_COVERAGE = (
    "SELECT district_code, district_name, exposed_villages, reported_villages, unreported_villages, "
    "arrayStringConcat(arraySlice(unreported, 1, 8), ' ') AS first_unreported, last_report_at, "
    "hours_since_last_report, reports_tagana, reports_tksk, reports_pkh, reports_other "
    "FROM dampak.coverage WHERE incident_id = {incident:String} "
    "ORDER BY unreported_villages DESC, district_code"
)
_ENTITLEMENTS = (
    "SELECT e.regency_code AS regency_code, any(g.name) AS regency_name, e.kind AS kind, "
    "sum(e.basis_count) AS basis_count, any(e.unit_amount_idr) AS unit_amount_idr, "
    "sum(e.amount_idr) AS amount_idr, any(e.basis) AS basis "
    "FROM dampak.entitlements AS e LEFT JOIN dampak.regions AS g ON g.code = e.regency_code "
    "WHERE e.incident_id = {incident:String} GROUP BY e.regency_code, e.kind ORDER BY e.regency_code, e.kind"
)


def _zone(code: str) -> tuple[str, int] | None:
    """The time zone of the place with region ``code``, if it is known."""
    from schemas.regions import time_zone

    try:
        return time_zone(code)
    except ValueError:
        return None


def cmd_coverage(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.analyst import query
    from streams.commands.cli_output import print_rows

    columns, rows = query(settings.clickhouse_target, _COVERAGE, {"incident": args.incident})
    print_rows(columns, rows, args.format, sys.stdout, zone=_zone(str(rows[0][0])) if rows else None)
    if args.format == "table":
        unreported = sum(int(r[4]) for r in rows)
        print(f"{unreported} exposed villages with no report yet in {len(rows)} districts")
    return 0


def cmd_entitlements(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.analyst import query
    from streams.commands.cli_output import print_rows

    columns, rows = query(settings.clickhouse_target, _ENTITLEMENTS, {"incident": args.incident})
    print_rows(columns, rows, args.format, sys.stdout)
    if args.format == "table":
        print(f"total: Rp{sum(int(r[5]) for r in rows):,}".replace(",", "."))
    return 0

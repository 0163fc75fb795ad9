#!/bin/bash
# Runs once, when the ClickHouse container initialises its data volume: the read-only `analyst`
# user (for analysts and Grafana). Its rights come from the role `dampak_analyst`, which the
# worker's migrations create and grant (SELECT on the analyst views of `dampak`; the views run
# with their definer's rights, so the role needs nothing on the *_state tables).
set -euo pipefail
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE ROLE IF NOT EXISTS dampak_analyst;
CREATE USER IF NOT EXISTS analyst IDENTIFIED WITH sha256_password BY '${ANALYST_PASSWORD}'
    DEFAULT ROLE dampak_analyst SETTINGS readonly = 1;
GRANT dampak_analyst TO analyst;
SQL

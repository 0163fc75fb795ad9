"""ClickHouse: DDL migrations, batching sink, read-only queries."""

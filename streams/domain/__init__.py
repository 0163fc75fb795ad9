"""Pure domain functions (no Kafka, no ClickHouse): registry state, report revisions, enrichment."""

"""ClickHouse: table declarations, migrations, the writer, the reader and the analysts' query path."""

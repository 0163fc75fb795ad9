"""The one place for ClickHouse DDL: versioned table migrations and repeatable views.

The same DDL runs on embedded chDB and on a ClickHouse server.
"""

from sinks.ddl.tables import MIGRATIONS, Migration
from sinks.ddl.views import VIEWS

__all__ = ["MIGRATIONS", "VIEWS", "Migration"]

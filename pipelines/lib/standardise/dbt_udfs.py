"""DuckDB functions that SQL alone cannot do well for Chinese text, for dbt and plain connections.

DuckDB's ``levenshtein``/``jaro_winkler`` count UTF-8 bytes, not characters, and it has no pinyin,
so these are Python UDFs. dbt-duckdb loads this module as a plugin (see dbt_project/profiles.yml).
"""

from __future__ import annotations

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin

from .pinyin import pinyin_key_arrow


def register_udfs(conn: duckdb.DuckDBPyConnection) -> None:
    conn.create_function(
        "pinyin_key", pinyin_key_arrow, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        type="arrow", null_handling="special", side_effects=False,
    )


class Plugin(BasePlugin):
    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register_udfs(conn)

"""DuckDB functions that SQL alone cannot do well for Chinese text, for dbt and plain connections.

DuckDB's ``levenshtein``/``jaro_winkler`` count UTF-8 bytes, not characters, and it has no pinyin,
so these are Python UDFs. dbt-duckdb loads this module as a plugin (see dbt_project/profiles.yml).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dbt.adapters.duckdb.plugins import BasePlugin

from .emails import canonical_email
from .phones import judge_number_abroad
from .pinyin import pinyin_key

# SQL name -> the per-value Python function (each cached) behind it: VARCHAR in, VARCHAR out.
PER_VALUE_FUNCTIONS = {
    "pinyin_key": pinyin_key,
    "judge_number_abroad": judge_number_abroad,
    "email_canonical": canonical_email,
}


def per_distinct_value(function: Callable[[str], str | None]) -> Callable[[pa.Array | pa.ChunkedArray], pa.Array]:
    """An Arrow UDF that calls ``function`` once per distinct non-null value, then takes by dictionary index."""
    def udf(values: pa.Array | pa.ChunkedArray) -> pa.Array:
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        results = [function(v) if v is not None else None for v in encoded.dictionary.to_pylist()]
        return pc.take(pa.array(results, type=pa.string()), encoded.indices)
    return udf


def register_udfs(conn: duckdb.DuckDBPyConnection) -> None:
    for name, function in PER_VALUE_FUNCTIONS.items():
        conn.create_function(
            name, per_distinct_value(function), [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
            type="arrow", null_handling="special", side_effects=False,
        )


class Plugin(BasePlugin):
    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register_udfs(conn)

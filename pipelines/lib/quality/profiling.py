"""Row counts and per-field completeness of a DuckDB relation, in one query."""

from __future__ import annotations

import duckdb

# Lineage and bookkeeping columns say nothing about how complete a lead is.
_SKIP = {"record_id", "source_system", "source_file", "source_row", "ingested_at", "extra_attributes", "place_key"}


def relation_exists(conn: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, _, table = relation.rpartition(".")
    # duckdb_tables()/duckdb_views() answer at once; information_schema is a view over every catalog
    return bool(conn.execute(
        "select (select count(*) from duckdb_tables() where schema_name = $1 and table_name = $2)"
        " + (select count(*) from duckdb_views() where schema_name = $1 and view_name = $2)",
        [schema or "main", table],
    ).fetchone()[0])


def profile_relation(conn: duckdb.DuckDBPyConnection, relation: str) -> dict[str, float | int]:
    """{'row_count': n, 'completeness/<field>': share of rows with a value (a list counts when non-empty)}."""
    schema, _, table = relation.rpartition(".")
    columns = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema or "main", table],
    ).fetchall()
    parts = ["count(*)"]
    names = []
    for name, data_type in columns:
        if name in _SKIP:
            continue
        present = f'len("{name}") > 0' if data_type.endswith("[]") else f'"{name}" is not null'
        parts.append(f"count(*) filter (where {present})")
        names.append(name)
    row = conn.execute(f"select {', '.join(parts)} from {relation}").fetchone()
    total = row[0]
    profile: dict[str, float | int] = {"row_count": total}
    for name, filled in zip(names, row[1:]):
        profile[f"completeness/{name}"] = round(filled / total, 4) if total else 0.0
    return profile

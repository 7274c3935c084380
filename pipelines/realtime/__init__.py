"""The real-time code location: corrections (events and manual edits) and notifications to sales.

It is a code location of its own so that each run the daemon starts for one event loads only Dagster,
DuckDB, Polars and the corrections library, in about a third of the time the batch location takes to
load (dbt, Splink and Great Expectations are never imported here). Both locations share the data home,
its writer lock and the `duckdb_writer` pool, so their runs still never write at the same time.
"""

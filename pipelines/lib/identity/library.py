"""The lead library's system of record: append-only Delta tables under ``<home>/library``.

Three tables, only ever appended to:

- ``imports``: one row per file an import looked at (imported, duplicate, unchanged, failed), with its
  content hash and counts (a database source's read is one row, with its high-water mark). A batch's ``imports`` rows are written last: they are its commit marker.
- ``records``: versions of records (``new``, ``updated`` for a keyed record whose content changed,
  ``retired`` when a snapshot source's newest extract no longer holds it). The current library is the
  latest version of each record, unless that version retires it.
- ``import_rows``: every data row of every imported file and what became of it: the ``record_id`` it
  is, or the reason it was rejected or skipped. Receipts and per-file reconciliation come from here.

Records and rows of a batch whose ``imports`` rows were never written (a crash mid-import) belong to
no committed import and are ignored by every reader, so a file is imported whole or not at all. The
DuckDB file is working state rebuilt from these tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from ..sources.field_mapping import CANONICAL_FIELDS, EXTRA_FIELD

LIBRARY_DIR = "library"

IMPORTS_SCHEMA = pa.schema([
    ("import_id", pa.int64()),      # orders imports: later imports have larger ids
    ("batch_id", pa.int64()),       # the imports of one run; a snapshot source's current files share one
    ("source_system", pa.string()),
    ("file_name", pa.string()),     # as it arrived, relative to the data home (or the path given)
    ("stored_as", pa.string()),     # where the file is kept now (archive / failed), if moved
    ("content_hash", pa.string()),  # sha256 of the bytes: the same file dropped twice is imported once
    ("file_bytes", pa.int64()),
    ("status", pa.string()),        # imported | duplicate | unchanged | failed
    ("reason", pa.string()),        # failed: why, in the specialist's words; duplicate: which import had it
    ("duplicate_of", pa.int64()),
    ("rows_read", pa.int64()),
    ("rows_rejected", pa.int64()),
    ("lines_skipped", pa.int64()),
    ("records_new", pa.int64()),
    ("records_updated", pa.int64()),
    ("records_retired", pa.int64()),
    ("imported_at", pa.timestamp("us")),
    ("run_id", pa.string()),
    # a database source read by its updated_at column: the largest value read, where its next read starts
    # (kept here so the mark commits with the batch it belongs to, and a restore that reverts it rewinds it)
    ("watermark", pa.string()),
])

RECORD_SCHEMA = pa.schema(
    [("record_id", pa.string()), ("import_id", pa.int64()), ("change", pa.string()),
     ("source_system", pa.string()), ("content_hash", pa.string())]
    + [(f, pa.string()) for f in CANONICAL_FIELDS]
    + [(EXTRA_FIELD, pa.string()), ("source_file", pa.string()), ("source_row", pa.int64()),
       ("ingested_at", pa.timestamp("us")),
       # a row edited in place in a snapshot extract: the record it replaces (its lead id carries over)
       ("replaces", pa.string())]
)

IMPORT_ROW_SCHEMA = pa.schema([
    ("import_id", pa.int64()),
    ("source_file", pa.string()),   # file label, "#sheet" for a workbook's later lead sheets
    ("source_row", pa.int64()),     # the row number the specialist sees in Excel
    ("record_id", pa.string()),     # null when the row was rejected or skipped
    ("outcome", pa.string()),       # accepted | rejected | skipped
    ("reason", pa.string()),
])

RECEIPT_SCHEMA = pa.schema([("import_id", pa.int64()), ("path", pa.string()), ("written_at", pa.timestamp("us"))])

# Corrections from events and manual edits (pipelines/lib/corrections): one row per field an accepted event
# or edit sets or marks invalid, anchored to the lead it concerned (merges are followed through the registry).
CORRECTION_SCHEMA = pa.schema([
    ("correction_id", pa.string()),   # <event id>#<field>
    ("event_id", pa.string()),
    ("level", pa.string()),           # event | manual_edit (precedence.LEVELS)
    ("event_type", pa.string()),
    ("lead_id", pa.string()),
    ("field", pa.string()),
    ("action", pa.string()),          # set | invalidate
    ("value", pa.string()),
    ("occurred_at", pa.timestamp("us")),  # UTC
    ("source", pa.string()),
    ("actor", pa.string()),
    ("recorded_at", pa.timestamp("us")),
    ("reason", pa.string()),          # why, when the event or edit said so
])
# Every event line read and what became of it; written after the batch's corrections (the commit marker),
# and where the events source's cursor stands (the largest end_offset per file).
EVENT_LOG_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("file", pa.string()),
    ("line", pa.int64()),
    ("end_offset", pa.int64()),
    ("event_type", pa.string()),
    ("lead_id", pa.string()),
    ("outcome", pa.string()),         # applied | noop | superseded | skipped | duplicate | dead_letter
    ("reason", pa.string()),
    ("recorded_at", pa.timestamp("us")),
])

# Human decisions and the lead registry, mirrored from the working DuckDB file at each publication and each
# decision (pipelines/lib/history/backup.py: mirror_working_state), so a home that lost that file recovers
# them. The registry is appended to when a lead is issued or merged: its current row is the latest per lead.
DECISION_SCHEMA = pa.schema([
    ("decision_id", pa.int64()), ("lead_a", pa.string()), ("lead_b", pa.string()), ("decision", pa.string()),
    ("decided_by", pa.string()), ("decided_at", pa.timestamp("us")), ("origin", pa.string()),
])
DECISION_RECORD_SCHEMA = pa.schema([("decision_id", pa.int64()), ("side", pa.string()), ("record_id", pa.string())])
REGISTRY_SCHEMA = pa.schema([
    ("lead_id", pa.string()), ("created_at", pa.timestamp("us")), ("merged_into", pa.string()),
    ("recorded_at", pa.timestamp("us")),
])

# What a restore reverted (pipelines/lib/history/restore.py): imports, corrections and decisions made after the
# restored version, marked, never deleted; readers leave them out, so later runs keep the restored state.
REVERSION_SCHEMA = pa.schema([
    ("restore_id", pa.string()), ("restored_version", pa.int64()), ("kind", pa.string()),  # import | correction | decision
    ("reverted_id", pa.string()), ("reverted_at", pa.timestamp("us")), ("actor", pa.string()),
])

TABLES = {"imports": IMPORTS_SCHEMA, "records": RECORD_SCHEMA, "import_rows": IMPORT_ROW_SCHEMA,
          "receipts": RECEIPT_SCHEMA,  # receipts: which imports have their receipt workbook
          "corrections": CORRECTION_SCHEMA, "event_log": EVENT_LOG_SCHEMA,
          "decisions": DECISION_SCHEMA, "decision_records": DECISION_RECORD_SCHEMA, "lead_registry": REGISTRY_SCHEMA,
          "reversions": REVERSION_SCHEMA}


def new_import_id(at_least: int = 0) -> int:
    """Increasing ids without a counter to update: nanoseconds, bumped past the last id handed out
    (``at_least``: the largest id in the library, so a clock that stepped back cannot reorder imports)."""
    global _last_id
    value = max(time.time_ns(), _last_id + 1, at_least + 1)
    _last_id = value
    return value


_last_id = 0


@dataclass(frozen=True)
class Library:
    root: Path  # <home>/library

    def table_path(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return DeltaTable.is_deltatable(str(self.table_path(name)))

    def dataset(self, name: str):
        """A pyarrow dataset over the table (empty, with the schema, when nothing was written yet)."""
        if not self.exists(name):
            return pa.table({f.name: pa.array([], type=f.type) for f in TABLES[name]}, schema=TABLES[name])
        table = DeltaTable(str(self.table_path(name)))
        dataset = table.to_pyarrow_dataset()
        missing = [f for f in TABLES[name] if f.name not in dataset.schema.names]
        if missing:  # a column the product added since the table was last written (created_at): read as null
            dataset = table.to_pyarrow_dataset(schema=pa.schema([*dataset.schema, *missing]))
        return dataset

    def append(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # schema_mode="merge": a column added in a later version of the product is added to the table
        write_deltalake(str(self.table_path(name)), table.select(TABLES[name].names).cast(TABLES[name]),
                        mode="append", schema_mode="merge")

    def commit_batch(self, records: pa.Table, import_rows: pa.Table, imports: pa.Table) -> None:
        """Append a batch: records and rows first, the imports last (the commit marker)."""
        self.append("records", records)
        self.append("import_rows", import_rows)
        self.append("imports", imports)

    def versions(self) -> dict[str, int]:
        return {name: DeltaTable(str(self.table_path(name))).version() for name in TABLES if self.exists(name)}

    def register(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Expose the committed library to ``conn`` as views lib_imports, lib_records, lib_import_rows and
        lib_current_records (the latest version of each record, retired ones left out), and the receipts
        written as lib_all_receipts."""
        for name in TABLES:
            conn.register(f"lib_all_{name}", self.dataset(name))
        conn.execute("create or replace temp view lib_imports as select * from lib_all_imports")
        # committed (its imports row was written) and not reverted by a restore
        committed = ("import_id in (select import_id from lib_all_imports) and import_id not in "
                     "(select reverted_id::bigint from lib_all_reversions where kind = 'import')")
        conn.execute(f"create or replace temp view lib_records as select * from lib_all_records where {committed}")
        conn.execute(f"create or replace temp view lib_import_rows as select * from lib_all_import_rows where {committed}")
        conn.execute("""
            create or replace temp view lib_current_records as
            select * exclude (change) from (
                select * from lib_records
                qualify row_number() over (partition by record_id order by import_id desc) = 1
            ) where change <> 'retired'
        """)

    def unregister(self, conn: duckdb.DuckDBPyConnection) -> None:
        for name in ("lib_imports", "lib_records", "lib_import_rows", "lib_current_records"):
            conn.execute(f"drop view if exists {name}")
        for name in TABLES:
            conn.unregister(f"lib_all_{name}")


def library_of(home_root: Path) -> Library:
    return Library(home_root / LIBRARY_DIR)

"""Published versions: every publication is an immutable, numbered version of the published tables.

Each published table is a Delta table under ``<home>/versions/<table>``, overwritten per publication (Delta
keeps every earlier version: time travel); the ``log`` Delta table, only ever appended to, numbers the
publications and says which Delta version of each table belongs to each, with its row counts, cause and
time. Readers (the CRM, read-only commands) open these files, never the working DuckDB file, so they work
while a run holds it; DuckDB (delta extension), Polars and Spark read them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from .history import field_changes_sql

VERSIONS_DIR = "versions"
LOG_TABLE = "log"
LOG_SCHEMA = pa.schema([
    ("version", pa.int64()),
    ("published_at", pa.timestamp("us", tz="UTC")),
    ("cause", pa.string()),          # nightly run, import of <file>, event batch, manual edit, restore of V ...
    ("cause_id", pa.string()),       # the run id, event file, edit id, restored version
    ("tables", pa.string()),         # JSON: table -> {"delta_version": n, "rows": n}
])


@dataclass(frozen=True)
class Version:
    version: int
    published_at: datetime
    cause: str
    cause_id: str | None
    tables: dict[str, dict[str, int]]


class Versions:
    def __init__(self, root: Path):
        self.root = Path(root)  # <home>/versions

    def _path(self, table: str) -> str:
        return str(self.root / table)

    def list(self) -> list[Version]:
        """Every version, oldest first."""
        if not DeltaTable.is_deltatable(self._path(LOG_TABLE)):
            return []
        rows = DeltaTable(self._path(LOG_TABLE)).to_pyarrow_table().sort_by("version").to_pylist()
        return [Version(r["version"], r["published_at"], r["cause"], r["cause_id"], json.loads(r["tables"])) for r in rows]

    def get(self, version: int) -> Version:
        for v in self.list():
            if v.version == version:
                return v
        raise KeyError(f"version {version} does not exist (versions: {', '.join(str(v.version) for v in self.list()) or 'none'})")

    def publish(self, tables: dict[str, pa.Table | pa.RecordBatchReader], cause: str, cause_id: str | None = None,
                rows: dict[str, int] | None = None) -> Version:
        """Write each table as its next Delta version, then append the version's log row: the log row is
        the commit marker, so a crash between the two leaves table versions no log row names (ignored).
        A table of the previous version not given here did not change: the new version names the same
        Delta version of it (nothing is rewritten). A table may come as a stream of batches (written while it
        is read), with its row count in ``rows``."""
        self.root.mkdir(parents=True, exist_ok=True)
        versions = self.list()
        number = (versions[-1].version if versions else 0) + 1
        written = {name: entry for name, entry in (versions[-1].tables.items() if versions else ())
                   if name not in tables}
        for name, table in tables.items():
            write_deltalake(self._path(name), table, mode="overwrite", schema_mode="overwrite")
            count = rows[name] if rows and name in rows else table.num_rows
            delta = DeltaTable(self._path(name))
            held = sum(delta.get_add_actions(flatten=True).column("num_records").to_pylist())
            if held != count:  # a stream cut short must never become a version
                raise RuntimeError(f"version {number}: {name} was written with {held:,} rows, not {count:,}")
            written[name] = {"delta_version": delta.version(), "rows": count}
        at = datetime.now(timezone.utc)
        write_deltalake(self._path(LOG_TABLE), pa.table(
            {"version": [number], "published_at": [at], "cause": [cause], "cause_id": [cause_id],
             "tables": [json.dumps(written)]}, schema=LOG_SCHEMA), mode="append")
        return Version(number, at, cause, cause_id, written)

    def read(self, table: str, version: int | None = None) -> pa.Table:
        """A published table as of ``version`` (the newest if None)."""
        v = self.get(version) if version is not None else (self.list() or [None])[-1]
        if v is None or table not in v.tables:
            raise KeyError(f"{table} was not published" + (f" in version {version}" if version else ""))
        return DeltaTable(self._path(table), version=v.tables[table]["delta_version"]).to_pyarrow_table()

    def diff(self, table: str, old: int, new: int, key: str = "lead_id") -> dict[str, list]:
        """Rows added and removed between two versions, and for the rows in both every field that changed
        (key, field, old value, new value)."""
        before, after = self.read(table, old), self.read(table, new)
        fields = [f for f in after.column_names if f != key and f in before.column_names]
        with duckdb.connect() as conn:
            conn.register("before_rows", before)
            conn.register("after_rows", after)
            added = [r[0] for r in conn.execute(
                f"select {key} from after_rows anti join before_rows using ({key}) order by 1").fetchall()]
            removed = [r[0] for r in conn.execute(
                f"select {key} from before_rows anti join after_rows using ({key}) order by 1").fetchall()]
            changed = []
            if fields:
                changes = field_changes_sql("before_rows", "after_rows", key, fields)
                changed = conn.execute(f"select * from ({changes}) order by 1, 2").fetchall()
        return {"added": added, "removed": removed, "changed": changed}

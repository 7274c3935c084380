"""Published versions: every publication is an immutable, numbered version of the published tables.

Each published table is a Delta table under ``<home>/versions/<table>``, overwritten per publication (Delta
keeps every earlier version: time travel); the ``log`` Delta table, only ever appended to, numbers the
publications and says which Delta version of each table belongs to each, with its row counts, cause and
time. Readers (the CRM, read-only commands) open these files, never the working DuckDB file, so they work
while a run holds it; DuckDB (delta extension), Polars and Spark read them too.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, Schema, write_deltalake

from .history import field_changes_sql

VERSIONS_DIR = "versions"
LOG_TABLE = "log"
# Tables are written sorted by their key in files of about this size, so each file covers a narrow key range:
# a version that changes a few leads rewrites only the files holding them (a correction batch of one event on
# a million-record library rewrites 4 MB, not the whole 35 MB table).
TARGET_FILE_BYTES = 4_000_000
# A version replaces rows in place only while it touches at most this share of a table's files; beyond it,
# rewriting the whole table is as fast and leaves fewer, fuller files.
REPLACE_IN_PLACE_SHARE = 0.25
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

    def can_replace_in_place(self, table: str, key: str, values: list[str], schema: Schema) -> bool:
        """Whether the next version of ``table`` (columns ``schema``) may be written as its previous version
        with the rows of these keys replaced: the newest Delta version is the one the newest version names (no
        unlogged write from a crashed publication underneath), it has the same columns, and the keys fall in
        few of its files."""
        versions = self.list()
        if not versions or table not in versions[-1].tables or not DeltaTable.is_deltatable(self._path(table)):
            return False
        delta = DeltaTable(self._path(table))
        if delta.version() != versions[-1].tables[table]["delta_version"] or delta.schema() != schema:
            return False
        files = delta.get_add_actions(flatten=True)
        if f"min.{key}" not in files.column_names:
            return False
        lows, highs = files.column(f"min.{key}").to_pylist(), files.column(f"max.{key}").to_pylist()
        if None in lows or None in highs:
            return False
        ordered = sorted(values)
        touched = 0
        for low, high in zip(lows, highs):
            start = bisect.bisect_left(ordered, low)
            touched += start < len(ordered) and ordered[start] <= high
        return touched <= max(1, REPLACE_IN_PLACE_SHARE * len(lows))

    def publish(self, tables: dict[str, pa.Table | pa.RecordBatchReader], cause: str, cause_id: str | None = None,
                rows: dict[str, int] | None = None,
                replaced: dict[str, tuple[str, list[str]]] | None = None) -> Version:
        """Write each table as its next Delta version, then append the version's log row: the log row is
        the commit marker, so a crash between the two leaves table versions no log row names (ignored).
        A table of the previous version not given here did not change: the new version names the same
        Delta version of it (nothing is rewritten). A table may come as a stream of batches (written while it
        is read), with its row count in ``rows``. A table named in ``replaced`` (table -> (key, values)) comes
        as only the current rows of those keys: they replace the previous version's rows of the same keys
        (a key with no row now is removed), in one Delta commit (see can_replace_in_place)."""
        self.root.mkdir(parents=True, exist_ok=True)
        versions = self.list()
        number = (versions[-1].version if versions else 0) + 1
        written = {name: entry for name, entry in (versions[-1].tables.items() if versions else ())
                   if name not in tables}
        for name, table in tables.items():
            keys = (replaced or {}).get(name)
            if keys is not None:
                key, values = keys
                write_deltalake(self._path(name), table, mode="overwrite", predicate=in_list_predicate(key, values),
                                target_file_size=TARGET_FILE_BYTES)
            else:
                write_deltalake(self._path(name), table, mode="overwrite", schema_mode="overwrite",
                                target_file_size=TARGET_FILE_BYTES)
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


def in_list_predicate(column: str, values: list[str]) -> str:
    """``column in ('a', 'b')`` as a Delta predicate (quotes doubled); an empty list matches nothing."""
    if not values:
        return "false"
    quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
    return f"{column} in ({quoted})"

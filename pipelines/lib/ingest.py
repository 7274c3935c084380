"""Load lead files into raw DuckDB tables with lineage, mapping headers to canonical fields."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from .field_mapping import CANONICAL_FIELDS, EXTRA_FIELD, FieldMapping, load_field_mapping
from .readers import LeadFileError, read_lead_file

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
REJECTIONS_TABLE = f"{RAW_SCHEMA}.ingest_rejections"
# One source system per watched folder; each has its own raw table and its own file types.
SOURCE_SYSTEMS: dict[str, tuple[str, ...]] = {
    "warehouse": ("*.parquet", "*.csv"),
    "inbox": ("*.xlsx", "*.xls", "*.csv"),
}


@dataclass
class IngestResult:
    source_system: str
    files_read: int = 0
    rows_read: int = 0
    rejected_files: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    rows_by_file: dict[str, int] = field(default_factory=dict)


def raw_table(source_system: str) -> str:
    return f"{RAW_SCHEMA}.{source_system}_leads"


def list_source_files(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    found = {p for pattern in patterns for p in folder.rglob(pattern) if p.is_file()}
    # Office lock files ("~$book.xlsx") and hidden files are not lead files.
    return sorted(p for p in found if not p.name.startswith(("~$", ".")))


def to_canonical(frame: pl.DataFrame, mapping: FieldMapping) -> pl.DataFrame:
    """Rename mapped columns to canonical fields; keep the unmapped ones as a JSON object of extras."""
    mapped, extras = mapping.plan(frame.columns)
    columns = []
    for canonical in CANONICAL_FIELDS:
        sources = mapped.get(canonical, [])
        if not sources:
            columns.append(pl.lit(None, dtype=pl.Utf8).alias(canonical))
        elif len(sources) == 1:
            columns.append(pl.col(sources[0]).alias(canonical))
        else:  # several phone/e-mail columns: keep all values, split again in standardisation
            columns.append(pl.concat_str([pl.col(s) for s in sources], separator=";", ignore_nulls=True).alias(canonical))
    if extras:
        columns.append(pl.struct([pl.col(c) for c in extras]).struct.json_encode().alias(EXTRA_FIELD))
    else:
        columns.append(pl.lit(None, dtype=pl.Utf8).alias(EXTRA_FIELD))
    return frame.select(columns)


def read_source_folder(
    folder: Path,
    home_root: Path,
    source_system: str,
    mapping: FieldMapping | None = None,
) -> tuple[pl.DataFrame, IngestResult]:
    """Read every lead file of one source folder into one canonical frame with lineage."""
    mapping = mapping or load_field_mapping()
    result = IngestResult(source_system)
    ingested_at = datetime.now(timezone.utc).replace(tzinfo=None)
    frames = []
    for path in list_source_files(folder, SOURCE_SYSTEMS[source_system]):
        label = path.relative_to(home_root).as_posix() if path.is_relative_to(home_root) else str(path)
        try:
            sheets = read_lead_file(path, label)
        except LeadFileError as exc:
            log.warning("rejected file %s: %s", label, exc)
            result.rejected_files.append((label, str(exc)))
            continue
        result.files_read += 1
        for sheet in sheets:
            canonical = to_canonical(sheet.frame, mapping).with_columns(
                pl.lit(source_system).alias("source_system"),
                pl.lit(sheet.label).alias("source_file"),
                pl.int_range(1, sheet.frame.height + 1, dtype=pl.Int64).alias("source_row"),
                pl.lit(ingested_at, dtype=pl.Datetime("us")).alias("ingested_at"),
            )
            frames.append(canonical)
            result.rows_by_file[sheet.label] = sheet.frame.height
            result.rows_read += sheet.frame.height
    frame = pl.concat(frames, how="vertical") if frames else empty_raw_frame()
    return frame, result


def empty_raw_frame() -> pl.DataFrame:
    schema = {c: pl.Utf8 for c in (*CANONICAL_FIELDS, EXTRA_FIELD)}
    schema.update(source_system=pl.Utf8, source_file=pl.Utf8, source_row=pl.Int64, ingested_at=pl.Datetime("us"))
    return pl.DataFrame(schema=schema)


def write_raw(conn: duckdb.DuckDBPyConnection, frame: pl.DataFrame, result: IngestResult) -> None:
    """Replace one source system's raw table and its file rejections in a single transaction."""
    table = raw_table(result.source_system)
    rejections = pl.DataFrame(
        {
            "source_system": [result.source_system] * len(result.rejected_files),
            "source_file": [f for f, _ in result.rejected_files],
            "reason": [r for _, r in result.rejected_files],
        },
        schema={"source_system": pl.Utf8, "source_file": pl.Utf8, "reason": pl.Utf8},
    )
    conn.execute(f"create schema if not exists {RAW_SCHEMA}")
    conn.execute(
        f"create table if not exists {REJECTIONS_TABLE} "
        "(source_system varchar, source_file varchar, reason varchar, rejected_at timestamp default current_timestamp)"
    )
    conn.execute("begin transaction")
    try:
        conn.register("incoming_raw", frame.to_arrow())
        conn.execute(f"create or replace table {table} as select * from incoming_raw")
        conn.execute(f"delete from {REJECTIONS_TABLE} where source_system = ?", [result.source_system])
        conn.register("incoming_rejections", rejections.to_arrow())
        conn.execute(f"insert into {REJECTIONS_TABLE} (source_system, source_file, reason) select * from incoming_rejections")
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("incoming_raw")
        conn.unregister("incoming_rejections")


def ingest_source(conn: duckdb.DuckDBPyConnection, home_root: Path, source_system: str) -> IngestResult:
    frame, result = read_source_folder(home_root / source_system, home_root, source_system)
    write_raw(conn, frame, result)
    log.info(
        "ingested %s: %d rows from %d files, %d files rejected",
        source_system, result.rows_read, result.files_read, len(result.rejected_files),
    )
    return result

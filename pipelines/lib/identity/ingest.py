"""Import lead files into the library: read, map headers, give every record its stable id, commit.

A record's id comes from its content or its source's key, never from where it sits (DESIGN.md,
Identity): ``md5(source | key)`` where the source declares a key column, else ``md5(source | the
record's canonical content)``. So renaming a file, reordering its rows, re-exporting it or archiving it
changes no record id, and identical rows of one source are one record.

- ``append`` sources (the inbox): each new file adds the records not already in the library; a file
  whose bytes were imported before adds nothing and is reported as a duplicate.
- ``snapshot`` sources (warehouse extracts): the folder's files together are the source's current
  state. Records missing from them are retired (a new ``retired`` version, never deleted), unless a
  file of the source could not be read or the share retired looks like a broken extract.
- database sources (``kind: database``): one read of the query per run, its rows taken exactly as a
  Parquet file's; with ``updated_at`` only rows changed since the mark of the last committed read
  (``imports.watermark``), and a snapshot's disappeared rows found from the listing of its keys.

Every file of a batch is committed to the library at once, and the working copy ``raw.library_records``
in DuckDB is refreshed from the library.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from ..sources.field_mapping import CANONICAL_FIELDS, EXTRA_FIELD, FieldMapping, load_field_mapping, normalise_header
from ..quality.profiling import relation_exists
from .library import IMPORT_ROW_SCHEMA, IMPORTS_SCHEMA, RECORD_SCHEMA, Library, library_of, new_import_id
from ..sources.database import DatabaseSourceError, read_database_source
from ..sources.readers import ROW_COLUMN, LeadFileError, Sheet, is_lead_file_candidate, read_lead_file
from ..sources.sources import ARCHIVE_DIR, FAILED_DIR, Source, load_sources
from ..refresh import PENDING_CHANGES, ensure_refresh_tables

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
LIBRARY_RECORDS = f"{RAW_SCHEMA}.library_records"   # the library's current records: dbt's one source
LIBRARY_IMPORTS = f"{RAW_SCHEMA}.library_imports"   # every import, for summaries and receipts
WORKING_COPY_STATE = f"{RAW_SCHEMA}.working_copy_state"  # the library table versions the working copy mirrors
# Records retired from the library, with the import that first brought each: one that comes back (an
# extract holds it again) keeps its first import, as a rebuild from the library's history would give it.
RETIRED_RECORDS = f"{RAW_SCHEMA}.retired_records"
MIRRORED_TABLES = ("records", "imports", "reversions")  # a restore changes what is current
KEY_COLUMN = "_record_key"
_SEP = "chr(31)"


@dataclass
class FileImport:
    """What happened to one file; the counts reconcile: rows_read = rows accepted + rows_rejected."""

    import_id: int
    source_system: str
    file_name: str
    path: Path
    content_hash: str
    file_bytes: int
    status: str = "imported"  # imported | duplicate | unchanged | failed
    reason: str | None = None
    duplicate_of: int | None = None
    stored_as: str | None = None
    rows_read: int = 0
    rows_rejected: int = 0
    lines_skipped: int = 0
    records_new: int = 0
    records_updated: int = 0
    records_retired: int = 0
    watermark: str | None = None  # database sources: the largest updated_at this read saw

    def as_row(self, batch_id: int, imported_at: datetime, run_id: str | None) -> dict:
        row = {k: v for k, v in asdict(self).items() if k != "path"}
        return {**row, "batch_id": batch_id, "imported_at": imported_at, "run_id": run_id}


@dataclass
class ImportBatch:
    batch_id: int
    files: list[FileImport] = field(default_factory=list)
    retired: dict[str, int] = field(default_factory=dict)            # source -> records retired
    retirement_withheld: dict[str, str] = field(default_factory=dict)  # source -> why nothing was retired
    working_copy_in_sync: bool = False  # the working copy was updated by this batch alone, not rebuilt

    @property
    def imported(self) -> list[FileImport]:
        return [f for f in self.files if f.status == "imported"]

    @property
    def failed(self) -> list[FileImport]:
        return [f for f in self.files if f.status == "failed"]

    def counts(self) -> dict[str, int]:
        return {
            "files_imported": len(self.imported),
            "files_duplicate": sum(f.status == "duplicate" for f in self.files),
            "files_unchanged": sum(f.status == "unchanged" for f in self.files),
            "files_failed": len(self.failed),
            "rows_read": sum(f.rows_read for f in self.imported),
            "rows_rejected": sum(f.rows_rejected for f in self.imported),
            "records_new": sum(f.records_new for f in self.files),
            "records_updated": sum(f.records_updated for f in self.files),
            "records_retired": sum(self.retired.values()),
        }


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Partial downloads and editors' temporary files are not files yet.
PARTIAL_SUFFIXES = (".part", ".crdownload", ".download", ".tmp", ".partial", ".filepart")
SETTLE_SECONDS = 2.0
# A workbook (a zip) without its end record may still be copying; one that stays so this long is broken,
# and the import answers it as corrupt.
INCOMPLETE_ZIP_GRACE_SECONDS = 60.0


def zip_is_complete(path: Path) -> bool:
    """Whether a zip (xlsx/xlsm) ends with its end-of-central-directory record."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 66_000))
        tail = handle.read()
    return b"PK\x05\x06" in tail


def still_arriving(path: Path, now: float | None = None) -> bool:
    """A file being downloaded or copied into a watched folder: not to be read yet."""
    now = time.time() if now is None else now
    if path.name.lower().endswith(PARTIAL_SUFFIXES):
        return True
    try:
        age = now - path.stat().st_mtime
        if age < SETTLE_SECONDS:
            return True
        if path.suffix.lower() in (".xlsx", ".xlsm") and age < INCOMPLETE_ZIP_GRACE_SECONDS:
            with path.open("rb") as handle:
                if handle.read(4) == b"PK\x03\x04" and not zip_is_complete(path):
                    return True
    except FileNotFoundError:
        return True
    return False


def source_files(source: Source, home_root: Path, now: float | None = None) -> list[Path]:
    """Every candidate file of a folder source (any extension: an unreadable type is failed, not skipped);
    an append source's archive/ and failed/ folders are its history, not new files, and a file still
    arriving there is left for the next run."""
    folder = source.folder(home_root).resolve()
    if not folder.is_dir():
        return []
    kept = (folder / ARCHIVE_DIR, folder / FAILED_DIR)
    found = []
    for path in folder.rglob("*"):
        if not path.is_file() or not is_lead_file_candidate(path):
            continue
        if source.mode == "append" and (any(k in path.parents for k in kept) or still_arriving(path, now)):
            continue
        found.append(path)
    return sorted(found)


def file_label(path: Path, home_root: Path) -> str:
    return path.relative_to(home_root).as_posix() if path.is_relative_to(home_root) else path.name


def to_canonical(frame: pl.DataFrame, mapping: FieldMapping) -> pl.DataFrame:
    """Rename mapped columns to canonical fields; keep the unmapped ones as a JSON object of extras."""
    headers = [c for c in frame.columns if c != ROW_COLUMN]
    mapped, extras = mapping.plan(headers)
    columns = []
    for canonical in CANONICAL_FIELDS:
        sources = mapped.get(canonical, [])
        if not sources:
            columns.append(pl.lit(None, dtype=pl.Utf8).alias(canonical))
        elif len(sources) == 1:
            columns.append(pl.col(sources[0]).cast(pl.Utf8).alias(canonical))
        else:  # several phone/e-mail columns: keep all values, split again in standardisation
            columns.append(pl.concat_str([pl.col(s) for s in sources], separator=";", ignore_nulls=True).alias(canonical))
    if extras:
        columns.append(pl.struct([pl.col(c) for c in extras]).struct.json_encode().alias(EXTRA_FIELD))
    else:
        columns.append(pl.lit(None, dtype=pl.Utf8).alias(EXTRA_FIELD))
    return frame.select(columns)


def _hash_text(expr: pl.Expr) -> pl.Expr:
    """The form of a value that identity is computed from: full-width folded, spaces squeezed, Excel's
    ``.0`` on a whole number dropped, blank as missing. Only the id uses it; the record keeps its text."""
    text = (expr.cast(pl.Utf8).str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars()
            .str.replace(r"^(\d+)\.0+$", "${1}"))
    return pl.when(text == "").then(None).otherwise(text)


@dataclass
class _ReadFile:
    file: FileImport
    frame: pl.DataFrame | None          # canonical rows with lineage and the hash text
    notes: list[tuple[str, int, str, str]]  # (source_file, row, outcome, reason) for rejected/skipped lines
    # database sources: rows at the old mark (read before, maybe unchanged), the keys now in a snapshot
    # source read incrementally, and the rows as read (an append source's copy in its archive)
    at_mark: list[int] = field(default_factory=list)
    present_keys: pl.Series | None = None
    rows_as_read: pl.DataFrame | None = None
    database: bool = False


def _read_file(path: Path, item: FileImport, source: Source, mapping: FieldMapping,
               content: bytes | None = None) -> _ReadFile:
    try:
        sheets = read_lead_file(path, item.file_name, mapping, content)
    except LeadFileError as exc:
        item.status, item.reason = "failed", f"{exc.reason_zh} ({exc.reason_en})"
        return _ReadFile(item, None, [])
    except Exception as exc:  # a reader bug must fail this file, never the run for the others
        log.exception("unexpected error reading %s", item.file_name)
        item.status = "failed"
        item.reason = f"读取文件时出错 (the file could not be read: {type(exc).__name__})"
        return _ReadFile(item, None, [])
    return _read_sheets(sheets, item, source, mapping)


def _read_sheets(sheets: list[Sheet], item: FileImport, source: Source, mapping: FieldMapping) -> _ReadFile:
    """A file's (or a database read's) sheets -> canonical rows with lineage and identity text."""
    frames, notes = [], []
    key_header = normalise_header(source.key) if source.key else None
    for sheet in sheets:
        notes += [(sheet.label, n.row, "rejected", n.reason) for n in sheet.rejected]
        notes += [(sheet.label, n.row, "skipped", n.reason) for n in sheet.skipped]
        canonical = to_canonical(sheet.frame, mapping)
        if key_header:
            key_columns = [c for c in sheet.frame.columns if c != ROW_COLUMN and normalise_header(c) == key_header]
            if not key_columns:
                item.status = "failed"
                item.reason = (f"找不到主键列「{source.key}」 (the key column {source.key!r} that identifies a record "
                               f"in {source.name} is missing)")
                return _ReadFile(item, None, [])
            canonical = canonical.with_columns(_hash_text(sheet.frame[key_columns[0]]).alias(KEY_COLUMN))
        else:
            canonical = canonical.with_columns(pl.lit(None, dtype=pl.Utf8).alias(KEY_COLUMN))
        frames.append(canonical.with_columns(
            pl.lit(sheet.label).alias("source_file"),
            sheet.frame[ROW_COLUMN].cast(pl.Int64).alias("source_row"),
        ))
    frame = pl.concat(frames, how="vertical") if frames else None
    if frame is not None and key_header:
        empty_key = frame.filter(pl.col(KEY_COLUMN).is_null())
        notes += [(f, r, "rejected", f"主键「{source.key}」为空 (the key {source.key!r} is empty)")
                  for f, r in empty_key.select("source_file", "source_row").iter_rows()]
        frame = frame.filter(pl.col(KEY_COLUMN).is_not_null())
    item.rows_rejected = sum(1 for n in notes if n[2] == "rejected")
    item.lines_skipped = sum(1 for n in notes if n[2] == "skipped")
    item.rows_read = (frame.height if frame is not None else 0) + item.rows_rejected
    if frame is not None:
        frame = frame.with_columns(
            pl.lit(item.import_id, dtype=pl.Int64).alias("import_id"),
            pl.lit(source.name).alias("source_system"),
            _identity_text().alias("_content_text"),
            _version_text().alias("_version_text"),
        )
    return _ReadFile(item, frame, notes)


# created_at came after the first libraries were built: 创建时间/登记时间 used to arrive as updated_at. A
# record's content id is computed as it was then (one date slot: updated_at, else created_at), so the
# split changes no record id and no lead id.
_LATER_FIELDS = ("created_at",)


def _identity_text() -> pl.Expr:
    """The canonical content a record's id is computed from."""
    parts = []
    for name in CANONICAL_FIELDS:
        if name in _LATER_FIELDS:
            continue
        value = _hash_text(pl.col(name))
        if name == "updated_at":
            value = pl.coalesce(value, _hash_text(pl.col("created_at")))
        parts.append(value.fill_null("\x00"))
    return pl.concat_str(parts, separator="\x1f")


def _version_text() -> pl.Expr:
    """What a record's version also depends on beyond its id: the date that now goes to created_at. A
    record stored with that date as updated_at gets a new version (same id) with it in its place."""
    return pl.when(pl.col("created_at").is_not_null()).then(
        pl.concat_str([pl.lit("\x1fcreated_at\x1f"), _hash_text(pl.col("created_at")).fill_null("\x00")])
    ).otherwise(pl.lit(""))


def import_files(
    conn: duckdb.DuckDBPyConnection,
    home_root: Path,
    sources: tuple[Source, ...] | None = None,
    only_files: list[Path] | None = None,
    run_id: str | None = None,
    mapping: FieldMapping | None = None,
    move_files: bool = True,
    exclude: frozenset[Path] = frozenset(),
) -> ImportBatch:
    """Import the sources' files (or ``only_files``, into the first append source) into the library.

    ``exclude``: files that are not lead files (review workbooks, applied elsewhere) and stay out of it.
    ``only_files`` outside an append source's folder (``leadfactory ingest /path/x.xlsx``) are copied into
    its archive; files inside it are moved there after the commit (failed ones to ``failed/``)."""
    mapping = mapping or load_field_mapping()
    sources = sources or load_sources()
    library = library_of(home_root)
    imported_at = datetime.now(timezone.utc).replace(tzinfo=None)
    library.register(conn)
    in_sync = working_copy_in_sync(conn, library)
    if in_sync:  # the working copy is the library's current state: compare against it, not the Delta log
        conn.execute(f"create or replace temp view lib_current_records as "
                     f"select * exclude (first_import_id) from {LIBRARY_RECORDS}")
    try:
        newest = conn.execute("select greatest((select coalesce(max(import_id), 0) from lib_all_imports), "
                              "(select coalesce(max(import_id), 0) from lib_all_records))").fetchone()[0]
        batch = ImportBatch(batch_id=new_import_id(at_least=newest))
        plan: list[tuple[Source, list[Path]]] = []
        if only_files is not None:
            inbox = next((s for s in sources if s.mode == "append" and not s.is_database), None)
            if inbox is None:
                raise ValueError("no append source is declared to import files into (pipelines/config/sources.yaml)")
            plan.append((inbox, [Path(p).resolve() for p in only_files if Path(p).resolve() not in exclude]))
        else:
            plan += [(s, [p for p in source_files(s, home_root) if p not in exclude])
                     for s in sources if not s.is_database]

        reads: list[_ReadFile] = []
        snapshot_reads: dict[str, list[_ReadFile]] = {}
        for source, paths in plan:
            if source.is_snapshot and not paths:
                batch.retirement_withheld[source.name] = "no extract in the folder: nothing is retired"
                continue
            source_reads = _plan_source(conn, source, paths, home_root, mapping, batch)
            if source.is_snapshot:
                if source_reads is None:  # every extract already imported and nothing gone: no change
                    continue
                if not source_reads:
                    batch.retirement_withheld[source.name] = "the extracts vanished while reading: nothing is retired"
                    continue
                snapshot_reads[source.name] = source_reads
            reads += source_reads or []
        if only_files is None:  # the nightly run reads every database source; a file import none
            for source in (s for s in sources if s.is_database):
                read = _read_database(conn, source, home_root, mapping, batch)
                if source.is_snapshot:
                    snapshot_reads[source.name] = [read]
                reads.append(read)

        frames = [r.frame for r in reads if r.frame is not None]
        _stage_incoming(conn, frames)
        _drop_rows_read_before(conn, reads)
        retire = _retirements(conn, sources, snapshot_reads, batch)
        _settle_database_reads(conn, reads, retire)
        records, rows = _versions(conn, reads, retire, imported_at)
        targets = _plan_storage(batch, sources, home_root, imported_at) if move_files else {}
        _keep_database_reads(reads, sources, home_root, imported_at)
        imports = [r.file.as_row(batch.batch_id, imported_at, run_id) for r in reads]
        library.commit_batch(
            records,
            rows,
            pa.Table.from_pylist(imports, schema=IMPORTS_SCHEMA),
        )
    finally:
        library.unregister(conn)
    _move_files(batch, sources, home_root, targets)
    # the batch's versions become pending changes in the same transaction that brings the working copy
    # up to date: a crash between the two would leave committed records that no run ever processes
    changes = records.select(["record_id", "change", "import_id"])
    if in_sync:
        apply_to_working_copy(conn, library, records, pa.Table.from_pylist(imports, schema=IMPORTS_SCHEMA), changes)
    else:
        refresh_working_copy(conn, library, changes)
    batch.working_copy_in_sync = in_sync
    for item in batch.files:
        level = logging.WARNING if item.status == "failed" else logging.INFO
        log.log(level, "%s %s: %s rows read, %s rejected, %s new records%s", item.status, item.file_name,
                item.rows_read, item.rows_rejected, item.records_new, f" ({item.reason})" if item.reason else "")
    return batch


def _plan_source(conn, source: Source, paths: list[Path], home_root: Path, mapping: FieldMapping,
                 batch: ImportBatch) -> list[_ReadFile] | None:
    """Hash and read one source's files. A snapshot whose files were all imported before and still hold
    exactly the source's current records needs nothing: return None."""
    items = []
    contents: dict[int, bytes] = {}  # the bytes hashed are the bytes read
    seen: dict[str, int] = {}
    known = dict(conn.execute(
        "select content_hash, min(import_id) from lib_imports where source_system = ? and status = 'imported' group by 1",
        [source.name]).fetchall())
    for path in paths:
        if not path.is_file():
            log.warning("%s is gone; nothing to import", path)
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.warning("%s is gone; nothing to import", path)
            continue
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
        item = FileImport(new_import_id(), source.name, file_label(path, home_root), path, digest, size)
        contents[item.import_id] = data
        if source.mode == "append" and (digest in known or digest in seen):
            item.status, item.duplicate_of = "duplicate", known.get(digest, seen.get(digest))
            item.reason = "此文件内容以前已导入，未重复导入 (this file's content was imported before; nothing was added again)"
        elif source.is_snapshot and digest in known:
            item.status, item.duplicate_of = "unchanged", known[digest]
        seen.setdefault(digest, item.import_id)
        items.append(item)
    # (A keyed source is always re-read: a known file may hold older content for keys a later file changed.)
    if source.is_snapshot and not source.key and items and all(i.status == "unchanged" for i in items):
        ids = [i.duplicate_of for i in items]
        same = conn.execute(f"""
            with snapshot as (select distinct record_id from lib_import_rows
                              where outcome = 'accepted' and import_id in ({', '.join(map(str, ids))})),
                 current as (select record_id from lib_current_records where source_system = ?)
            select (select count(*) from snapshot) = (select count(*) from current)
               and (select count(*) from snapshot anti join current using (record_id)) = 0
        """, [source.name]).fetchone()[0]
        if same:
            return None
    reads = []
    for item in items:
        batch.files.append(item)
        if item.status == "duplicate":
            reads.append(_ReadFile(item, None, []))
        else:
            reads.append(_read_file(item.path, item, source, mapping, contents.pop(item.import_id, None)))
    return reads


DATABASE_LABEL = "db:{name}"  # a database read's "file" in the import log, receipts and records' lineage


def _database_mark(conn, source: Source) -> str | None:
    """Where the source's next read starts: the mark of its latest committed read that no restore reverted."""
    row = conn.execute("""
        select watermark from lib_imports
        where source_system = ? and status in ('imported', 'unchanged') and watermark is not null
          and import_id::varchar not in (select reverted_id from lib_all_reversions where kind = 'import')
        order by import_id desc limit 1
    """, [source.name]).fetchone()
    return row[0] if row else None


def _read_database(conn, source: Source, home_root: Path, mapping: FieldMapping, batch: ImportBatch) -> _ReadFile:
    """One read of a database source, as one "file" of the batch; a source that cannot be read is failed
    (as an unreadable extract is: nothing of it is retired, and its mark stays where it was)."""
    label = DATABASE_LABEL.format(name=source.name)
    mark = _database_mark(conn, source) if source.updated_at else None
    item = FileImport(new_import_id(), source.name, label, source.folder(home_root), "", 0)
    batch.files.append(item)
    try:
        read = read_database_source(source, mark, mapping, label)
    except DatabaseSourceError as exc:
        item.status, item.reason = "failed", f"{exc.reason_zh} ({exc.reason_en})"
        return _ReadFile(item, None, [])
    rows = read.sheet.frame
    item.content_hash = hashlib.sha256(rows.write_ipc(None).getvalue()).hexdigest()
    item.file_bytes = read.bytes_read
    item.watermark = read.watermark
    result = _read_sheets([read.sheet], item, source, mapping)
    result.database = True
    if result.file.status == "failed":
        return result
    result.at_mark = read.at_mark
    result.rows_as_read = rows if source.mode == "append" else None
    if read.present_keys is not None:
        keys = read.present_keys.to_frame("key").select(_hash_text(pl.col("key")).alias("key"))
        result.present_keys = keys.drop_nulls().to_series()
    log.info("%s: read %s rows%s", source.name, rows.height,
             f" changed since {mark}" if mark is not None else "")
    return result


def _drop_rows_read_before(conn, reads: list[_ReadFile]) -> None:
    """Rows at the old mark that the library already holds as they are were read by the last run: they are
    neither read nor accounted for again (``>=`` at the mark reads them, so that a row with the mark's
    timestamp committed after that run is not missed)."""
    flagged = [(r.file.import_id, row) for r in reads for row in r.at_mark]
    if not flagged:
        return
    conn.register("at_mark_rows", pa.table({"import_id": pa.array([i for i, _ in flagged], pa.int64()),
                                            "source_row": pa.array([n for _, n in flagged], pa.int64())}))
    try:
        conn.execute("""
            create or replace temp table read_before as
            select i.import_id, i.source_row from incoming i
            join at_mark_rows a using (import_id, source_row)
            join lib_current_records c on c.record_id = i.record_id and c.content_hash = i.content_hash
        """)
        dropped = dict(conn.execute("select import_id, count(*) from read_before group by 1").fetchall())
        conn.execute("delete from incoming where (import_id, source_row) in (select (import_id, source_row) "
                     "from read_before)")
    finally:
        conn.unregister("at_mark_rows")
    for r in reads:
        r.file.rows_read -= dropped.get(r.file.import_id, 0)


def _missing_keys(conn, source: Source, keys: pl.Series) -> list[str]:
    """Current records of a keyed database source whose key the source no longer holds."""
    conn.register("present_keys", pa.table({"key": keys.cast(pl.Utf8).to_arrow()}))
    try:
        return [r[0] for r in conn.execute(f"""
            select record_id from lib_current_records where source_system = ?
            except
            select md5(? || {_SEP} || 'key' || {_SEP} || key) from present_keys
        """, [source.name, source.name]).fetchall()]
    finally:
        conn.unregister("present_keys")


def _settle_database_reads(conn, reads: list[_ReadFile], retire: dict[str, list[str]]) -> None:
    """A database read that brought nothing new (no row, no rejection, nothing retired) is ``unchanged``,
    as an extract imported before is: no receipt, no copy kept."""
    for r in reads:
        item = r.file
        if not r.database or r.frame is None or item.status != "imported":
            continue
        left = conn.execute("select count(*) from incoming where import_id = ?", [item.import_id]).fetchone()[0]
        if left == 0 and not r.notes and item.source_system not in retire:
            item.status = "unchanged"


def _keep_database_reads(reads: list[_ReadFile], sources: tuple[Source, ...], home_root: Path,
                         imported_at: datetime) -> None:
    """An append database source's rows as read are kept in its archive, as an inbox file is, so its
    receipt's rows can be looked up. Written before the commit: a crash leaves an unreferenced copy only."""
    by_name = {s.name: s for s in sources}
    for r in reads:
        if r.rows_as_read is None or r.file.status != "imported":
            continue
        source = by_name[r.file.source_system]
        target = archive_target(source.folder(home_root) / ARCHIVE_DIR, f"{source.name}.parquet", imported_at)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        r.rows_as_read.write_parquet(tmp)
        tmp.replace(target)
        r.file.stored_as = file_label(target, home_root)


def _stage_incoming(conn: duckdb.DuckDBPyConnection, frames: list[pl.DataFrame]) -> None:
    """``incoming``: every read row with its record id and content hash (computed by DuckDB's md5)."""
    columns = ["import_id", "source_system", *CANONICAL_FIELDS, EXTRA_FIELD, "source_file", "source_row",
               KEY_COLUMN, "_content_text", "_version_text"]
    if frames:
        frame = pl.concat([f.select(columns) for f in frames], how="vertical")
    else:
        frame = pl.DataFrame(schema={c: (pl.Int64 if c in ("import_id", "source_row") else pl.Utf8) for c in columns})
    conn.register("incoming_frame", frame.with_row_index("_order").to_arrow())
    conn.execute(f"""
        create or replace temp table incoming as
        select * exclude (_content_text, _version_text, {KEY_COLUMN}),
               -- a keyed record is versioned when any of its values changes, unmapped columns included
               md5(_content_text || _version_text
                   || case when {KEY_COLUMN} is not null then chr(31) || coalesce({EXTRA_FIELD}, '') else '' end) as content_hash,
               case when {KEY_COLUMN} is not null then md5(source_system || {_SEP} || 'key' || {_SEP} || {KEY_COLUMN})
                    else md5(source_system || {_SEP} || 'content' || {_SEP} || _content_text) end as record_id,
               {KEY_COLUMN} is not null as keyed
        from incoming_frame
    """)
    conn.unregister("incoming_frame")


def _retirements(conn, sources: tuple[Source, ...], snapshot_reads: dict[str, list[_ReadFile]],
                 batch: ImportBatch) -> dict[str, list[str]]:
    """Record ids to retire per snapshot source: current records no file of the newest extract holds."""
    retire: dict[str, list[str]] = {}
    for source in sources:
        reads = snapshot_reads.get(source.name)
        if reads is None:
            continue
        failed = [r.file.file_name for r in reads if r.file.status == "failed"]
        if failed:
            batch.retirement_withheld[source.name] = (
                f"an extract could not be read ({', '.join(failed)}): nothing is retired until it can be")
            continue
        if source.is_database:
            keys = reads[0].present_keys
            if (keys.len() if keys is not None else reads[0].file.rows_read) == 0:  # as an empty folder is
                batch.retirement_withheld[source.name] = "the query returned no rows: nothing is retired"
                continue
            if keys is not None:  # read incrementally: what is there now is the listing of its keys
                ids = _missing_keys(conn, source, keys)
                _withhold_or_retire(conn, source, ids, retire, batch)
                continue
        ids = [r[0] for r in conn.execute("""
            select record_id from lib_current_records c where source_system = ?
              and not exists (select 1 from incoming i where i.record_id = c.record_id)
        """, [source.name]).fetchall()]
        _withhold_or_retire(conn, source, ids, retire, batch)
    return retire


def _withhold_or_retire(conn, source: Source, ids: list[str], retire: dict[str, list[str]],
                        batch: ImportBatch) -> None:
    """Retire ``ids``, unless they are more than the share a sound extract could lose."""
    current = conn.execute("select count(*) from lib_current_records where source_system = ?",
                           [source.name]).fetchone()[0]
    if ids and current and len(ids) / current > source.max_retire_share:
        batch.retirement_withheld[source.name] = (
            f"the new extract would retire {len(ids):,} of {current:,} records (more than "
            f"{source.max_retire_share:.0%}): taken as a broken extract, nothing is retired")
        log.warning("%s: %s", source.name, batch.retirement_withheld[source.name])
        return
    if ids:
        retire[source.name] = ids
        batch.retired[source.name] = len(ids)


def _versions(conn, reads: list[_ReadFile], retire: dict[str, list[str]], imported_at: datetime):
    """New and updated record versions, retirements, and every row's outcome, as Arrow tables."""
    # One version per record per batch: the first row for content ids (identical rows), the last row for
    # keyed ones (a later row of the same key is the newer state).
    conn.execute("""
        create or replace temp table incoming_records as
        select * from incoming
        qualify row_number() over (partition by record_id
                                   order by case when keyed then -_order else _order end) = 1
    """)
    conn.execute("""
        create or replace temp table new_versions as
        select i.*, case when c.record_id is null then 'new' else 'updated' end as change
        from incoming_records i
        left join lib_current_records c using (record_id)
        where c.record_id is null or c.content_hash <> i.content_hash
    """)
    retired = [(source, rid) for source, ids in retire.items() for rid in ids]
    conn.register("retired_frame", pa.table({"source_system": [s for s, _ in retired], "record_id": [r for _, r in retired]},
                                            schema=pa.schema([("source_system", pa.string()), ("record_id", pa.string())])))
    retire_import: dict[str, int] = {}
    for r in reads:  # the first readable file of each extract carries the retirements (and its receipt says so)
        if r.file.status != "failed":
            retire_import.setdefault(r.file.source_system, r.file.import_id)
    conn.register("retire_import_frame", pa.table({"source_system": list(retire_import),
                                                   "import_id": pa.array(list(retire_import.values()), pa.int64())}))
    canonical = ", ".join(CANONICAL_FIELDS)
    # A row edited in place (same file and row of a snapshot source, the old content retired in this
    # batch) replaces the old record: the lead keeps its id rather than losing one record and gaining another.
    records = conn.execute(f"""
        with replaced as (
            select c.record_id, c.source_system, c.source_file, c.source_row, c.name, c.mobile, c.email, c.company
            from lib_current_records c join retired_frame r using (record_id)
        ),
        successors as (  -- same place, and the same person by name, mobile or e-mail: an edit, not a stranger
            select n.record_id, p.record_id as replaces
            from new_versions n join replaced p
              on n.change = 'new' and p.source_system = n.source_system
             and p.source_file = n.source_file and p.source_row = n.source_row
             and (p.name = n.name or p.mobile = n.mobile or p.email = n.email)
            qualify row_number() over (partition by n.record_id order by p.record_id) = 1
                and row_number() over (partition by p.record_id order by n.record_id) = 1
        )
        select n.record_id, n.import_id, n.change, n.source_system, n.content_hash, {canonical}, {EXTRA_FIELD},
               n.source_file, n.source_row, ?::timestamp as ingested_at, s.replaces
        from new_versions n
        left join successors s using (record_id)
        union all
        select r.record_id, ri.import_id, 'retired', r.source_system, null, {', '.join('null' for _ in CANONICAL_FIELDS)},
               null, null, null, ?::timestamp, null
        from retired_frame r join retire_import_frame ri using (source_system)
    """, [imported_at, imported_at]).fetch_arrow_table()
    conn.unregister("retired_frame")
    conn.unregister("retire_import_frame")
    for read in reads:
        item = read.file
        if item.status != "imported" and item.status != "unchanged":
            continue
        item.records_new, item.records_updated = conn.execute(
            "select count(*) filter (where change = 'new'), count(*) filter (where change = 'updated') "
            "from new_versions where import_id = ?", [item.import_id]).fetchone()
    for source, ids in retire.items():
        next(r.file for r in reads if r.file.import_id == retire_import[source]).records_retired = len(ids)
    notes = [(r.file.import_id, f, row, None, outcome, reason)
             for r in reads if r.file.status == "imported" for f, row, outcome, reason in r.notes]
    note_table = pa.Table.from_pylist(
        [dict(zip(IMPORT_ROW_SCHEMA.names, n)) for n in notes], schema=IMPORT_ROW_SCHEMA)
    conn.register("note_rows", note_table)
    imported_ids = [r.file.import_id for r in reads if r.file.status == "imported"] or [-1]
    rows = conn.execute(f"""
        select import_id, source_file, source_row, record_id, 'accepted' as outcome, null::varchar as reason
        from incoming where import_id in ({', '.join(map(str, imported_ids))})
        union all
        select * from note_rows
    """).fetch_arrow_table()
    conn.unregister("note_rows")
    return records.cast(RECORD_SCHEMA), rows.cast(IMPORT_ROW_SCHEMA)


def _plan_storage(batch: ImportBatch, sources: tuple[Source, ...], home_root: Path,
                  imported_at: datetime) -> dict[int, Path]:
    """Where each file of an append source will be kept: imported and duplicate ones in archive/, failed
    ones in failed/, named with the import time so nothing is overwritten. Nothing is ever deleted."""
    by_name = {s.name: s for s in sources}
    targets: dict[int, Path] = {}
    for item in batch.files:
        source = by_name[item.source_system]
        if source.mode != "append" or source.is_database:
            continue
        target_dir = source.folder(home_root) / (FAILED_DIR if item.status == "failed" else ARCHIVE_DIR)
        targets[item.import_id] = archive_target(target_dir, item.path.name, imported_at, set(targets.values()))
        item.stored_as = file_label(targets[item.import_id], home_root)
    return targets


def archive_target(target_dir: Path, name: str, when: datetime, taken: set[Path] = frozenset()) -> Path:
    """A free path for a processed file in ``target_dir``, named with its processing time."""
    stamp = when.strftime("%Y%m%d-%H%M%S")
    target = target_dir / f"{stamp}_{name}"
    n = 1
    while target.exists() or target in taken:
        n += 1
        target = target_dir / f"{stamp}-{n}_{name}"
    return target


def keep_processed_file(path: Path, source: Source, home_root: Path, when: datetime, folder: str = ARCHIVE_DIR) -> Path:
    """Move a processed file out of the source's folder into its archive (or ``folder``; a file from
    elsewhere is copied: it stays where its owner keeps it). Returns where it is kept."""
    target = archive_target(source.folder(home_root) / folder, path.name, when)
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.resolve().is_relative_to(source.folder(home_root).resolve()):
        path.replace(target)
    else:
        shutil.copy2(path, target)
    return target


def _move_files(batch: ImportBatch, sources: tuple[Source, ...], home_root: Path, targets: dict[int, Path]) -> None:
    """After the commit: files in the inbox move to their place; a file given on the command line from
    elsewhere stays where the user keeps it, and the library keeps a copy."""
    by_name = {s.name: s for s in sources}
    for item in batch.files:
        target = targets.get(item.import_id)
        if target is None or not item.path.exists():
            continue
        if file_hash(item.path) != item.content_hash:
            # Saved again while it was being imported: what was imported is in the library; the new
            # content stays in the inbox for the next import.
            log.warning("%s changed while it was imported; left in place for the next import", item.file_name)
            item.stored_as = None
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.path.is_relative_to(by_name[item.source_system].folder(home_root).resolve()):
            item.path.replace(target)
        else:
            shutil.copy2(item.path, target)


def _record_pending(conn: duckdb.DuckDBPyConnection, changes: pa.Table) -> None:
    conn.register("batch_versions", changes)
    try:
        conn.execute(f"insert into {PENDING_CHANGES} select record_id, change, import_id from batch_versions")
    finally:
        conn.unregister("batch_versions")


def _library_versions(library: Library) -> str:
    versions = library.versions()
    return ",".join(f"{name}={versions.get(name, -1)}" for name in MIRRORED_TABLES)


def working_copy_in_sync(conn: duckdb.DuckDBPyConnection, library: Library) -> bool:
    """Whether the working copy holds exactly the library's current records and imports (nothing was
    committed to the library since it was last brought up to date)."""
    if not all(relation_exists(conn, t) for t in (WORKING_COPY_STATE, LIBRARY_RECORDS, RETIRED_RECORDS)):
        return False
    # a working copy built by an older version of the product lacks a field added since: rebuild it
    schema, table = LIBRARY_RECORDS.split(".")
    columns = {r[0] for r in conn.execute("select column_name from duckdb_columns() "
                                          "where schema_name = ? and table_name = ?", [schema, table]).fetchall()}
    if not (set(RECORD_SCHEMA.names) - {"change"}) | {"first_import_id"} <= columns:
        return False
    schema, table = LIBRARY_IMPORTS.split(".")
    import_columns = {r[0] for r in conn.execute("select column_name from duckdb_columns() "
                                                 "where schema_name = ? and table_name = ?", [schema, table]).fetchall()}
    if not set(IMPORTS_SCHEMA.names) <= import_columns:
        return False
    row = conn.execute(f"select versions from {WORKING_COPY_STATE}").fetchone()
    return row is not None and row[0] == _library_versions(library)


def _mark_in_sync(conn: duckdb.DuckDBPyConnection, library: Library) -> None:
    conn.execute(f"create or replace table {WORKING_COPY_STATE} as select ? as versions", [_library_versions(library)])


def refresh_working_copy(conn: duckdb.DuckDBPyConnection, library: Library, changes: pa.Table | None = None) -> None:
    """Rebuild the DuckDB working copy of the library: current records and the import log (and list
    ``changes``, record versions just committed, as pending)."""
    library.register(conn)
    try:
        conn.execute(f"create schema if not exists {RAW_SCHEMA}")
        ensure_refresh_tables(conn)
        conn.execute("begin transaction")
        if changes is not None:
            _record_pending(conn, changes)
        # first_import_id: the import that first brought the record (a retired record that came back
        # included); a receipt tells rows that joined the library from rows it already had.
        conn.execute("""create or replace temp table first_imports as
                        select record_id, min(import_id) as first_import_id from (
                            select record_id, import_id from lib_records
                            union all select record_id, import_id from lib_import_rows where outcome = 'accepted')
                        group by 1""")
        conn.execute(f"""create or replace table {LIBRARY_RECORDS} as
                         select c.*, f.first_import_id
                         from lib_current_records c
                         join first_imports f using (record_id)
                         order by record_id""")
        conn.execute(f"""create or replace table {RETIRED_RECORDS} as
                         select f.record_id, f.first_import_id from first_imports f
                         anti join lib_current_records c using (record_id)""")
        conn.execute("drop table first_imports")
        conn.execute(f"create or replace table {LIBRARY_IMPORTS} as select * from lib_imports order by import_id")
        _mark_in_sync(conn, library)
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        library.unregister(conn)


def apply_to_working_copy(conn: duckdb.DuckDBPyConnection, library: Library, records: pa.Table,
                          imports: pa.Table, changes: pa.Table) -> None:
    """Bring an in-sync working copy up to date with one committed batch: its record versions replace
    the records they are versions of (a retired one just goes) and its imports join the log. A batch
    of 10,000 rows into a library of a million costs a fraction of a second instead of a rebuild."""
    conn.register("batch_records", records)
    conn.register("batch_imports", imports)
    ensure_refresh_tables(conn)
    try:
        conn.execute("begin transaction")
        _record_pending(conn, changes)
        conn.execute(f"""create or replace temp table batch_first_imports as
                         select b.record_id,
                                least(min(b.import_id), min(w.first_import_id), min(t.first_import_id)) as first_import_id
                         from batch_records b
                         left join {LIBRARY_RECORDS} w using (record_id)
                         left join {RETIRED_RECORDS} t using (record_id)
                         group by 1""")
        conn.execute(f"delete from {LIBRARY_RECORDS} where record_id in (select record_id from batch_records)")
        conn.execute(f"""insert into {LIBRARY_RECORDS} by name
                         select b.* exclude (change), f.first_import_id
                         from batch_records b join batch_first_imports f using (record_id)
                         where b.change <> 'retired'""")
        conn.execute(f"delete from {RETIRED_RECORDS} where record_id in (select record_id from batch_records)")
        conn.execute(f"""insert into {RETIRED_RECORDS}
                         select f.record_id, f.first_import_id
                         from batch_records b join batch_first_imports f using (record_id)
                         where b.change = 'retired'""")
        conn.execute(f"insert into {LIBRARY_IMPORTS} by name select * from batch_imports")
        _mark_in_sync(conn, library)
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("batch_records")
        conn.unregister("batch_imports")

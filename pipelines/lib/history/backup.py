"""Backup and recovery of the system of record.

The system of record is two folders of the home: ``library/`` (records, imports, rows, corrections, the event
log, decisions, the lead registry, the lead history: append-only Delta tables) and ``versions/`` (every
publication). The DuckDB file is working state: ``recover_home`` rebuilds it from them, so the next run
publishes the same leads with the same ids.

Delta tables only ever add files (data files and numbered log entries are never rewritten), so a backup
copies what is new or changed since the last one: incremental by construction. A file is copied to a
temporary name and renamed, so a backup interrupted half-way leaves no half file under a real name.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ..identity.ingest import file_hash
from ..identity.library import Library

log = logging.getLogger(__name__)

BACKUP_ENV = "LEADFACTORY_BACKUP"
SYSTEM_OF_RECORD = ("library", "versions")


class RecoveryError(RuntimeError):
    """Recovery refused, with the reason."""


def backup_location(home_root: Path) -> tuple[Path, str | None]:
    """``$LEADFACTORY_BACKUP``, else ``<home>/backup`` with a warning: the same disk as the home."""
    configured = os.environ.get(BACKUP_ENV)
    if configured:
        return Path(configured).expanduser().resolve(), None
    return home_root / "backup", (f"备份在同一磁盘上 (the backup is on the same disk as the home): set {BACKUP_ENV} "
                                  "to a folder on another disk")


def _files(root: Path) -> dict[str, Path]:
    found = {}
    for folder in SYSTEM_OF_RECORD:
        base = root / folder
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file() and not path.name.endswith(".partial"):
                    found[str(path.relative_to(root))] = path
    return found


def _same(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    return sa.st_size == sb.st_size and int(sa.st_mtime) == int(sb.st_mtime)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copy2(source, partial)
    partial.replace(target)


@dataclass(frozen=True)
class BackupReport:
    target: Path
    copied: int
    unchanged: int
    bytes_copied: int

    def render(self) -> str:
        return (f"backup {self.target}: {self.copied} files copied ({self.bytes_copied:,} bytes), "
                f"{self.unchanged} already there")


def backup_home(home_root: Path, target: Path) -> BackupReport:
    """Copy the files of the system of record that the backup lacks or holds in another version."""
    copied = unchanged = size = 0
    for relative, source in _files(home_root).items():
        destination = target / relative
        if destination.exists() and _same(source, destination):
            unchanged += 1
            continue
        _copy(source, destination)
        copied += 1
        size += source.stat().st_size
    return BackupReport(target, copied, unchanged, size)


def back_up_after_publication(home_root: Path, log: logging.Logger | logging.LoggerAdapter) -> BackupReport:
    """After each publication: the system of record to the backup location, incrementally; a backup on the
    home's own disk is warned about."""
    target, warning = backup_location(home_root)
    if warning:
        log.warning(warning)
    report = backup_home(home_root, target)
    log.info(report.render())
    return report


def verify_backup(home_root: Path, target: Path) -> list[str]:
    """Every file of the home's system of record is in the backup with the same content (sha256); the
    problems found, in words, or none."""
    problems = []
    if not target.is_dir():
        return [f"备份不存在 (no backup): {target}"]
    for relative, source in sorted(_files(home_root).items()):
        copy = target / relative
        if not copy.exists():
            problems.append(f"备份缺少文件 (missing in the backup): {relative}")
        elif copy.stat().st_size != source.stat().st_size or file_hash(copy) != file_hash(source):
            problems.append(f"备份内容不同 (differs from the home): {relative}")
    return problems


def mirror_working_state(conn: duckdb.DuckDBPyConnection, library: Library) -> dict[str, int]:
    """Append to the library what the working DuckDB file alone holds: decisions not yet there, and lead
    registry rows issued or changed since (the library keeps every state; the latest per lead holds)."""
    from ..matching.leads import DECISION_RECORDS, DECISIONS, LEAD_REGISTRY, ensure_matching_tables

    ensure_matching_tables(conn)
    now = datetime.now()
    written = {}
    conn.register("lib_decisions", library.dataset("decisions"))
    conn.register("lib_registry", library.dataset("lead_registry"))
    try:
        new = conn.execute(f"""select decision_id, lead_a, lead_b, decision, decided_by, decided_at, origin from {DECISIONS}
                               where decision_id > (select coalesce(max(decision_id), 0) from lib_decisions)
                               order by decision_id""").to_arrow_table()
        records = conn.execute(f"""select decision_id, side, record_id from {DECISION_RECORDS}
                                   where decision_id > (select coalesce(max(decision_id), 0) from lib_decisions)""").to_arrow_table()
        registry = conn.execute(f"""
            with current as (select * from lib_registry qualify row_number() over (partition by lead_id order by recorded_at desc) = 1)
            select r.lead_id, r.created_at, r.merged_into, ?::timestamp as recorded_at from {LEAD_REGISTRY} r
            left join current c using (lead_id)
            where c.lead_id is null or c.merged_into is distinct from r.merged_into""", [now]).to_arrow_table()
    finally:
        conn.unregister("lib_decisions")
        conn.unregister("lib_registry")
    # decision rows before the decisions: a decision is in the library once its own row is
    library.append("decision_records", records)
    library.append("decisions", new)
    library.append("lead_registry", registry)
    written.update(decisions=new.num_rows, registry=registry.num_rows)
    return written


def recover_home(home, source: Path) -> dict[str, int]:
    """Rebuild a home whose DuckDB file was lost from a backup (``source``): copy the system of record back
    (what the home lacks), then seed a new DuckDB file with what the next run builds on: the newest
    published version (so every lead keeps its id), the lead registry, the decisions and the corrections."""
    from ..corrections.apply import LEAD_CORRECTIONS, ensure_correction_tables
    from ..matching.leads import DECISION_RECORDS, DECISIONS, LEAD_REGISTRY, ensure_matching_tables
    from ..publish.publish import VERSIONED_TABLES
    from .versions import Versions

    source = Path(source).expanduser().resolve()
    if home.duckdb_path.exists():
        raise RecoveryError(f"{home.duckdb_path} exists: recovery rebuilds a home that lost its DuckDB file; "
                            "move the file away first if it is damaged")
    if not (source / "library").is_dir():
        raise RecoveryError(f"{source} holds no library/: not a backup of a lead home")
    restored = 0
    for relative, path in _files(source).items():
        target = home.root / relative
        if not target.exists() or not _same(path, target):
            _copy(path, target)
            restored += 1
    library = Library(home.root / "library")
    versions = Versions(home.versions_dir).list()
    counts = {"files_restored": restored, "version": versions[-1].version if versions else 0}
    with home.connect() as conn:
        ensure_matching_tables(conn)
        ensure_correction_tables(conn)
        if versions:
            reader = Versions(home.versions_dir)
            for table in VERSIONED_TABLES:
                conn.register("version_table", reader.read(table.split(".")[1]))
                conn.execute(f"create or replace table {table} as select * from version_table")
                conn.unregister("version_table")
        for name in ("lead_registry", "decisions", "decision_records", "corrections", "event_log", "reversions"):
            conn.register(f"lib_{name}", library.dataset(name))
        conn.execute(f"""insert into {LEAD_REGISTRY} select lead_id, created_at, merged_into from lib_lead_registry
                         qualify row_number() over (partition by lead_id order by recorded_at desc) = 1""")
        reverted = "(select reverted_id from lib_reversions where kind = '{}')"
        conn.execute(f"insert into {DECISIONS} by name select * from lib_decisions "
                     f"where decision_id::varchar not in {reverted.format('decision')}")
        conn.execute(f"""insert into {DECISION_RECORDS} by name select * from lib_decision_records
                         where decision_id in (select decision_id from {DECISIONS})""")
        # every committed correction: the next run lays them all over the leads it builds
        conn.execute(f"""insert into {LEAD_CORRECTIONS} by name
                         select distinct on (correction_id) * from lib_corrections
                         where event_id in (select event_id from lib_event_log)
                           and event_id not in {reverted.format('correction')}""")
        counts.update({
            "leads": conn.execute("select count(*) from published.leads_clean").fetchone()[0] if versions else 0,
            "registry": conn.execute(f"select count(*) from {LEAD_REGISTRY}").fetchone()[0],
            "decisions": conn.execute(f"select count(*) from {DECISIONS}").fetchone()[0],
            "corrections": conn.execute(f"select count(*) from {LEAD_CORRECTIONS}").fetchone()[0],
        })
    return counts

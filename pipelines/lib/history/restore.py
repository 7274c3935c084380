"""Restore: republish an old version as a new one, and make it hold.

``restore_version`` puts version V's tables back as the published ones (a new version, with history rows of
cause ``restore`` and notifications for the leads it changes) and marks in the library what was applied after
V: imports, corrections (events and edits) and decisions. Marked, never deleted: the library's readers leave
reverted imports out, corrections and decisions reverted are no longer laid over, so later runs keep V's state
plus only what arrives after the restore.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from ..identity.library import REVERSION_SCHEMA, Library


@dataclass(frozen=True)
class Restore:
    restore_id: str
    restored: int
    version: int
    reverted: dict[str, int]
    leads_changed: int

    def render(self) -> str:
        kinds = ", ".join(f"{n} {kind}s" for kind, n in self.reverted.items())
        return (f"version {self.restored} republished as version {self.version}; {self.leads_changed} leads changed; "
                f"reverted (marked, kept in the library): {kinds}")


def restore_version(conn, home, version: int, actor: str) -> Restore:
    from ..corrections.apply import LEAD_CORRECTIONS, ensure_correction_tables, flush_history
    from ..publish.postgres import sync_crm
    from ..matching.leads import DECISION_RECORDS, DECISIONS, ensure_matching_tables
    from ..notify.webhooks import ensure_notification_tables
    from ..publish.publish import (VERSIONED_TABLES, published_state_sql, lead_history_statements,
                                   mark_unversioned, publish_version)
    from .versions import Versions

    versions = Versions(home.versions_dir)
    target = versions.get(version)  # KeyError names the versions there are
    since = target.published_at.astimezone(timezone.utc).replace(tzinfo=None)
    library = Library(home.root / "library")
    restore_id = f"restore-{uuid.uuid4().hex[:12]}"
    ensure_matching_tables(conn)
    ensure_correction_tables(conn)
    ensure_notification_tables(conn)
    for name in ("imports", "corrections", "reversions"):
        conn.register(f"lib_{name}", library.dataset(name))
    try:
        already = "(select reverted_id from lib_reversions)"
        imports = [r[0] for r in conn.execute(
            f"select distinct import_id::varchar from lib_imports where imported_at > ? and import_id::varchar not in {already}",
            [since]).fetchall()]
        corrections = [r[0] for r in conn.execute(
            f"select distinct event_id from lib_corrections where recorded_at > ? and event_id not in {already}",
            [since]).fetchall()]
    finally:
        for name in ("imports", "corrections", "reversions"):
            conn.unregister(f"lib_{name}")
    decisions = [str(r[0]) for r in conn.execute(f"select decision_id from {DECISIONS} where decided_at > ?",
                                                 [since]).fetchall()]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    marks = [{"restore_id": restore_id, "restored_version": version, "kind": kind, "reverted_id": i,
              "reverted_at": now, "actor": actor}
             for kind, ids in (("import", imports), ("correction", corrections), ("decision", decisions)) for i in ids]
    # the marks first: a crash after them leaves the system of record restoring, and a rerun finds nothing new
    # to mark but republishes V
    library.append("reversions", pa.Table.from_pylist(marks, REVERSION_SCHEMA))
    tables = {name: versions.read(name.split(".")[1], version) for name in VERSIONED_TABLES}
    conn.execute("begin transaction")
    try:
        conn.execute(f"create or replace temp table published_before as {published_state_sql()}")
        for name, table in tables.items():
            conn.register("restored_table", table)
            conn.execute(f"create or replace table {name} as select * from restored_table")
            conn.unregister("restored_table")
        if corrections:
            conn.execute(f"delete from {LEAD_CORRECTIONS} where event_id in (select unnest(?))", [corrections])
        if decisions:  # working state only: the library keeps them, marked reverted
            ids = [int(d) for d in decisions]
            conn.execute(f"delete from {DECISION_RECORDS} where decision_id in (select unnest(?))", [ids])
            conn.execute(f"delete from {DECISIONS} where decision_id in (select unnest(?))", [ids])
        for statement in lead_history_statements(restore_id, actor.replace("'", ""), cause="restore",
                                                 rule=f"restore of version {version}"):
            conn.execute(statement)
        changed = conn.execute("select count(distinct lead_id) from lead_changes").fetchone()[0]
        mark_unversioned(conn, "restore")
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    new = publish_version(conn, home.versions_dir, f"restore of version {version}", restore_id)
    flush_history(conn, library.root, new.version)
    sync_crm(conn, home.versions_dir, library.root, new)
    return Restore(restore_id, version, new.version,
                   {"import": len(imports), "correction": len(corrections), "decision": len(decisions)}, changed)

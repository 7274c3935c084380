"""The published tables for the CRM in PostgreSQL (schema ``crm``), with the roles the database enforces.

When ``LEADFACTORY_POSTGRES_URL`` names the pipeline's own login, every publication (run, correction batch,
restore) also writes ``leads_clean``, ``leads_unreachable``, ``lead_members``, ``lead_review_queue`` and the
new lead-history rows there, in one PostgreSQL transaction: a reader sees the previous version or the new
one, never a mix (``delete`` + binary ``COPY``, both MVCC; ``truncate`` would show an empty table to a
reader whose snapshot is older). ``crm.versions`` names the version the tables hold.

Roles (``leadfactory roles setup`` / ``roles add-sales``), as a CRM grants them:

- ``lead_manager`` reads every row of every table;
- ``lead_sales`` (the group of the sales logins) reads only the leads whose ``owner`` is mapped to its login
  in ``crm.sales_owners``: row-level security, forced, so the tables' owner is no exception;
- ``lead_service`` reads only schema ``crm_masked``: the same tables with mobiles and e-mails masked as
  everywhere else (``138****8000``, ``z***@qq.com``);
- nobody but the pipeline writes, and nobody at all updates or deletes history (no privilege, no policy,
  and a trigger that refuses).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..quality.masking import mask_email_sql, mask_phone_sql
from .publish import LEAD_MEMBERS, LEAD_REVIEW_QUEUE, LEADS_CLEAN, LEADS_UNREACHABLE

log = logging.getLogger(__name__)

POSTGRES_URL_ENV = "LEADFACTORY_POSTGRES_URL"
CRM = "crm"
CRM_MASKED = "crm_masked"
MANAGER, SALES, SERVICE = "lead_manager", "lead_sales", "lead_service"
GROUP_ROLES = (MANAGER, SALES, SERVICE)

# CRM table -> the DuckDB table it copies, its key and the columns the CRM looks leads up by.
CRM_TABLES = {
    "leads_clean": (LEADS_CLEAN, "lead_id", ("mobile", "email", "owner")),
    "leads_unreachable": (LEADS_UNREACHABLE, "lead_id", ("mobile", "email", "owner")),
    "lead_members": (LEAD_MEMBERS, "record_id", ("lead_id",)),
    "lead_review_queue": (LEAD_REVIEW_QUEUE, "review_id", ("lead_id_l", "lead_id_r", "mobile_l", "email_l")),
}
HISTORY = "lead_history"
# which owners' leads each sales login reads (roles add-sales)
SALES_OWNERS_DDL = (f"create table if not exists {CRM}.sales_owners (role_name text not null, owner text not null, "
                    "primary key (role_name, owner))")
HISTORY_COLUMNS = (("lead_id", "text"), ("field", "text"), ("old_value", "text"), ("new_value", "text"),
                   ("cause", "text"), ("cause_id", "text"), ("rule", "text"), ("actor", "text"),
                   ("changed_at", "timestamptz"), ("version", "bigint"))
# Which lead each table's row belongs to: a sales login sees a row when it may see that lead.
ROW_LEADS = {"leads_clean": ("lead_id",), "leads_unreachable": ("lead_id",), "lead_members": ("lead_id",),
             "lead_review_queue": ("lead_id_l", "lead_id_r"), HISTORY: ("lead_id",)}
PHONE_COLUMNS = {"mobile", "mobiles", "landline", "landlines", "qq", "qqs", "mobile_l", "mobile_r"}
EMAIL_COLUMNS = {"email", "emails", "email_l", "email_r"}
WECHAT_COLUMNS = {"wechat", "wechats"}
_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "DOUBLE": "double precision",
          "FLOAT": "real", "BOOLEAN": "boolean", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
          "DATE": "date", "HUGEINT": "numeric", "SMALLINT": "smallint"}


class PostgresError(RuntimeError):
    """The CRM database refused or could not be reached; the message says what to do."""


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


def _connect(url: str):
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise PostgresError(f"无法连接 CRM 数据库 (cannot connect to the CRM database named by {POSTGRES_URL_ENV}): "
                            f"{str(exc).strip().splitlines()[0]}") from exc


def _pg_type(duckdb_type: str) -> str:
    if duckdb_type.endswith("[]"):
        return _pg_type(duckdb_type[:-2]) + "[]"
    if duckdb_type.startswith("DECIMAL"):
        return "numeric"
    return _TYPES.get(duckdb_type, "text")


def _columns(duck: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(row[0], _pg_type(row[1])) for row in duck.execute(f"describe {relation}").fetchall()]


def _existing_columns(pg, table: str) -> list[tuple[str, str]]:
    rows = pg.execute("select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
                      "where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped order by a.attnum",
                      [f"{CRM}.{table}"]).fetchall()
    return [(name, kind.replace("timestamp without time zone", "timestamp")
             .replace("timestamp with time zone", "timestamptz")) for name, kind in rows]


def _masked(column: str, kind: str) -> str:
    """The service role's view of one column."""
    quoted = f'"{column}"'
    if column in PHONE_COLUMNS:
        rule = mask_phone_sql
    elif column in EMAIL_COLUMNS:
        rule = mask_email_sql
    elif column in WECHAT_COLUMNS:
        def rule(c: str) -> str:
            return f"(case when {c} is null then null else left({c}, 2) || '***' end)"
    else:
        return quoted
    if kind.endswith("[]"):
        return f"array(select {rule('v')} from unnest({quoted}) as v) as {quoted}"
    return f"{rule(quoted)} as {quoted}"


def _history_view() -> str:
    contact = ", ".join(f"'{c}'" for c in sorted(PHONE_COLUMNS | EMAIL_COLUMNS | WECHAT_COLUMNS))

    def value(column: str) -> str:
        return (f"case when field in ({', '.join(repr(c) for c in sorted(EMAIL_COLUMNS))}) then {mask_email_sql(column)} "
                f"when field in ({contact}) then {mask_phone_sql(column)} else {column} end as {column}")

    names = ", ".join(name if name not in ("old_value", "new_value") else value(name) for name, _ in HISTORY_COLUMNS)
    return f"select {names} from {CRM}.{HISTORY}"


def _create_table(pg, table: str, columns: list[tuple[str, str]]) -> None:
    body = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    pg.execute(f"create table {CRM}.{table} ({body})")


def _index_table(pg, table: str, key: str, lookups: tuple[str, ...]) -> None:
    """The key and the lookup indexes, built once the first rows are in (one sorted build is several
    times faster than index maintenance row by row)."""
    if not pg.execute("select 1 from pg_constraint where conname = %s and connamespace = %s::regnamespace",
                      [f"{table}_pkey", CRM]).fetchone():
        pg.execute(f"alter table {CRM}.{table} add constraint {table}_pkey primary key ({key})")
    present = {row[0] for row in pg.execute(
        "select attname from pg_attribute where attrelid = to_regclass(%s) and attnum > 0", [f"{CRM}.{table}"])}
    for column in lookups:
        if column in present:
            pg.execute(f"create index if not exists {table}_{column}_idx on {CRM}.{table} ({column})")


def _protect(pg) -> None:
    """Row-level security, forced, on every CRM table: even the tables' owner passes only through a policy
    (its own). Laid after a new table's first rows are in: PostgreSQL refuses COPY into a table whose
    row-level security applies to the writer, and a table created in the running transaction is seen by
    nobody else meanwhile."""
    for table in (*CRM_TABLES, HISTORY):
        protected = pg.execute("select relrowsecurity and relforcerowsecurity from pg_class where oid = to_regclass(%s)",
                               [f"{CRM}.{table}"]).fetchone()
        if protected is None or protected[0]:
            continue
        pg.execute(f"alter table {CRM}.{table} enable row level security")
        pg.execute(f"alter table {CRM}.{table} force row level security")
        pg.execute(f"drop policy if exists pipeline_writes on {CRM}.{table}")
        pg.execute(f"create policy pipeline_writes on {CRM}.{table} to current_user using (true) with check (true)")


def ensure_crm_tables(pg, duck: duckdb.DuckDBPyConnection) -> set[str]:
    """Create or reshape the CRM tables after the DuckDB ones; the tables created or reshaped (empty now).
    When anything changed, the masked views and the roles' access are laid again."""
    changed = False
    reshaped = set()
    pg.execute(f"create schema if not exists {CRM}")
    pg.execute(f"create schema if not exists {CRM_MASKED}")
    for table, (relation, _, _) in CRM_TABLES.items():
        wanted, existing = _columns(duck, relation), _existing_columns(pg, table)
        if existing == wanted:
            continue
        if existing:  # a new column or type: the next publication copies every row anyway
            pg.execute(f"drop view if exists {CRM_MASKED}.{table}")
            pg.execute(f"drop table {CRM}.{table}")
        _create_table(pg, table, wanted)
        reshaped.add(table)
        changed = True
    if not _existing_columns(pg, HISTORY):
        columns = ", ".join(f"{name} {kind}" for name, kind in HISTORY_COLUMNS)
        pg.execute(f"create table {CRM}.{HISTORY} (entry_id bigint generated always as identity, {columns})")
        reshaped.add(HISTORY)
        # append-only whoever asks: no policy lets a row be updated or deleted, and the trigger says why
        pg.execute(f"""create or replace function {CRM}.refuse_history_change() returns trigger language plpgsql as $$
            begin
                raise exception '线索历史只能追加，不能修改或删除 (lead history is append-only: % refused)', tg_op;
            end $$""")
        pg.execute(f"create trigger history_is_append_only before update or delete on {CRM}.{HISTORY} "
                   f"for each row execute function {CRM}.refuse_history_change()")
        pg.execute(f"create trigger history_is_never_truncated before truncate on {CRM}.{HISTORY} "
                   f"for each statement execute function {CRM}.refuse_history_change()")
        changed = True
    if _existing_columns(pg, "versions") == []:
        pg.execute(f"create table {CRM}.versions (version bigint primary key, published_at timestamptz not null "
                   f"default now(), cause text, cause_id text, row_counts jsonb)")
        pg.execute(SALES_OWNERS_DDL)
        changed = True
    if changed:
        _create_masked_views(pg, duck)
        if _group_roles_exist(pg):
            apply_access(pg)
    return reshaped


def _create_masked_views(pg, duck: duckdb.DuckDBPyConnection) -> None:
    for table, (relation, _, _) in CRM_TABLES.items():
        columns = ", ".join(_masked(name, kind) for name, kind in _columns(duck, relation))
        pg.execute(f"create or replace view {CRM_MASKED}.{table} as select {columns} from {CRM}.{table}")
    pg.execute(f"create or replace view {CRM_MASKED}.{HISTORY} as {_history_view()}")
    pg.execute(f"create or replace view {CRM_MASKED}.versions as select * from {CRM}.versions")


def _group_roles_exist(pg) -> bool:
    found = pg.execute("select count(*) from pg_roles where rolname = any(%s)", [list(GROUP_ROLES)]).fetchone()[0]
    return found == len(GROUP_ROLES)


def apply_access(pg) -> None:
    """Grants and row-level policies for the group roles (idempotent: dropped and laid again)."""
    pg.execute(f"revoke all on schema {CRM}, {CRM_MASKED} from public")
    pg.execute(f"grant usage on schema {CRM} to {MANAGER}, {SALES}")
    pg.execute(f"grant usage on schema {CRM_MASKED} to {SERVICE}")
    pg.execute(f"grant select on all tables in schema {CRM} to {MANAGER}")
    pg.execute(f"grant select on all tables in schema {CRM_MASKED} to {SERVICE}")
    pg.execute(f"grant select on {CRM}.versions to {SALES}")
    own = (f"(select lead_id from {CRM}.leads_clean union all select lead_id from {CRM}.leads_unreachable)")
    for table, leads in ROW_LEADS.items():
        pg.execute(f"grant select on {CRM}.{table} to {SALES}")
        for policy in ("manager_reads", "sales_reads"):
            pg.execute(f"drop policy if exists {policy} on {CRM}.{table}")
        pg.execute(f"create policy manager_reads on {CRM}.{table} for select to {MANAGER} using (true)")
        if table in ("leads_clean", "leads_unreachable"):
            mine = (f"owner in (select owner from {CRM}.sales_owners where role_name = current_user)")
        else:  # rows of a lead the login may see (the subquery is itself under the leads' policy)
            mine = " or ".join(f"{lead} in {own}" for lead in leads)
        pg.execute(f"create policy sales_reads on {CRM}.{table} for select to {SALES} using ({mine})")
    # a sales login reads its own owner mapping, nothing else of it
    pg.execute(f"alter table {CRM}.sales_owners enable row level security")
    pg.execute(f"alter table {CRM}.sales_owners force row level security")
    for policy in ("pipeline_writes", "manager_reads", "sales_reads"):
        pg.execute(f"drop policy if exists {policy} on {CRM}.sales_owners")
    pg.execute(f"create policy pipeline_writes on {CRM}.sales_owners to current_user using (true) with check (true)")
    pg.execute(f"create policy manager_reads on {CRM}.sales_owners for select to {MANAGER} using (true)")
    pg.execute(f"create policy sales_reads on {CRM}.sales_owners for select to {SALES} using (role_name = current_user)")
    pg.execute(f"grant select on {CRM}.sales_owners to {SALES}")
    pg.execute(f"revoke insert, update, delete, truncate on all tables in schema {CRM} from {MANAGER}, {SALES}")


def setup_roles(url: str, duck: duckdb.DuckDBPyConnection | None) -> list[str]:
    """Create the group roles (the pipeline's login needs CREATEROLE), the schemas and, when leads were
    published, the tables; then the access. Returns what was created."""
    created = []
    with _connect(url) as pg, pg.transaction():
        for role in GROUP_ROLES:
            if not pg.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone():
                pg.execute(f"create role {role} nologin")
                created.append(role)
        pg.execute(f"create schema if not exists {CRM}")
        pg.execute(f"create schema if not exists {CRM_MASKED}")
        if duck is not None:
            ensure_crm_tables(pg, duck)
            _protect(pg)
        if _existing_columns(pg, "leads_clean"):
            apply_access(pg)
    return created


def add_sales(url: str, role: str, owners: list[str]) -> bool:
    """Create (or reuse) a sales login role and map it to owner values; True when the role was created."""
    from psycopg import sql

    if not role.replace("_", "").isalnum() or not role[0].isalpha():
        raise PostgresError(f"角色名只能含字母、数字和下划线 (a role name is letters, digits and _): {role!r}")
    with _connect(url) as pg, pg.transaction():
        if not _group_roles_exist(pg):
            raise PostgresError("先运行 leadfactory roles setup (run `leadfactory roles setup` first)")
        exists = pg.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone() is not None
        if not exists:
            pg.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        pg.execute(sql.SQL("grant {} to {}").format(sql.Identifier(SALES), sql.Identifier(role)))
        pg.execute(SALES_OWNERS_DDL)
        for owner in owners:
            pg.execute(f"insert into {CRM}.sales_owners values (%s, %s) on conflict do nothing", [role, owner])
    return not exists


@dataclass
class CrmSync:
    version: int
    full: bool  # some table was copied whole (first publication, new columns, or an unknown held version)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def render(self) -> str:
        copied = ", ".join(f"{table} {rows:,}" for table, rows in self.rows.items())
        return (f"CRM database (schema {CRM}): version {self.version} "
                f"({'whole tables' if self.full else 'changes only'}): {copied} rows copied in {self.seconds:.1f} s")


def _copy(pg, table: str, reader, columns: list[tuple[str, str]], direct: bool = False) -> int:
    """Binary COPY of an Arrow batch reader (psycopg adapts each batch's values in C, no row inserts) into a
    staging table, then one insert: PostgreSQL refuses COPY into a table whose row-level security applies to
    the writer, and it does apply to the pipeline (forced). ``direct``: a table made in this transaction, not
    protected yet, takes the COPY itself."""
    names = ", ".join(f'"{name}"' for name, _ in columns)
    stage = f"{CRM}.{table}" if direct else f"crm_stage_{table}"
    if not direct:
        pg.execute(f"drop table if exists {stage}")
        pg.execute(f"create temp table {stage} on commit drop as select {names} from {CRM}.{table} with no data")
    count = 0
    with pg.cursor().copy(f"copy {stage} ({names}) from stdin (format binary)") as copy:
        copy.set_types([kind for _, kind in columns])
        for batch in reader:
            values = [column.to_pylist() for column in batch.columns]
            for row in zip(*values):
                copy.write_row(row)
            count += batch.num_rows
    if not direct:
        pg.execute(f"insert into {CRM}.{table} ({names}) select {names} from {stage}")
    return count


def sync_crm(duck: duckdb.DuckDBPyConnection, versions_dir: Path, library_root: Path, version,
             changed_leads: list[str] | None = None, url: str | None = None) -> CrmSync | None:
    """Write the just-published ``version`` to the CRM database in one transaction. Only what changed since
    the version the CRM holds is deleted and copied (found by comparing with that version in
    ``versions_dir``, or, for a correction batch on top of the CRM's version, the ``changed_leads``); a
    table the CRM never held, or whose columns changed, is copied whole. Nothing to do (None) when no CRM
    database is configured."""
    url = url or postgres_url()
    if url is None:
        return None
    from ..history.versions import Versions

    started = time.perf_counter()
    versions = Versions(versions_dir)
    with _connect(url) as pg, pg.transaction():
        reshaped = ensure_crm_tables(pg, duck)
        held = pg.execute(f"select max(version) from {CRM}.versions").fetchone()[0]
        report = CrmSync(version.version, full=held is None or bool(reshaped))
        on_top = changed_leads is not None and held == version.version - 1 and not reshaped
        for table, (relation, key, _) in CRM_TABLES.items():
            columns = _columns(duck, relation)
            names = ", ".join(f'"{name}"' for name, _ in columns)
            if on_top:  # a correction batch changes leads, never members or the review queue
                if key == "lead_id":
                    pg.execute(f"delete from {CRM}.{table} where lead_id = any(%s)", [changed_leads])
                    report.rows[table] = _copy(pg, table, duck.execute(
                        f"select {names} from {relation} where lead_id in (select unnest(?))", [changed_leads])
                        .to_arrow_reader(50_000), columns)
                continue
            before = None
            if held is not None and table not in reshaped:
                try:
                    before = versions.read(table, held)
                except KeyError:  # the CRM holds a version this home no longer has: copy it whole
                    before = None
            if before is None or before.schema.names != [name for name, _ in columns]:
                report.full = True
                pg.execute(f"delete from {CRM}.{table}")
                report.rows[table] = _copy(pg, table, duck.execute(f"select {names} from {relation}")
                                           .to_arrow_reader(50_000), columns,
                                           direct=_unprotected_for_load(pg, table, reshaped, held))
                continue
            duck.register("crm_before", before)
            try:
                # rows new or changed since the held version, and the keys of rows gone or changed
                duck.execute(f"create or replace temp table crm_upserts as select {names} from {relation} "
                             f"except select {names} from crm_before")
                gone = [row[0] for row in duck.execute(
                    f"select {key} from crm_before anti join {relation} using ({key}) "
                    f"union all select {key} from crm_upserts").fetchall()]
            finally:
                duck.unregister("crm_before")
            if gone:
                pg.execute(f"delete from {CRM}.{table} where {key} = any(%s)", [gone])
            report.rows[table] = _copy(pg, table, duck.execute("select * from crm_upserts").to_arrow_reader(50_000),
                                       columns)
            duck.execute("drop table crm_upserts")
        report.rows[HISTORY] = _copy_history(pg, library_root, held or 0, version.version,
                                             direct=_unprotected_for_load(pg, HISTORY, reshaped, held))
        for table, (_, key, lookups) in {**CRM_TABLES, HISTORY: (None, "entry_id", ("lead_id", "version"))}.items():
            _index_table(pg, table, key, lookups)
        _protect(pg)
        pg.execute(f"insert into {CRM}.versions (version, cause, cause_id, row_counts) values (%s, %s, %s, %s)",
                   [version.version, version.cause, version.cause_id, json.dumps(
                       {name: entry["rows"] for name, entry in version.tables.items()})])
    report.seconds = time.perf_counter() - started
    log.info(report.render())
    return report


def _unprotected_for_load(pg, table: str, reshaped: set[str], held: int | None) -> bool:
    """A table made in this transaction, or one the CRM never held a version of (empty: made by ``roles
    setup``), takes its rows by COPY itself: its row-level security is lifted until ``_protect`` lays it
    again before the commit (the lock this takes only keeps readers of a table with no version waiting)."""
    if table in reshaped:
        return True
    if held is not None:
        return False
    pg.execute(f"alter table {CRM}.{table} no force row level security, disable row level security")
    return True


def _copy_history(pg, library_root: Path, after: int, upto: int, direct: bool = False) -> int:
    """The history rows of the versions after the CRM's last one, up to this one."""
    from deltalake import DeltaTable

    from ..history.history import HISTORY_TABLE

    path = str(Path(library_root) / HISTORY_TABLE)
    if not DeltaTable.is_deltatable(path):
        return 0
    import pyarrow.dataset as ds

    names = [name for name, _ in HISTORY_COLUMNS]
    dataset = DeltaTable(path).to_pyarrow_dataset()
    scanner = dataset.scanner(columns=names, filter=(ds.field("version") > after) & (ds.field("version") <= upto),
                              batch_size=50_000)
    return _copy(pg, HISTORY, scanner.to_batches(), list(HISTORY_COLUMNS), direct=direct)

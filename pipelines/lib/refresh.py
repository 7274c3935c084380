"""Whether a run rebuilds the working state from the whole library or only what its changed records touch.

Every import lists the records it added, updated or retired in ``raw.pending_changes``; a publication
consumes them. An import of named files (the inbox sensor, ``leadfactory ingest``) into a library whose
working state is complete is *incremental*: dbt standardises only the pending records, Splink scores
them against the library and each other, and only the leads they touch are rebuilt and republished.
Anything else (the nightly run, a first run, a working state that is missing a table, a batch too large
to be worth it) is *full*. The plan is written once per run by the import step and read by every later
step of the same run; a step run on its own (from the UI) finds no plan for its run and works in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from .paths import CONFIG_DIR, PACKAGE_DIR
from .quality.profiling import relation_exists
from .standardise.dbt_project import DBT_SOURCES, files_fingerprint

PENDING_CHANGES = "raw.pending_changes"   # record_id, change (new | updated | retired), import_id
REFRESH_PLAN = "raw.refresh_plan"         # one row per run that imported: its mode and why
RULES_BUILT = "raw.rules_built"           # the fingerprint of the rules the working state was built with
# What the working state is built by: a change to any of these makes the next run full.
RULE_FILES = (*DBT_SOURCES,
              *(CONFIG_DIR / name for name in ("matching.yaml", "match_model.json", "field_synonyms.yaml", "sources.yaml")),
              # rules written in Python: pinyin keys, the match input and blocking keys, survivorship
              PACKAGE_DIR / "lib" / "standardise" / "pinyin.py", PACKAGE_DIR / "lib" / "standardise" / "dbt_udfs.py",
              PACKAGE_DIR / "lib" / "matching" / "matching.py", PACKAGE_DIR / "lib" / "matching" / "leads.py",
              PACKAGE_DIR / "lib" / "matching" / "clustering.py")
# Above this share of the library (and this many records), rebuilding everything is about as fast.
INCREMENTAL_MAX_SHARE = 0.2
INCREMENTAL_ALWAYS_UNDER = 1000  # a small batch is incremental whatever the library's size


@dataclass(frozen=True)
class RefreshPlan:
    run_id: str
    mode: str  # full | incremental
    reason: str
    changed_records: int

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    def describe(self) -> str:
        return f"{self.mode} ({self.reason})"


def rules_fingerprint() -> str:
    """A hash of the standardisation and matching rules: the dbt project, the config they read (matching
    thresholds, the match model, sources, header mappings) and the rules written in Python."""
    return files_fingerprint(RULE_FILES)


def record_rules_sql(fingerprint: str) -> list[str]:
    """Statements for a full publication: the working state now matches these rules."""
    return [f"create table if not exists {RULES_BUILT} (fingerprint varchar, recorded_at timestamp)",
            f"delete from {RULES_BUILT}",
            f"insert into {RULES_BUILT} values ('{fingerprint}', current_timestamp)"]


def ensure_refresh_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute(f"create table if not exists {PENDING_CHANGES} (record_id varchar, change varchar, import_id bigint)")
    conn.execute(f"""create table if not exists {REFRESH_PLAN} (
        run_id varchar, mode varchar, reason varchar, changed_records bigint, planned_at timestamp)""")


def decide_refresh(conn: duckdb.DuckDBPyConnection, run_id: str, named_files: bool, working_copy_in_sync: bool,
                   working_state: tuple[str, ...]) -> RefreshPlan:
    """Choose this run's mode and write it down for the later steps."""
    ensure_refresh_tables(conn)
    changed, library = conn.execute(f"""select (select count(distinct record_id) from {PENDING_CHANGES}),
                                              (select count(*) from raw.library_records)""").fetchone()
    missing = [t for t in (*working_state, RULES_BUILT) if not relation_exists(conn, t)]
    built_with = None if missing else conn.execute(f"select max(fingerprint) from {RULES_BUILT}").fetchone()[0]
    if not named_files:
        mode, reason = "full", "a run over every declared source rebuilds everything"
    elif not working_copy_in_sync:
        mode, reason = "full", "the working copy had to be rebuilt from the library"
    elif missing:
        mode, reason = "full", f"no complete working state yet ({', '.join(missing)} missing)"
    elif built_with != rules_fingerprint():
        mode, reason = "full", "the rules (dbt models, seeds or matching config) changed since the last full run"
    elif changed > max(INCREMENTAL_MAX_SHARE * library, INCREMENTAL_ALWAYS_UNDER):
        mode, reason = "full", f"{changed:,} changed records are over {INCREMENTAL_MAX_SHARE:.0%} of the library"
    else:
        mode, reason = "incremental", f"{changed:,} changed records against a library of {library:,}"
    conn.execute(f"insert into {REFRESH_PLAN} values (?, ?, ?, ?, current_timestamp)", [run_id, mode, reason, changed])
    return RefreshPlan(run_id, mode, reason, changed)


def refresh_plan(conn: duckdb.DuckDBPyConnection, run_id: str | None, root_run_id: str | None = None) -> RefreshPlan:
    """The plan the import step of ``run_id`` wrote, else that of the run it re-executes (``root_run_id``:
    a retry from failure that does not import again builds on what its original run planned); a run
    without one works in full."""
    if relation_exists(conn, REFRESH_PLAN):
        for candidate in (run_id, root_run_id):
            if not candidate:
                continue
            row = conn.execute(f"select mode, reason, changed_records from {REFRESH_PLAN} where run_id = ? "
                               "order by planned_at desc limit 1", [candidate]).fetchone()
            if row:
                return RefreshPlan(run_id or candidate, *row)
    return RefreshPlan(run_id or "", "full", "this run did not import: everything is rebuilt", 0)


def consume_pending_sql() -> str:
    """Run inside the publication's transaction: what it published includes every pending change."""
    return f"delete from {PENDING_CHANGES}"

"""``leadfactory``: run and inspect the lead factory from a terminal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from pipelines.lib.home import LeadHome


def _home(args: argparse.Namespace) -> LeadHome:
    home = LeadHome.from_env(args.home).ensure()
    home.export_env()
    return home


def _execute_job(args: argparse.Namespace, job_name: str, run_config: dict | None = None):
    """Run a job of the code location in-process on the home's Dagster instance (recorded for the UI).

    The run waits for the home's writer lock if another run holds it (it says so); runs left behind by a
    process that died are marked failed first, so they block nothing."""
    home = _home(args)
    from dagster import DagsterInstance

    from pipelines.defs.run_health import reap_dead_runs
    from pipelines.runs import load_job

    job = load_job(job_name)
    print(f"running {job_name} on {home.root}", flush=True)
    holder = home.writer_lock_holder()
    with home.instance_lock():
        instance = DagsterInstance.get()
        instance.get_run_records(limit=1)  # creates the storage now, under the lock, if the home is new
    with instance:
        for run_id in reap_dead_runs(instance):
            print(f"run {run_id} had died; marked failed so it blocks nothing", file=sys.stderr)
        if holder and _lock_is_held(home):
            print(f"waiting for the run writing the library: {holder.get('holder')} (pid {holder.get('pid')})",
                  file=sys.stderr, flush=True)
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={**(run_config or {}),
                        "loggers": {"console": {"config": {"log_level": "DEBUG" if args.verbose else "INFO"}}}},
        )
    return home, result


def _lock_is_held(home: LeadHome) -> bool:
    from pipelines.lib.home import WriterBusy

    try:
        with home.writer_lock("probe", wait_seconds=0):
            return False
    except WriterBusy:
        return True


def _report(result) -> int:
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"run {result.run_id} FAILED at {', '.join(failed) or 'an unknown step'}; "
              "the previous publication is unchanged", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    home, result = _execute_job(args, "nightly_job")
    print_summary(home)
    print_receipts(result)
    return _report(result)


def cmd_ingest(args: argparse.Namespace) -> int:
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = [str(Path(f).resolve()) for f in args.files]
    from pipelines.defs.ingest.assets import import_run_config

    home, result = _execute_job(args, "inbox_import_job", import_run_config(files))
    receipts = print_receipts(result)
    if result.success:
        print_summary(home)
    code = _report(result)
    return code if code else (1 if any(r.get("status") == "failed" for r in receipts) else 0)


def print_receipts(result) -> list[dict]:
    """Print what each file's receipt says (from the run's metadata) and where it is."""
    receipts: list[dict] = []
    for event in result.all_events:
        if not event.is_step_materialization:
            continue
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.path == ["raw", "library_records"]:
            for item in materialization.metadata["files"].value:
                if item["status"] in ("duplicate", "failed"):
                    receipts.append({**item, "receipt": None})
        if materialization.asset_key.path == ["outbox", "import_receipts"]:
            receipts += [{**r, "status": r["status"]} for r in materialization.metadata["receipts"].value]
    for item in receipts:
        if item["status"] == "imported":
            print(f"{item['file']}: {item['rows_read']:,} rows read = {item['new_leads']:,} new leads + "
                  f"{item['merged']:,} merged + {item['review']:,} for review + {item['rejected']:,} rejected")
            print(f"  receipt: {item['receipt']}")
        elif item["status"] == "duplicate":
            print(f"{item['file']}: already imported before (same content); nothing added; kept as {item['kept_as']}")
        elif item["status"] == "failed":
            print(f"{item['file']}: NOT imported: {item['reason']}; kept as {item['kept_as']}")
    return receipts


def cmd_train(args: argparse.Namespace) -> int:
    import json
    import math

    from pipelines.lib.matching.match_config import load_match_config

    _, result = _execute_job(args, "training_job")
    if result.success:
        model = json.loads(load_match_config().model_path.read_text(encoding="utf-8"))
        print(f"model written to {load_match_config().model_path}")
        print(f"probability two random records match: {model['probability_two_random_records_match']:.3g}")
        for comparison in model["comparisons"]:
            print(f"  {comparison['output_column_name']}")
            for level in comparison["comparison_levels"]:
                if level.get("is_null_level"):
                    continue
                m, u = level.get("m_probability"), level.get("u_probability")
                print(f"    {level['label_for_charts']:<28} m={m:.4f}  u={u:.3g}  weight {math.log2(m / u):+.1f} bits")
    return _report(result)


def cmd_decide(args: argparse.Namespace) -> int:
    from pipelines.lib.matching.leads import record_decision

    home = _home(args)
    with home.writer_lock(f"leadfactory decide ({args.by})"), home.connect() as conn:
        try:
            decision_id = record_decision(conn, args.lead_a, args.lead_b, args.decision, decided_by=args.by)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        from pipelines.lib.history.backup import mirror_working_state
        from pipelines.lib.identity.library import library_of

        mirror_working_state(conn, library_of(home.root))  # the decision survives losing the DuckDB file
    print(f"decision {decision_id} recorded: {args.lead_a} and {args.lead_b} are {args.decision}; "
          "it applies from the next run and is never overridden by the model")
    return 0


def cmd_review_export(args: argparse.Namespace) -> int:
    from pipelines.lib.matching.review import export_review_workbook, sheet_title

    home = _home(args)
    output = Path(args.output).expanduser().resolve() if args.output else None
    if output is not None and not output.is_relative_to(home.root):
        # the workbook holds every contact in full: personal data stays under the data home (README)
        print(f"error: {args.output}: 审核工作簿含完整联系方式，只能保存在数据目录 {home.root} 之下 (the review workbook "
              f"holds full contact details: write it under the data home, e.g. {home.outbox_dir})", file=sys.stderr)
        return 2
    if not home.duckdb_path.exists():
        print("nothing has run on this home yet", file=sys.stderr)
        return 2
    if args.output and not args.output.lower().endswith(".xlsx"):
        print(f"error: {args.output}: the workbook must end in .xlsx", file=sys.stderr)
        return 2
    with home.writer_lock("leadfactory review export", wait_seconds=3600), home.connect(read_only=True) as conn:
        exported = export_review_workbook(conn, home, output)
    for kind, pairs in exported.pairs_by_kind.items():
        print(f"{pairs:>7,} pairs  {sheet_title(kind)}")
    print(f"{exported.pairs:,} pairs to review in {exported.path}")
    print("fill in column A (or a sheet's A2 for all its blank rows), then drop the workbook into "
          f"{home.inbox_dir} or run: leadfactory review import FILE")
    return 0


def cmd_review_import(args: argparse.Namespace) -> int:
    """The same path as a workbook dropped into the inbox: the import job applies it as one batch and
    rebuilds the leads it settles in the same run."""
    from pipelines.defs.ingest.assets import import_run_config
    from pipelines.lib.matching.review import is_review_workbook

    path = Path(args.file).resolve()
    if not path.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    if not is_review_workbook(path):
        print(f"error: {args.file}: 不是本系统导出的审核工作簿 (not a review workbook exported by leadfactory review "
              "export); lead files go through leadfactory ingest", file=sys.stderr)
        return 2
    by = args.by or _user_name()
    home, result = _execute_job(args, "inbox_import_job", import_run_config([path], decided_by=by))
    applied = []
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key.path == ["raw", "library_records"]:
                applied = materialization.metadata["review_workbooks"].value
    for item in applied:
        if item["status"] != "applied":
            print(f"error: {item['file']}: {item['reason']}; result: {item['result']}", file=sys.stderr)
            return 2
        print(item["summary"])
        print(f"result: {item['result']}")
        if result.success:
            print("决定已生效 (the decisions are applied to the published leads now, and every later run honours them)")
        else:
            print("决定已记录，下次运行时生效 (the decisions are recorded; the run failed, so the next run applies them)")
    return _report(result)


def _user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return "unknown"


def cmd_dedupe(args: argparse.Namespace) -> int:
    from pipelines.runs import dedupe_file

    started = time.perf_counter()

    def progress(stage: str, seconds: float) -> None:
        print(f"  {stage:<28} {seconds:7.1f} s   (total {time.perf_counter() - started:6.1f} s)", file=sys.stderr, flush=True)

    print(f"deduplicating {args.input} -> {args.output}", file=sys.stderr, flush=True)
    try:
        output, stats, _ = dedupe_file(Path(args.input), Path(args.output), progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rejected = output.filter(output["lead_id"].is_null()).height
    print(f"{output.height:,} rows: {stats.leads:,} leads, {stats.records - stats.leads:,} rows merged into another "
          f"row's lead, {rejected:,} rows not usable, {stats.pairs_to_review:,} pairs worth a human look "
          f"({time.perf_counter() - started:.1f} s)")
    print(f"chaining guard: {stats.clusters_split_by_guard:,} clusters split (largest before the guard "
          f"{stats.largest_cluster_before_guard:,} records, largest lead {stats.largest_lead:,})")
    return 0

def print_summary(home: LeadHome) -> None:
    from pipelines.lib.quality.summary import run_summary

    if not home.duckdb_path.exists():
        print("nothing has run on this home yet")
        return
    # Read under the writer lock: a run the sensor starts meanwhile waits, rather than failing on the file.
    with home.writer_lock("leadfactory summary", wait_seconds=3600), home.connect(read_only=True) as conn:
        print(run_summary(conn).render())


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.lib.quality.quality import write_quality_report

    home = _home(args)
    if not home.duckdb_path.exists():
        print("nothing has run on this home yet", file=sys.stderr)
        return 2
    with home.writer_lock("leadfactory report", wait_seconds=3600), home.connect(read_only=True) as conn:
        target, figures = write_quality_report(conn, home.root)
    for key, value in figures.items():
        print(f"{key:<34} {value}")
    print(f"report written to {target}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    print_summary(_home(args))
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    """Every published version, newest first; reads the versions, never the working DuckDB file."""
    from pipelines.lib.history.versions import Versions

    versions = Versions(_home(args).versions_dir).list()
    if not versions:
        print("尚未发布任何版本 (nothing published yet)")
        return 0
    print(f"{'version':>7}  {'published at (UTC)':19}  {'leads':>9}  {'unreachable':>11}  {'members':>9}  cause")
    for v in reversed(versions):
        rows = {name: t["rows"] for name, t in v.tables.items()}
        print(f"{v.version:>7}  {v.published_at:%Y-%m-%d %H:%M:%S}  {rows.get('leads_clean', 0):>9,}  "
              f"{rows.get('leads_unreachable', 0):>11,}  {rows.get('lead_members', 0):>9,}  {v.cause} {v.cause_id or ''}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Leads added, removed and changed field by field between two versions."""
    from pipelines.lib.history.versions import Versions
    from pipelines.lib.quality.masking import mask_contact

    versions = Versions(_home(args).versions_dir)
    try:
        diff = versions.diff("leads_clean", args.old, args.new)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    print(f"version {args.old} -> {args.new}: {len(diff['added']):,} leads added, {len(diff['removed']):,} removed, "
          f"{len({c[0] for c in diff['changed']}):,} changed")
    for lead in diff["added"][: args.limit]:
        print(f"  + {lead}")
    for lead in diff["removed"][: args.limit]:
        print(f"  - {lead}")
    for lead, field, old, new in diff["changed"][: args.limit]:
        print(f"  ~ {lead} {field}: {mask_contact(field, old)} -> {mask_contact(field, new)}")
    return 0


def _run_report(result) -> str | None:
    """The "report" a run's asset wrote into its metadata (correction and notification runs)."""
    for event in result.get_asset_materialization_events():
        report = event.materialization.metadata.get("report")
        if report is not None:
            return report.value
    return None


def cmd_events_apply(args: argparse.Namespace) -> int:
    """The pending event lines, once, exactly as the events sensor's job applies them."""
    home, result = _execute_job(args, "correction_job")
    report = _run_report(result)
    if report:
        print(report)
    return _report(result)


def _parse_edit(assignments: list[str]) -> dict:
    fields = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{assignment!r}: expected field=value, e.g. mobile=13800138000")
        name = name.strip()
        if name == "do_not_contact":
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "yes", "no", "1", "0", "是", "否"):
                raise ValueError(f"do_not_contact: expected true or false, got {value!r}")
            fields[name] = lowered in ("true", "yes", "1", "是")
        else:
            fields[name] = value
    return fields


def cmd_edit(args: argparse.Namespace) -> int:
    """A specialist's edit of one lead, as an event of type manual_edit through the correction job."""
    import json
    import uuid
    from datetime import datetime, timezone

    from pipelines.lib.corrections.apply import events_dir_of
    from pipelines.lib.corrections.events import DeadLetter, judge_line
    from pipelines.lib.corrections.rules import MANUAL_EDIT, load_correction_rules
    from pipelines.lib.identity.library import library_of

    home = _home(args)
    try:
        payload = _parse_edit(args.assignments)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    event_id = f"edit-{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
    doc = {"event_id": event_id, "type": MANUAL_EDIT, "occurred_at": datetime.now(timezone.utc).isoformat(),
           "source": "leadfactory", "lead": {"lead_id": args.lead_id}, "payload": payload, "actor": args.by,
           "reason": args.reason}
    line = json.dumps(doc, ensure_ascii=False)
    judged = judge_line(line.encode("utf-8"), "manual_edits.jsonl", 0, load_correction_rules())
    if isinstance(judged, DeadLetter):  # refused before anything is written, with the same reasons as events
        print(f"refused: {judged.reason}", file=sys.stderr)
        return 2
    events_dir = events_dir_of(home.root)
    events_dir.mkdir(parents=True, exist_ok=True)
    with home.writer_lock(f"leadfactory edit ({args.by})"):
        with (events_dir / "manual_edits.jsonl").open("a", encoding="utf-8") as out:
            out.write(line + "\n")
    home, result = _execute_job(args, "correction_job")
    import duckdb
    with duckdb.connect() as conn:
        conn.register("event_log", library_of(home.root).dataset("event_log"))
        found = conn.execute("select outcome, reason from event_log where event_id = ? order by recorded_at desc limit 1",
                             [event_id]).fetchone()
    if not result.success or found is None:
        print(f"edit {event_id} written to events/manual_edits.jsonl; it is applied by the next correction run",
              file=sys.stderr)
        return _report(result)
    outcome, reason = found
    print(f"edit {event_id}: {outcome}" + (f" ({reason})" if reason else ""))
    return 0 if outcome in ("applied", "noop", "superseded") else 2


def cmd_history(args: argparse.Namespace) -> int:
    from pipelines.lib.history.history import LeadHistory, render_story
    from pipelines.lib.identity.library import library_of

    home = _home(args)
    print(render_story(args.lead_id, LeadHistory(library_of(home.root).root).story(args.lead_id)))
    return 0


def cmd_notify_send(args: argparse.Namespace) -> int:
    """The due notifications, once, exactly as the sender's sensor's job delivers them."""
    from pipelines.lib.notify.webhooks import endpoints_from_env

    try:
        configured = endpoints_from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not configured:
        print("no webhook endpoint configured (LEADFACTORY_WEBHOOK_URL, LEADFACTORY_WEBHOOK_SECRET); nothing sent")
        return 0
    _, result = _execute_job(args, "notification_job")
    report = _run_report(result)
    if report:
        print(f"notifications: {report}")
    return _report(result)


def cmd_restore(args: argparse.Namespace) -> int:
    """Republish version V as a new version; what came after V is marked reverted, so it stays restored."""
    from pipelines.lib.history.restore import restore_version

    home = _home(args)
    with home.writer_lock(f"leadfactory restore ({args.by})"), home.connect() as conn:
        try:
            done = restore_version(conn, home, args.version, args.by)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
    print(done.render())
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the system of record to the backup location now (runs do it after each publication), or check it."""
    from pipelines.lib.history.backup import backup_home, backup_location, verify_backup

    home = _home(args)
    target, warning = backup_location(home.root)
    if args.to:
        target = Path(args.to).expanduser().resolve()
    elif warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.verify:
        problems = verify_backup(home.root, target)
        for problem in problems[:50]:
            print(problem)
        print(f"backup {target}: " + ("verified, every file of library/ and versions/ is there with the same content"
                                      if not problems else f"{len(problems)} problems"))
        return 0 if not problems else 1
    with home.writer_lock("leadfactory backup"):
        print(backup_home(home.root, target).render())
    return 0


def _crm_url() -> str | None:
    """The CRM database's URL, or None after saying how to set it."""
    from pipelines.lib.publish.postgres import POSTGRES_URL_ENV, postgres_url

    url = postgres_url()
    if url is None:
        print(f"error: {POSTGRES_URL_ENV} is not set: 请设置 CRM 数据库连接 (the pipeline's own PostgreSQL login, "
              "e.g. postgresql://leadfactory@db.example.com/crm)", file=sys.stderr)
    return url


def cmd_roles_setup(args: argparse.Namespace) -> int:
    """The CRM database's group roles, schemas and access (LEADFACTORY_POSTGRES_URL: the pipeline's login)."""
    from pipelines.lib.publish.postgres import PostgresError, setup_roles

    url = _crm_url()
    if url is None:
        return 2
    home = _home(args)
    try:
        if home.duckdb_path.exists():
            with home.writer_lock("leadfactory roles setup", wait_seconds=600), home.connect() as conn:
                created = setup_roles(url, conn if _has_published(conn) else None)
        else:
            created = setup_roles(url, None)
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("roles: " + (", ".join(created) + " created" if created else "lead_manager, lead_sales, lead_service exist"))
    print("lead_manager reads every table of schema crm; members of lead_sales read the leads of their owners "
          "(leadfactory roles add-sales); lead_service reads schema crm_masked (contacts masked)")
    return 0


def _has_published(conn) -> bool:
    from pipelines.lib.publish.publish import LEADS_CLEAN
    from pipelines.lib.quality.profiling import relation_exists

    return relation_exists(conn, LEADS_CLEAN)


def cmd_roles_add_sales(args: argparse.Namespace) -> int:
    from pipelines.lib.publish.postgres import PostgresError, add_sales

    url = _crm_url()
    if url is None:
        return 2
    try:
        created = add_sales(url, args.role, args.owner)
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.role}: {'login role created' if created else 'existing role'}, member of lead_sales, sees the leads "
          f"of owner {', '.join(args.owner)}")
    return 0


def cmd_crm_sync(args: argparse.Namespace) -> int:
    """The newest published version to the CRM database now (every publication does it when it is set)."""
    from pipelines.lib.history.versions import Versions
    from pipelines.lib.identity.library import library_of
    from pipelines.lib.publish.postgres import PostgresError, sync_crm

    if _crm_url() is None:
        return 2
    home = _home(args)
    versions = Versions(home.versions_dir).list()
    if not versions:
        print("error: 尚未发布线索 (nothing published yet): run leadfactory run first", file=sys.stderr)
        return 2
    try:
        with home.writer_lock("leadfactory crm sync", wait_seconds=600), home.connect() as conn:
            print(sync_crm(conn, home.versions_dir, library_of(home.root).root, versions[-1]).render())
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    """Rebuild a home that lost its DuckDB file from a backup; the next run publishes the same leads."""
    from pipelines.lib.history.backup import RecoveryError, recover_home

    home = _home(args)
    with home.writer_lock("leadfactory recover"):
        try:
            counts = recover_home(home, Path(args.source))
        except RecoveryError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"recovered {home.root} from {args.source}: {counts['files_restored']} files restored, version "
          f"{counts['version']} ({counts['leads']:,} leads), {counts['registry']:,} lead ids, {counts['decisions']} "
          f"decisions, {counts['corrections']} corrections; run `leadfactory run` to rebuild the working state")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from pipelines.lib.sources.sample_data import generate_leads, write_sample_files

    target = Path(args.out) if args.out else _home(args).root
    if args.if_absent and any((target / "warehouse").glob("*")) | any((target / "inbox").glob("*")):
        print(f"sample data already present under {target}; left as it is")
        return 0
    leads = generate_leads(args.records, seed=args.seed, life_changes=args.life_changes, explain=True)
    written = write_sample_files(leads, target, excel_rows=args.excel_rows)
    for path, rows in written.items():
        print(f"wrote {rows:>9,} rows  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadfactory", description="Lead Data Factory: keep a CRM's lead library clean.")
    parser.add_argument("--home", help="data home (default: $LEADFACTORY_HOME, else ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the nightly job in-process on the home and print the summary",
                         description="Ingest every file under <home>/warehouse and <home>/inbox, standardise with dbt, "
                                     "publish published.leads_clean, and print rows read/rejected/standardised/published.")
    run.set_defaults(func=cmd_run)

    ingest = sub.add_parser("ingest", help="import lead files into the library now and print each file's receipt",
                            description="Import FILE... (Excel, CSV/TXT or Parquet, Chinese or English headers) the way the "
                                        "inbox sensor does: each file once (by content), standardised, matched and "
                                        "published; a receipt workbook per file goes to <home>/outbox/. Your files stay "
                                        "where they are; the library keeps a copy under <home>/inbox/archive/.")
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.set_defaults(func=cmd_ingest)

    dedupe = sub.add_parser("dedupe", help="deduplicate one file on its own, without touching the lead library",
                            description="Read INPUT (CSV, XLSX or Parquet; Chinese or English headers), standardise and "
                                        "match its rows with the same rules and model as the library, and write OUTPUT "
                                        "(CSV or XLSX by extension): one row per input data row with source_row, lead_id, "
                                        "the standardised fields and the match explanation.")
    dedupe.add_argument("input", help="the file to deduplicate")
    dedupe.add_argument("-o", "--output", required=True, help="where to write the result (.csv or .xlsx)")
    dedupe.set_defaults(func=cmd_dedupe)

    train = sub.add_parser("train", help="retrain the matching model on the home's records and print its parameters",
                           description="Run training_job: standardise the home's files, estimate the Splink model "
                                       "(u by random sampling, m by EM) and rewrite pipelines/config/match_model.json.")
    train.set_defaults(func=cmd_train)

    decide = sub.add_parser("decide", help="record that two leads are the same person, or different people",
                            description="A person's decision is stored with the leads' current records and honoured "
                                        "by every later run: 'different' is never merged again, 'same' always is.")
    decide.add_argument("lead_a")
    decide.add_argument("lead_b")
    decide.add_argument("decision", choices=["same", "different"])
    decide.add_argument("--by", default="cli", help="who decided (kept with the decision)")
    decide.set_defaults(func=cmd_decide)

    review = sub.add_parser("review", help="settle doubtful pairs in Excel, a kind at a time (export, fill, import)",
                            description="Export the review queue as a workbook (one sheet per kind of conflict, both "
                                        "records side by side, a 同一人/不同人 drop-down per row and per sheet), then "
                                        "import it filled: the decisions apply as one batch and every later run honours them.")
    review_sub = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    review_export = review_sub.add_parser("export", help="write the review queue as an Excel workbook to fill in",
                                          description="Write the pairs waiting for review into <home>/outbox/审核_<time>.xlsx "
                                                      "(or -o FILE): an instruction sheet, then one sheet per kind of "
                                                      "conflict, likeliest pairs first.")
    review_export.add_argument("-o", "--output", help="where to write the workbook (.xlsx), under the data home "
                                                      "(it holds personal data in full)")
    review_export.set_defaults(func=cmd_review_export)
    review_import = review_sub.add_parser("import", help="apply a filled review workbook",
                                          description="Apply the decisions of a filled review workbook in one batch; "
                                                      "pairs whose leads changed since the export are skipped with the "
                                                      "reason; the result goes to <home>/outbox/审核结果_<time>.xlsx.")
    review_import.add_argument("file", metavar="FILE", help="the filled review workbook (.xlsx)")
    review_import.add_argument("--by", metavar="NAME", help="who decided (kept with every decision; default: your user name)")
    review_import.set_defaults(func=cmd_review_import)

    report = sub.add_parser("report", help="print the quality figures of the last run and write them as an Excel workbook",
                            description="Contactable %, duplicate rate, per-field completeness and validity, review "
                                        "queue size and source freshness, plus the unreachable leads and the review "
                                        "queue, into <home>/reports/quality_<time>.xlsx.")
    report.set_defaults(func=cmd_report)

    summary = sub.add_parser("summary", help="print the summary of the last run on the home",
                             description="Row counts of the last run: read, rejected, standardised, published.")
    summary.set_defaults(func=cmd_summary)

    versions = sub.add_parser("versions", help="list the published versions, newest first",
                              description="Every publication is a numbered, immutable version (Delta tables under "
                                          "<home>/versions); this lists them without opening the working DuckDB file.")
    versions.set_defaults(func=cmd_versions)

    diff = sub.add_parser("diff", help="leads added, removed and changed field by field between two versions",
                          description="Compare two published versions of leads_clean (contacts masked).")
    diff.add_argument("old", type=int, help="the earlier version")
    diff.add_argument("new", type=int, help="the later version")
    diff.add_argument("--limit", type=int, default=50, help="at most this many lines of each kind (default 50)")
    diff.set_defaults(func=cmd_diff)

    events = sub.add_parser("events", help="events from the business systems (<home>/events/*.jsonl)")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    events_apply = events_sub.add_parser("apply", help="apply the pending event lines once, as the events sensor does",
                                         description="Read the complete new lines of <home>/events/*.jsonl, apply "
                                                     "each event once (or say why not: no-op, superseded, skipped, "
                                                     "dead letter), publish the changed leads as a new version.")
    events_apply.set_defaults(func=cmd_events_apply)

    edit = sub.add_parser("edit", help="change fields of one lead by hand (audited, like an event)",
                          description="leadfactory edit LEAD_ID field=value ... --by NAME --reason TEXT. Fields: "
                                      "mobile, email, wechat, qq, landline, name, company, job_title, province, city, "
                                      "district, address, owner, do_not_contact. Validated like any input; a manual "
                                      "edit wins over events and the records.")
    edit.add_argument("lead_id", metavar="LEAD_ID")
    edit.add_argument("assignments", metavar="field=value", nargs="+")
    edit.add_argument("--by", required=True, metavar="NAME", help="who made the edit")
    edit.add_argument("--reason", required=True, metavar="TEXT", help="why (kept with the edit)")
    edit.set_defaults(func=cmd_edit)

    history = sub.add_parser("history", help="a lead's story, newest first (contacts masked)",
                             description="Every change of one lead (import, merge, event, manual edit, review "
                                         "decision, restore) from the append-only history.")
    history.add_argument("lead_id", metavar="LEAD_ID")
    history.set_defaults(func=cmd_history)

    notify = sub.add_parser("notify", help="notifications to sales (webhooks)")
    notify_sub = notify.add_subparsers(dest="notify_command", required=True)
    notify_send = notify_sub.add_parser("send", help="deliver the notifications that are due",
                                        description="POST each due notification, signed per Standard Webhooks, to "
                                                    "LEADFACTORY_WEBHOOK_URL; failures are retried with backoff.")
    notify_send.set_defaults(func=cmd_notify_send)

    restore = sub.add_parser("restore", help="republish an old version as a new one, and keep it",
                             description="Version V becomes the published leads again, as a new version (history records "
                                         "it); imports, corrections, edits and decisions applied after V are marked "
                                         "reverted in the library (never deleted), so later runs keep V's state plus "
                                         "only what arrives after the restore.")
    restore.add_argument("version", type=int, metavar="V")
    restore.add_argument("--by", required=True, metavar="NAME", help="who restores (kept in history)")
    restore.set_defaults(func=cmd_restore)

    backup = sub.add_parser("backup", help="copy the system of record to the backup location, or --verify it",
                            description="library/ and versions/ are copied (only what is new) to $LEADFACTORY_BACKUP "
                                        "(default <home>/backup, on the same disk: a warning says so). Every "
                                        "publication does this too.")
    backup.add_argument("--verify", action="store_true", help="check every file against the home (sha256); exit 1 if not")
    backup.add_argument("--to", metavar="DIR", help="another backup folder than $LEADFACTORY_BACKUP")
    backup.set_defaults(func=cmd_backup)

    roles = sub.add_parser("roles", help="the CRM database's roles (PostgreSQL, LEADFACTORY_POSTGRES_URL)",
                           description="Group roles the CRM connects as: lead_manager (everything), lead_sales (the "
                                       "leads of its owners, row-level security), lead_service (contacts masked).")
    roles_sub = roles.add_subparsers(dest="roles_command", required=True, metavar="ACTION")
    roles_setup = roles_sub.add_parser("setup", help="create the group roles, schemas crm and crm_masked, and access",
                                       description="Needs a login with CREATEROLE in LEADFACTORY_POSTGRES_URL. "
                                                   "Safe to run again.")
    roles_setup.set_defaults(func=cmd_roles_setup)
    roles_sales = roles_sub.add_parser("add-sales", help="create or map a sales login role to owner values",
                                       description="leadfactory roles add-sales ROLE --owner OWNER [--owner ...]: the "
                                                   "login role (created without a password if new: set one with "
                                                   "ALTER ROLE) joins lead_sales and sees the leads of those owners.")
    roles_sales.add_argument("role", metavar="ROLE")
    roles_sales.add_argument("--owner", action="append", required=True, metavar="OWNER",
                             help="an owner value of the leads (repeat for several)")
    roles_sales.set_defaults(func=cmd_roles_add_sales)

    crm = sub.add_parser("crm", help="the CRM database (PostgreSQL schema crm)")
    crm_sub = crm.add_subparsers(dest="crm_command", required=True, metavar="ACTION")
    crm_sync = crm_sub.add_parser("sync", help="write the newest published version to the CRM database now",
                                  description="Every publication does this when LEADFACTORY_POSTGRES_URL is set; run "
                                              "it after setting it on a home that already published.")
    crm_sync.set_defaults(func=cmd_crm_sync)

    recover = sub.add_parser("recover", help="rebuild a home whose DuckDB file was lost, from a backup",
                             description="Copies library/ and versions/ back and seeds a new DuckDB file with the newest "
                                         "version, the lead registry, decisions and corrections; the next run "
                                         "publishes the same leads with the same ids.")
    recover.add_argument("--from", dest="source", required=True, metavar="BACKUP", help="the backup folder")
    recover.set_defaults(func=cmd_recover)

    samples = sub.add_parser("samples", help="generate realistic Chinese sample leads with known duplicates",
                             description="Write sample lead files (Parquet, GBK CSV, Excel with Chinese headers) and "
                                         "truth.csv (the known duplicate groups) into <home> or --out.")
    samples.add_argument("--records", type=int, default=2000, help="number of lead records (default 2000)")
    samples.add_argument("--seed", type=int, default=20261122, help="random seed (default fixed, so output repeats)")
    samples.add_argument("--out", help="folder to write into instead of the home")
    samples.add_argument("--excel-rows", type=int, default=5000, help="at most this many rows go to the Excel file")
    samples.add_argument("--life-changes", type=float, default=0.3, metavar="SHARE",
                         help="share of the people with several records whose later records show a job change (company, "
                              "title, work e-mail, often city) or a new mobile (default 0.3; 0 for nobody)")
    samples.add_argument("--if-absent", action="store_true", help="do nothing when sample files already exist")
    samples.set_defaults(func=cmd_samples)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our own loggers only: Dagster logs its events through its own console logger.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    product = logging.getLogger("pipelines")
    product.addHandler(handler)
    product.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    return args.func(args)


def entry() -> None:
    """The ``leadfactory`` console script. After a run the interpreter would spend seconds tearing down
    Dagster's, dbt's and Splink's objects one by one; everything the command writes is flushed and
    closed by then, so it leaves at once."""
    import gc

    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    # dbt adapters (dagster-dbt's, or the import's in-process dbt) hold multiprocessing locks: release
    # them, or the resource tracker reports them as leaked when the process leaves
    factory = sys.modules.get("dbt.adapters.factory")
    if factory is not None:
        factory.reset_adapters()
    gc.collect()
    os._exit(code or 0)


if __name__ == "__main__":
    entry()

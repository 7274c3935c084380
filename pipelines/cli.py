"""``leadfactory``: run and inspect the lead factory from a terminal."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipelines.lib.home import LeadHome


def _home(args: argparse.Namespace) -> LeadHome:
    home = LeadHome.from_env(args.home).ensure()
    home.export_env()
    return home


def cmd_run(args: argparse.Namespace) -> int:
    home = _home(args)
    from dagster import DagsterInstance

    from pipelines.lib.dbt_project import parse_dbt_project

    parse_dbt_project()  # the dbt assets are built from the manifest, so it must exist before import
    from pipelines.definitions import defs

    job = defs().resolve_job_def("nightly_job")
    print(f"running nightly_job on {home.root}", flush=True)
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "DEBUG" if args.verbose else "INFO"}}}},
        )
    print_summary(home)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"run {result.run_id} FAILED at {', '.join(failed) or 'an unknown step'}; "
              "the previous publication is unchanged", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded")
    return 0


def print_summary(home: LeadHome) -> None:
    from pipelines.lib.summary import run_summary

    if not home.duckdb_path.exists():
        print("nothing has run on this home yet")
        return
    with home.connect(read_only=True) as conn:
        print(run_summary(conn).render())


def cmd_summary(args: argparse.Namespace) -> int:
    print_summary(_home(args))
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from pipelines.lib.sample_data import generate_leads, write_sample_files

    target = Path(args.out) if args.out else _home(args).root
    if args.if_absent and any((target / "warehouse").glob("*")) | any((target / "inbox").glob("*")):
        print(f"sample data already present under {target}; left as it is")
        return 0
    leads = generate_leads(args.records, seed=args.seed)
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

    summary = sub.add_parser("summary", help="print the summary of the last run on the home",
                             description="Row counts of the last run: read, rejected, standardised, published.")
    summary.set_defaults(func=cmd_summary)

    samples = sub.add_parser("samples", help="generate realistic Chinese sample leads with known duplicates",
                             description="Write sample lead files (Parquet, GBK CSV, Excel with Chinese headers) and "
                                         "truth.csv (the known duplicate groups) into <home> or --out.")
    samples.add_argument("--records", type=int, default=2000, help="number of lead records (default 2000)")
    samples.add_argument("--seed", type=int, default=20261122, help="random seed (default fixed, so output repeats)")
    samples.add_argument("--out", help="folder to write into instead of the home")
    samples.add_argument("--excel-rows", type=int, default=5000, help="at most this many rows go to the Excel file")
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


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the nightly job on N generated records, each step's time, as the Dagster UI runs it.

    .venv/bin/python benchmarks/standardise.py --records 100000

Runs the code location's own ``nightly_job`` in-process on a temporary data home (a warehouse extract
of N records): import into the library, dbt build with its tests, quality gates, matching, publication,
receipts. Peak memory is the larger of this process and the dbt subprocess.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import dagster as dg

from pipelines.lib.home import LeadHome
from pipelines.lib.sources.sample_data import generate_leads
from pipelines.lib.quality.summary import run_summary
from pipelines.runs import run_job, step_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="leadfactory-bench-") as tmp:
        home = LeadHome.from_env(tmp).ensure()
        home.export_env()
        t = time.perf_counter()
        leads = generate_leads(args.records, seed=args.seed)
        leads.drop("person_id").write_parquet(home.warehouse_dir / "bench.parquet")
        print(f"generated {args.records:,} records in {time.perf_counter() - t:.1f}s (not part of the pipeline)")

        instance = dg.DagsterInstance.ephemeral()
        t = time.perf_counter()
        result = run_job("nightly_job", instance=instance)
        total = time.perf_counter() - t
        stages = step_times(instance, result.run_id, {})
        with home.connect(read_only=True) as conn:
            summary = run_summary(conn)

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nrecords: {args.records:,}   cores: {os.cpu_count()}   run succeeded: {result.success}")
    for stage, seconds in sorted(stages.items(), key=lambda item: -item[1]):
        print(f"  {stage:<44} {seconds:8.1f} s")
    print(f"  {'whole run (wall, Dagster included)':<44} {total:8.1f} s   ({args.records / total:,.0f} records/s)")
    print(f"  peak memory: this process {own:,.0f} MiB, dbt {children:,.0f} MiB")
    print("  " + summary.render().replace("\n", "\n  "))


if __name__ == "__main__":
    main()

"""Agreement of the standardisation rules with the reference libraries, per field.

    .venv/bin/python benchmarks/reference_agreement.py --cases 3000 --seed 7

Generates messy phone, e-mail and place cells the way people type them (tests/reference/), runs the
code location's own ``nightly_job`` once on them in a temporary data home, and scores what the product
made of each against the oracle: ``phonenumbers``, ``email-validator`` and ``cpca``. Every disagreement
is either a listed deliberate difference (tests/reference/<field>_differences.yaml, with the reason)
or a defect; the defects are printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package holds the generators

from pipelines.lib.home import LeadHome  # noqa: E402
from pipelines.runs import run_job  # noqa: E402
from tests.reference.harness import FIELDS, score, write_cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000, help="cases per field")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fields", default=",".join(FIELDS))
    parser.add_argument("--show", type=int, default=15, help="defects to print per field")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="leadfactory-reference-") as tmp:
        home = LeadHome.from_env(tmp).ensure()
        home.export_env()
        by_field = write_cases(home.warehouse_dir / "reference_cases.csv", args.seed, args.cases,
                               tuple(args.fields.split(",")))
        started = time.perf_counter()
        run_job("nightly_job")
        print(f"nightly job on {sum(len(c) for c in by_field.values()):,} cases: {time.perf_counter() - started:.1f}s")
        for report in score(home.duckdb_path, by_field).values():
            print(report.summary())
            worst = sorted(report.by_kind.items(), key=lambda kv: kv[1][1] / kv[1][0])[:5]
            print("          weakest kinds: " + ", ".join(f"{k} {a}/{c}" for k, (c, a) in worst))
            for case, got in report.defects[: args.show]:
                print(f"          defect {case.kind}: {case.cells} meant {case.meant} "
                      f"expected {case.expected} got {got}")


if __name__ == "__main__":
    main()

"""Benchmark `leadfactory dedupe`: speed, memory and accuracy, beside two baselines on the same data.

    .venv/bin/python benchmarks/dedupe_benchmark.py            # all three cases below, one run
    .venv/bin/python benchmarks/dedupe_benchmark.py --quick    # the same without the 1,000,000-record case

Cases (generated leads with known duplicates, seed 777: not the model's training seed):

* 20,000 records where 30 % of the people with several records changed job or mobile (life changes);
* 20,000 records and 1,000,000 records where nobody changed.

For each: run `leadfactory dedupe` as a user would (a subprocess; its stage times are read from its
progress lines; peak memory is the largest process of the run, dbt included), then score it: pairwise
precision / recall / F1, B-cubed F1, and what became of the true pairs (two records of one person): merged
into one lead, offered for review (their leads are a pair of the review queue, the output's review_with),
or missed. Beside it, on the same data:

* exact: records sharing a normalised mobile, e-mail or WeChat id are one lead (connected components);
* splink-default: Splink on the raw columns with default-style comparisons (exact mobile, e-mail,
  Jaro-Winkler name, exact company), blocking on raw mobile, raw e-mail and name+company, trained
  the usual way (random-sampling u, EM m) and clustered at 0.95;
* leadfactory with the chaining guard off (matching only).

A summary of every case closes the run.
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipelines.lib.matching.evaluation import Accuracy, PairOutcomes, pair_outcomes, score_clustering
from pipelines.lib.sources.sample_data import TRUTH_COLUMNS, generate_leads

LEADFACTORY = str(Path(sys.executable).with_name("leadfactory"))
SEED = 777
LIFE_CHANGES = 0.3
QUICK_MAX_RECORDS = 100_000


# Kinds of true pair in the life-changes case: across a change (one record before, one after) or not.
PAIR_KIND = """coalesce(a.life_change || case when a.after_change <> b.after_change then ' change, across'
                                        else ' change, same side' end, 'unchanged')"""


def pair_fates(output: pl.DataFrame, truth: pl.DataFrame) -> PairOutcomes:
    """True pairs merged, in review (the output's review_with) or missed; by kind of life change."""
    rows = output.select("source_row", "lead_id", "review_with").join(truth, on="source_row")
    with duckdb.connect() as conn:
        conn.register("rows", rows.to_arrow())
        return pair_outcomes(conn, "rows", kind=PAIR_KIND)


def accuracy_of(predicted: pl.Series, truth: pl.Series) -> Accuracy:
    with duckdb.connect() as conn:
        conn.register("scored", pl.DataFrame({"predicted": predicted, "truth": truth}).to_arrow())
        return score_clustering(conn, "scored")


def largest_cluster(labels: pl.Series) -> int:
    return int(labels.value_counts()["count"].max())


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def exact_baseline(output: pl.DataFrame) -> np.ndarray:
    """Connected components over shared standardised mobile / e-mail / WeChat."""
    keys = pl.concat([
        output.select(pl.col("source_row"), pl.col("mobiles").str.split(";").alias("key")).explode("key"),
        output.select(pl.col("source_row"), pl.col("emails").str.split(";").alias("key")).explode("key"),
        output.select(pl.col("source_row"), pl.concat_list([pl.col("wechat")]).alias("key")).explode("key"),
    ]).filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
    index = output.select("source_row").with_row_index("node")
    keyed = keys.join(index, on="source_row").select("node", "key")
    first = keyed.group_by("key").agg(pl.col("node").min().alias("first"))
    edges = keyed.join(first, on="key").filter(pl.col("node") != pl.col("first"))
    return components(output.height, edges["node"].to_numpy(), edges["first"].to_numpy())


def splink_default_baseline(raw: pl.DataFrame) -> np.ndarray:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = raw.select(
        pl.int_range(0, raw.height).alias("unique_id"), "name", "mobile", "email", "company",
    )
    db_api = DuckDBAPI()
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("mobile"),
            cl.EmailComparison("email"),
            cl.JaroWinklerAtThresholds("name"),
            cl.ExactMatch("company"),
        ],
        blocking_rules_to_generate_predictions=[block_on("mobile"), block_on("email"), block_on("name", "company")],
    )
    linker = Linker(db_api.register(frame.to_arrow()), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([block_on("mobile"), block_on("email")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("mobile"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name", "company"))
    predictions = linker.inference.predict(threshold_match_probability=0.9, warning_mode="never")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.95)
    labels = clusters.as_duckdbpyrelation().pl().sort("unique_id")
    return labels["cluster_id"].cast(pl.Utf8).to_numpy()


def leadfactory_without_guard(source: Path) -> tuple[np.ndarray, float]:
    """The same job, standardisation and model with the chaining guard switched off (a matching config
    where no value is treated as shared and clusters may grow without limit). Shows what the guard prevents."""
    import os

    import yaml

    from pipelines.lib.matching.match_config import DEFAULT_MATCHING_CONFIG, MATCHING_CONFIG_ENV
    from pipelines.runs import dedupe_file

    with tempfile.TemporaryDirectory(prefix="leadfactory-noguard-") as tmp:
        doc = yaml.safe_load(DEFAULT_MATCHING_CONFIG.read_text(encoding="utf-8"))
        doc["chaining_guard"] = {"shared_value_min_people": 1000, "max_cluster_size": 10_000}
        config = Path(tmp) / "matching.yaml"
        config.write_text(yaml.safe_dump(doc), encoding="utf-8")
        os.environ[MATCHING_CONFIG_ENV] = str(config)
        try:
            output, _, timings = dedupe_file(source, Path(tmp) / "out.csv")
        finally:
            os.environ.pop(MATCHING_CONFIG_ENV, None)
    frame = output.sort("source_row").select(pl.coalesce("lead_id", pl.format("rejected-{}", "source_row")))
    seconds = timings.get("score pairs (Splink)", 0.0) + timings.get("cluster and build leads", 0.0)
    return frame[:, 0].to_numpy(), seconds


def run_case(records: int, life_changes: float, baselines: bool) -> dict:
    title = f"{records:,} records, {life_changes:.0%} of multi-record people changed job or mobile" if life_changes \
        else f"{records:,} records, no life changes"
    print(f"\n=== {title} (seed {SEED}) ===", flush=True)
    with tempfile.TemporaryDirectory(prefix="leadfactory-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        leads = generate_leads(records, seed=SEED, life_changes=life_changes, explain=True)
        leads.drop("person_id", *TRUTH_COLUMNS).write_parquet(folder / "leads.parquet")
        truth = leads.select(pl.int_range(1, leads.height + 1, dtype=pl.Int64).alias("source_row"),  # Parquet: record numbers
                             "person_id", *TRUTH_COLUMNS)
        print(f"generated in {time.perf_counter() - t:.1f}s (not timed below)", flush=True)

        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        done = subprocess.run([LEADFACTORY, "dedupe", str(folder / "leads.parquet"), "-o", str(folder / "out.csv")],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t
        if done.returncode:
            print(done.stderr[-3000:])
            raise SystemExit(f"leadfactory dedupe failed with {done.returncode}")
        peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024 / 1024
        stages = re.findall(r"^\s{2}(\S.*?)\s{2,}([\d.]+) s", done.stderr, re.M)
        output = pl.read_csv(folder / "out.csv", infer_schema=False).with_columns(pl.col("source_row").cast(pl.Int64)).sort("source_row")
        predicted = output.select(pl.coalesce("lead_id", pl.format("rejected-{}", "source_row")))[:, 0]

        print(f"leadfactory dedupe: {wall:.1f} s wall, peak memory {peak:.2f} GiB (targets at 1M: 150 s, 8 GiB)")
        for name, seconds in stages:
            print(f"  {name:<28} {float(seconds):7.1f} s")
        print(done.stdout.strip())
        truth_ids = truth["person_id"]
        accuracy = accuracy_of(predicted, truth_ids)
        fates = pair_fates(output, truth)
        rows = [("leadfactory", accuracy, largest_cluster(predicted), wall)]
        if baselines:
            unguarded, seconds = leadfactory_without_guard(folder / "leads.parquet")
            unguarded = pl.Series(unguarded)
            rows.append(("leadfactory, chaining guard off", accuracy_of(unguarded, truth_ids), largest_cluster(unguarded), seconds))
            t = time.perf_counter()
            exact = pl.Series(exact_baseline(output))
            rows.append(("exact mobile/e-mail/WeChat", accuracy_of(exact, truth_ids), largest_cluster(exact), time.perf_counter() - t))
            t = time.perf_counter()
            splink_default = pl.Series(splink_default_baseline(leads.drop("person_id", *TRUTH_COLUMNS)))
            rows.append(("splink default, raw columns", accuracy_of(splink_default, truth_ids), largest_cluster(splink_default),
                         time.perf_counter() - t))
        print(f"\n  {'method':<30} {'precision':>9} {'recall':>7} {'F1':>7} {'B3 F1':>7} {'largest':>8} {'seconds':>8}")
        for name, acc, largest, seconds in rows:
            print(f"  {name:<30} {acc.precision:9.4f} {acc.recall:7.4f} {acc.f1:7.4f} {acc.bcubed_f1:7.4f} "
                  f"{largest:8,} {seconds:8.1f}")
        print("  largest: records in the biggest cluster (the truth's biggest group has 5)")
        print("  seconds: leadfactory is the whole dedupe; 'guard off' is matching only; exact reuses leadfactory's standardised output")
        print_fates(fates)
        return {"case": title, "records": records, "life_changes": life_changes, "accuracy": accuracy, "fates": fates,
                "largest": largest_cluster(predicted), "seconds": wall}


def print_fates(fates: PairOutcomes) -> None:
    print(f"\n  {fates.render()}")
    for kind, (pairs, merged, review, missed) in fates.by_kind.items():
        print(f"    {kind:<26} {pairs:>9,} pairs: merged {merged:>9,} ({merged / pairs:.3f}), in review {review:>6,}, "
              f"missed {missed:>6,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[20_000, 1_000_000],
                        help="sizes without life changes (default 20000 1000000)")
    parser.add_argument("--life-changes-records", type=int, nargs="*", default=[20_000],
                        help="sizes with life changes (default 20000)")
    parser.add_argument("--life-changes", type=float, default=LIFE_CHANGES,
                        help="share of multi-record people who changed job or mobile in those (default 0.3)")
    parser.add_argument("--quick", action="store_true", help=f"skip sizes over {QUICK_MAX_RECORDS:,} records")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()
    cases = [(n, args.life_changes) for n in args.life_changes_records] + [(n, 0.0) for n in args.records]
    if args.quick:
        cases = [(n, lc) for n, lc in cases if n <= QUICK_MAX_RECORDS]
    results = [run_case(n, lc, baselines=not args.no_baselines) for n, lc in cases]
    print("\n=== summary: leadfactory dedupe (seed 777; targets: precision >= 0.995, recall >= 0.97, "
          "with life changes at least half of the unmerged true pairs in review) ===")
    print(f"  {'case':<68} {'precision':>9} {'recall':>7} {'merged':>9} {'in review':>9} {'missed':>7} {'seconds':>8}")
    for r in results:
        acc, fates = r["accuracy"], r["fates"]
        print(f"  {r['case']:<68} {acc.precision:9.4f} {acc.recall:7.4f} {fates.merged:9,} {fates.in_review:9,} "
              f"{fates.missed:7,} {r['seconds']:8.1f}")


if __name__ == "__main__":
    main()

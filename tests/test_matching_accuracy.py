"""Accuracy on a generated 20,000-record sample with known duplicates, through `dedupe` and the committed model.

The sample's seed differs from the one the committed model was trained on (see README: Matching).
"""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from pipelines.runs import dedupe_file
from pipelines.lib.matching.evaluation import score_clustering
from pipelines.lib.sources.sample_data import generate_leads

SEED = 20_000


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accuracy")
    leads = generate_leads(20_000, seed=SEED)
    leads.drop("person_id").write_csv(folder / "leads.csv")
    output, stats, _ = dedupe_file(folder / "leads.csv", folder / "deduped.csv")
    # CSV rows are numbered as Excel shows them: the header is row 1, the first lead row 2.
    truth = leads.select(pl.int_range(2, leads.height + 2).alias("source_row"), "person_id")
    # Rows rejected as unusable count as their own cluster: a missed merge, never a wrong one.
    scored = output.join(truth, on="source_row").select(
        pl.coalesce("lead_id", pl.format("rejected-{}", "source_row")).alias("predicted"),
        pl.col("person_id").alias("truth"),
    )
    with duckdb.connect() as conn:
        conn.register("scored", scored.to_arrow())
        return score_clustering(conn, "scored"), stats


def test_pairwise_precision_is_at_least_0_995(accuracy):
    result, _ = accuracy
    assert result.precision >= 0.995, result.render()


def test_pairwise_recall_is_at_least_0_97(accuracy):
    result, _ = accuracy
    assert result.recall >= 0.97, result.render()


def test_the_sample_is_hard_enough_to_mean_something(accuracy):
    result, stats = accuracy
    assert result.true_pairs > 10_000  # thousands of duplicate pairs to find
    assert stats.pairs_to_review > 0  # and some the model is rightly unsure of

"""Accuracy of a clustering against known duplicate groups: pairwise precision/recall/F1 and B-cubed F1."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb


@dataclass(frozen=True)
class Accuracy:
    precision: float
    recall: float
    f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    predicted_pairs: int
    true_pairs: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def render(self) -> str:
        return (f"precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}  "
                f"B-cubed F1 {self.bcubed_f1:.4f}  (pairs predicted {self.predicted_pairs:,}, true {self.true_pairs:,})")


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_clustering(conn: duckdb.DuckDBPyConnection, relation: str, predicted: str = "predicted", truth: str = "truth") -> Accuracy:
    """``relation`` has one row per record with a predicted cluster and a truth group; all in SQL."""
    row = conn.execute(f"""
        with cells as (select {predicted} as p, {truth} as t, count(*) as n from {relation} group by all),
        p_sizes as (select p, sum(n) as n from cells group by p),
        t_sizes as (select t, sum(n) as n from cells group by t),
        bcubed as (
            select sum(c.n * c.n / ps.n) as precision_sum, sum(c.n * c.n / ts.n) as recall_sum
            from cells c join p_sizes ps using (p) join t_sizes ts using (t)
        )
        select
            (select sum(n * (n - 1) / 2) from cells)::double,
            (select sum(n * (n - 1) / 2) from p_sizes)::double,
            (select sum(n * (n - 1) / 2) from t_sizes)::double,
            (select precision_sum from bcubed), (select recall_sum from bcubed),
            (select count(*) from {relation})
    """).fetchone()
    tp, predicted_pairs, true_pairs, bp_sum, br_sum, n = row
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    bp, br = bp_sum / n, br_sum / n
    return Accuracy(precision, recall, _f1(precision, recall), bp, br, _f1(bp, br), int(predicted_pairs), int(true_pairs))

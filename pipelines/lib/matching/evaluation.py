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


@dataclass(frozen=True)
class PairOutcomes:
    """What became of the true pairs (two records of one person): merged into one lead, offered for review
    (their two leads are a pair of the review queue), or missed (kept apart without a word, or rejected)."""
    pairs: int
    merged: int
    in_review: int
    missed: int
    by_kind: dict[str, tuple[int, int, int, int]]  # kind: (pairs, merged, in review, missed)

    @property
    def review_share(self) -> float:
        """Of the true pairs not merged, the share in the review queue."""
        unmerged = self.pairs - self.merged
        return self.in_review / unmerged if unmerged else 1.0

    def render(self) -> str:
        return (f"true pairs {self.pairs:,}: merged {self.merged:,}, in review {self.in_review:,}, missed {self.missed:,} "
                f"(of the pairs not merged, {self.review_share:.0%} are in review)")


def pair_outcomes(conn: duckdb.DuckDBPyConnection, relation: str, kind: str = "'all'") -> PairOutcomes:
    """``relation`` has one row per record: ``lead_id`` (null if the record is no lead), ``person_id`` (the
    truth) and ``review_with`` (';'-separated ids of the leads its lead is a review pair with, as
    `leadfactory dedupe` writes it). ``kind`` is a SQL expression over the pair's two rows ``a`` and ``b``
    that sorts pairs into kinds (say, across a life change or not)."""
    rows = conn.execute(f"""
        with r as (select * from {relation}),
        review as (select distinct lead_id, unnest(string_split(review_with, ';')) as other from r
                   where review_with is not null)
        select {kind} as kind, count(*) as pairs,
               count(*) filter (where a.lead_id = b.lead_id) as merged,
               count(*) filter (where a.lead_id is distinct from b.lead_id and exists (
                   select 1 from review v where v.lead_id = a.lead_id and v.other = b.lead_id)) as in_review
        from r a join r b on a.person_id = b.person_id and a.source_row < b.source_row
        group by all order by kind
    """).fetchall()
    by_kind = {k: (p, m, v, p - m - v) for k, p, m, v in rows}
    total = [sum(row[i] for row in by_kind.values()) for i in range(4)]
    return PairOutcomes(*total, by_kind=by_kind)

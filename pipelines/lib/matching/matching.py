"""Probabilistic record linkage of standardised lead records with Splink on DuckDB.

The comparisons are built for Chinese leads: E.164 mobiles and e-mails compared as sets (a lead may
have several), WeChat and QQ ids, names by characters, by pinyin (张伟/章伟) and surname-only
(王总 -> 王), company core names with term-frequency adjustment, city and canonical title.

A contact value seen with ``shared_value_min_people`` or more different people is removed before
matching: a company switchboard or a family e-mail identifies nobody and must not chain strangers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker, block_on

from .match_config import MatchConfig

log = logging.getLogger(__name__)

SCHEMA = "matching"
MATCH_INPUT = f"{SCHEMA}.match_input"
SCORED_PAIRS = f"{SCHEMA}.scored_pairs"
CONTACT_LISTS = ("mobiles", "emails", "wechats", "qqs")
TF_COMPARISONS = ("name", "company_core", "street_address")  # term-frequency adjusted: common values count less
TF_MIN_RECORDS = 2000  # below this, value frequencies are too noisy to adjust weights by
TRAINING_RECORDS_KEY = "leadfactory_training_records"  # kept in the model file, not a Splink setting
MAX_PRIOR = 0.01  # a tiny file is not mostly duplicates of itself
# EM needs enough pairs at every level; on small data Splink's EM can drive an m to exactly 0 and fail.
MIN_TRAINING_RECORDS = 10_000


def prepare_match_input(conn: duckdb.DuckDBPyConnection, records: str, config: MatchConfig) -> dict[str, int]:
    """Build ``matching.match_input`` from standardised records; return how many shared values were dropped."""
    conn.execute(f"create schema if not exists {SCHEMA}")
    conn.execute(f"""
        create or replace temp table record_contacts as
        with people as (
            select record_id,
                   -- a full name identifies a person well enough to count people sharing a value
                   case when length(name) >= 2 then name_pinyin end as person_key,
                   mobiles, emails, list_filter([wechat], x -> x is not null) as wechats,
                   list_filter([qq], x -> x is not null) as qqs
            from {records}
        )
        select record_id, person_key, 'mobiles' as kind, unnest(mobiles) as value from people
        union all select record_id, person_key, 'emails', unnest(emails) from people
        union all select record_id, person_key, 'wechats', unnest(wechats) from people
        union all select record_id, person_key, 'qqs', unnest(qqs) from people
    """)
    conn.execute(f"""
        create or replace table {SCHEMA}.shared_contact_values as
        select kind, value, count(distinct person_key) as people, count(*) as records
        from record_contacts
        group by kind, value
        having count(distinct person_key) >= {config.shared_value_min_people}
    """)
    lists = ",\n".join(
        f"list(c.value order by c.value) filter (where c.kind = '{kind}' and s.value is null) as {kind}"
        for kind in CONTACT_LISTS
    )
    conn.execute(f"""
        create or replace table {MATCH_INPUT} as
        with identifying as (
            select c.record_id, {lists}
            from record_contacts c
            left join {SCHEMA}.shared_contact_values s on s.kind = c.kind and s.value = c.value
            group by c.record_id
        )
        select
            r.record_id,
            r.name,
            r.name_pinyin,
            length(r.name) = 1 as surname_only,
            left(r.name, 1) as surname,
            nullif(i.mobiles, []) as mobiles,
            i.mobiles[1] as first_mobile,  -- EM training cannot block on exploded lists
            nullif(i.emails, []) as emails,
            i.wechats[1] as wechat,
            i.qqs[1] as qq,
            r.company_core,
            r.city,
            r.street_address,
            r.job_title_canonical
        from {records} r
        left join identifying i on i.record_id = r.record_id
    """)
    shared = dict(conn.execute(f"select kind, count(*) from {SCHEMA}.shared_contact_values group by kind").fetchall())
    return {kind: shared.get(kind, 0) for kind in CONTACT_LISTS}


def _level(sql: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"sql_condition": sql, "label_for_charts": label, **extra}


def _null(*columns: str) -> dict[str, Any]:
    cond = " or ".join(f"{c}_l is null or {c}_r is null" for c in columns)
    return _level(cond, "null", is_null_level=True)


def _exact_comparison(column: str, label: str, tf: bool = False) -> dict[str, Any]:
    exact = _level(f"{column}_l = {column}_r", f"{label} same")
    if tf:
        exact.update(tf_adjustment_column=column, tf_adjustment_weight=1.0)
    return {
        "output_column_name": column,
        "comparison_description": label,
        "comparison_levels": [_null(column), exact, _level("ELSE", f"{label} different")],
    }


def _set_comparison(column: str, label: str) -> dict[str, Any]:
    return {
        "output_column_name": column,
        "comparison_description": label,
        "comparison_levels": [
            _null(column),
            _level(f"list_has_any({column}_l, {column}_r)", f"{label} shared"),
            _level("ELSE", f"{label} different"),
        ],
    }


def splink_settings() -> dict[str, Any]:
    """The model's structure; its trained parameters live in the versioned JSON model file."""
    name = {
        "output_column_name": "name",
        "comparison_description": "name",
        "comparison_levels": [
            _null("name"),
            _level("name_l = name_r", "name same", tf_adjustment_column="name", tf_adjustment_weight=1.0),
            _level("name_pinyin_l = name_pinyin_r and not surname_only_l and not surname_only_r", "name pinyin same"),
            _level("(surname_only_l or surname_only_r) and surname_l = surname_r", "surname only, same surname"),
            _level("jaro_winkler_similarity(name_pinyin_l, name_pinyin_r) >= 0.9", "name pinyin close"),
            _level("ELSE", "name different"),
        ],
    }
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "record_id",
        "probability_two_random_records_match": 1e-6,
        "blocking_rules_to_generate_predictions": [
            block_on("mobiles", arrays_to_explode=["mobiles"]),
            block_on("emails", arrays_to_explode=["emails"]),
            block_on("wechat"),
            block_on("qq"),
            block_on("name_pinyin", "company_core"),
            block_on("name_pinyin", "street_address"),
        ],
        "comparisons": [
            _set_comparison("mobiles", "mobile"),
            _set_comparison("emails", "email"),
            _exact_comparison("wechat", "wechat"),
            _exact_comparison("qq", "qq"),
            name,
            _exact_comparison("company_core", "company core", tf=True),
            _exact_comparison("city", "city"),
            _exact_comparison("street_address", "street address", tf=True),
            _exact_comparison("job_title_canonical", "title"),
        ],
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": ["name_pinyin", "surname_only", "surname", "first_mobile"],
    }


def _linker(conn: duckdb.DuckDBPyConnection, settings: dict[str, Any] | str) -> Linker:
    # Splink registers its input as a view of this name; a previous linker's view goes first.
    conn.execute("drop view if exists match_input")
    db_api = DuckDBAPI(connection=conn)
    frame = db_api.register(conn.table(MATCH_INPUT), dataset_display_name="match_input")
    return Linker(frame, settings, log_level=logging.WARNING)


def train_model(conn: duckdb.DuckDBPyConnection, model_path: Path, seed: int = 1) -> dict[str, Any]:
    """Estimate the model unsupervised (random sampling for u, EM for m) and save it as JSON."""
    records = conn.execute(f"select count(*) from {MATCH_INPUT}").fetchone()[0]
    if records < MIN_TRAINING_RECORDS:
        raise ValueError(f"{records:,} records are too few to train a matching model (at least "
                         f"{MIN_TRAINING_RECORDS:,}); the current model in {model_path} is left as it is")
    linker = _linker(conn, splink_settings())
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("mobiles", arrays_to_explode=["mobiles"]), block_on("emails", arrays_to_explode=["emails"])],
        recall=0.8,
    )
    training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=seed)
    # Each EM pass fixes what it blocks on and learns the rest.
    training.estimate_parameters_using_expectation_maximisation(block_on("first_mobile"))
    training.estimate_parameters_using_expectation_maximisation(block_on("name_pinyin", "company_core"))
    model = floor_probabilities(linker.misc.save_model_to_json(overwrite=True))
    linker.table_management.delete_tables_created_by_splink_from_db()
    # The prior is a property of the training data's size; score_pairs rescales it to the data at hand.
    model[TRAINING_RECORDS_KEY] = records
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return model


PROBABILITY_FLOOR = 1e-3


def floor_probabilities(model: dict[str, Any], floor: float = PROBABILITY_FLOOR) -> dict[str, Any]:
    """No level's m probability below ``floor``: a level EM never saw among matches (a person whose
    city changed) would otherwise veto a match with an infinite negative weight. u is left alone: a
    tiny u is exactly what makes a shared mobile strong evidence."""
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        values = [max(float(lvl.get("m_probability") or 0.0), floor) for lvl in levels]
        total = sum(values)
        for lvl, value in zip(levels, values):
            lvl["m_probability"] = value / total
    return model


# Words a specialist understands, per comparison level label.
EXPLANATION_WORDS = {
    "mobile shared": "同手机号", "mobile different": "手机号不同",
    "email shared": "同邮箱", "email different": "邮箱不同",
    "wechat same": "同微信号", "wechat different": "微信号不同",
    "qq same": "同QQ号", "qq different": "QQ号不同",
    "name same": "姓名相同", "name pinyin same": "姓名拼音相同", "surname only, same surname": "同姓(一方只有姓)",
    "name pinyin close": "姓名拼音相近", "name different": "姓名不同",
    "company core same": "公司核心名相同", "company core different": "公司不同",
    "city same": "同城市", "city different": "城市不同",
    "title same": "职务相同", "title different": "职务不同",
    "street address same": "街道地址相同", "street address different": "街道地址不同",
}


def score_pairs(conn: duckdb.DuckDBPyConnection, model_path: Path, review_threshold: float) -> int:
    """Score candidate pairs with the trained model into ``matching.scored_pairs``; return the number kept."""
    model = json.loads(Path(model_path).read_text(encoding="utf-8"))
    records = conn.execute(f"select count(*) from {MATCH_INPUT}").fetchone()[0]
    model["probability_two_random_records_match"] = prior_for(model, records)
    use_tf = records >= TF_MIN_RECORDS
    if not use_tf:
        # In a small file every repeated value looks common (张伟 is 50% of a two-row file), so term
        # frequencies would punish exactly the duplicates we are looking for: use the plain weights.
        for comparison in model["comparisons"]:
            for level in comparison["comparison_levels"]:
                level.pop("tf_adjustment_column", None)
                level.pop("tf_adjustment_weight", None)
    linker = _linker(conn, model)
    if use_tf:
        for column in TF_COMPARISONS:
            linker.table_management.compute_tf_table(column)
    predictions = linker.inference.predict(threshold_match_probability=review_threshold, warning_mode="never")
    levels = _level_labels(model)
    explain_parts = []
    for comparison, labels in levels.items():
        cases = " ".join(f"when {gamma} then '{EXPLANATION_WORDS.get(label, label)}'" for gamma, label in labels.items())
        weight = f"coalesce(mw_{comparison}, 0)" + (
            f" + coalesce(mw_tf_adj_{comparison}, 0)" if use_tf and comparison in TF_COMPARISONS else "")
        explain_parts.append(
            f"case when gamma_{comparison} >= 0 then (case gamma_{comparison} {cases} end) || ' ' || "
            f"printf('%+.1f', {weight}) end"
        )
    conn.execute(f"""
        create or replace table {SCORED_PAIRS} as
        select
            record_id_l, record_id_r, match_weight, match_probability,
            -- Names that clearly differ are never merged automatically, however strong the contact match.
            coalesce(gamma_name <> 0, true) as names_compatible,
            -- kept so the review queue can sort pairs into kinds of conflict (REVIEW_KINDS)
            gamma_mobiles, gamma_emails, gamma_wechat, gamma_qq, gamma_name, gamma_company_core,
            concat_ws('; ', {', '.join(explain_parts)}) as explanation
        from {predictions.physical_name}
    """)
    # Splink's working tables (term frequencies, predictions) would otherwise pile up in the file every run.
    linker.table_management.delete_tables_created_by_splink_from_db()
    return conn.execute(f"select count(*) from {SCORED_PAIRS}").fetchone()[0]


def prior_for(model: dict[str, Any], records: int) -> float:
    """The probability that two random records match, for ``records`` records.

    Each person has a handful of records whatever the size of the library, so matching pairs grow
    like N while all pairs grow like N^2: the prior falls as 1/N. A prior trained on 50k records and
    used unchanged on 1M would be 20 times too generous, and two different 陈明 at two companies
    that happen to share a core name would be merged.
    """
    trained = model.pop(TRAINING_RECORDS_KEY, None)
    prior = float(model["probability_two_random_records_match"])
    if not trained or records <= 1:
        return prior
    return min(prior * trained / records, MAX_PRIOR)


def _level_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    """{comparison output column: {gamma value: label}} for the non-null levels of the model."""
    out: dict[str, dict[int, str]] = {}
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        n = len(levels)
        out[comparison["output_column_name"]] = {n - 1 - i: lvl["label_for_charts"] for i, lvl in enumerate(levels)}
    return out

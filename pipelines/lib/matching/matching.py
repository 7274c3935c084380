"""Probabilistic record linkage of standardised lead records with Splink on DuckDB.

The comparisons are built for Chinese leads: E.164 mobiles and e-mails compared as sets (a lead may
have several), WeChat and QQ ids, names by characters, by pinyin (张伟/章伟) and surname-only
(王总 -> 王), company core names with term-frequency adjustment, city and canonical title.

A contact value seen with ``shared_value_min_people`` or more different people is removed before
matching: a company switchboard or a family e-mail identifies nobody and must not chain strangers.

People change jobs and mobiles: the model is trained on data where they do, so a new company, title,
city or mobile weighs a few bits against a pair, never a veto; what they kept (a mobile, a WeChat id,
an e-mail) identifies them. Identifiers' u is measured on clearly different people (train_model) and
follows the library's size like the prior (scale_identifiers). Pairs sharing only a rare name (and a city
or a title) are candidates too, where they can reach the review threshold (name_blocking_limits).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker, block_on

from .match_config import MatchConfig
from ..refresh import PENDING_CHANGES

log = logging.getLogger(__name__)

SCHEMA = "matching"
MATCH_INPUT = f"{SCHEMA}.match_input"
SCORED_PAIRS = f"{SCHEMA}.scored_pairs"
CONTACT_LISTS = ("mobiles", "emails", "wechats", "qqs")
# Candidate pairs share one of these (a list column shares any value); see also _library_candidates_sql.
# rare_name / uncommon_name: the name's pinyin where so few records carry it that a pair sharing only the
# name (and a city or a title) could reach the review threshold (see name_blocking_limits).
BLOCKING_KEYS = (("mobiles",), ("emails",), ("wechat",), ("qq",), ("name_pinyin", "company_core"),
                 ("name_pinyin", "street_address"), ("company_core", "street_address"),
                 ("uncommon_name", "city"), ("uncommon_name", "job_title_canonical"), ("rare_name",))
LIST_COLUMNS = ("mobiles", "emails")
TF_COMPARISONS = ("name", "company_core", "street_address")  # term-frequency adjusted: common values count less
TF_MIN_RECORDS = 2000  # below this, value frequencies are too noisy to adjust weights by
# Comparisons of values that identify one person (a contact value held by three or more people is dropped
# before matching): two strangers share one only by accident, so the chance grows like N, not N^2.
IDENTIFIER_COMPARISONS = ("mobiles", "emails", "wechat", "qq")
TRAINING_RECORDS_KEY = "leadfactory_training_records"  # kept in the model file, not a Splink setting
MAX_PRIOR = 0.01  # a tiny file is not mostly duplicates of itself
# EM needs enough pairs at every level; on small data Splink's EM can drive an m to exactly 0 and fail.
MIN_TRAINING_RECORDS = 10_000


RECORD_CONTACTS = f"{SCHEMA}.record_contacts"
SHARED_CONTACT_VALUES = f"{SCHEMA}.shared_contact_values"


def _record_contacts_sql(records: str, where: str = "true") -> str:
    """One row per identifying contact value of each record, with who holds it."""
    return f"""
        with people as (
            select record_id,
                   -- a full name identifies a person well enough to count people sharing a value
                   case when length(name) >= 2 then name_pinyin end as person_key,
                   mobiles, emails, list_filter([wechat], x -> x is not null) as wechats,
                   list_filter([qq], x -> x is not null) as qqs
            from {records}
            where {where}
        )
        select record_id, person_key, 'mobiles' as kind, unnest(mobiles) as value from people
        union all select record_id, person_key, 'emails', unnest(emails) from people
        union all select record_id, person_key, 'wechats', unnest(wechats) from people
        union all select record_id, person_key, 'qqs', unnest(qqs) from people
    """


def _shared_values_sql(where: str = "true") -> str:
    return f"""
        select kind, value, count(distinct person_key) as people, count(*) as records
        from {RECORD_CONTACTS}
        where {where}
        group by kind, value
        having count(distinct person_key) >= ?
    """


def name_blocking_limits(model: dict[str, Any], review: float) -> tuple[int, int]:
    """How many records may carry a name for a pair sharing only that name (rare), or the name and a city
    or a title (uncommon), to be a candidate pair: beyond that the pair cannot reach ``review``.

    With the name's term frequency c/N, a shared name is worth m/(c/N) and the prior is lambda_t*N_t/N
    (prior_for), so the odds of such a pair are lambda_t*N_t*m/c, whatever the library's size N: the
    limits are counts of records, the same in a 20,000 and a 1,000,000 record library."""
    trained = model.get(TRAINING_RECORDS_KEY) or 50_000
    expected = float(model["probability_two_random_records_match"]) * trained  # lambda_t * N_t
    levels = {(c["output_column_name"], lvl["label_for_charts"]): lvl
              for c in model["comparisons"] for lvl in c["comparison_levels"] if not lvl.get("is_null_level")}

    def factor(key: tuple[str, str]) -> float:
        level = levels.get(key)
        return float(level["m_probability"]) / float(level["u_probability"]) if level else 1.0

    name_m = float(levels[("name", "name same")]["m_probability"]) if ("name", "name same") in levels else 0.85
    odds = expected * name_m * (1 - review) / review
    best_other = max(factor(("city", "city same")), factor(("job_title_canonical", "title same")), 1.0)
    return int(odds), int(odds * best_other)


def _name_limits(conn: duckdb.DuckDBPyConnection, records: str, config: MatchConfig) -> tuple[int, int]:
    """The limits for this library; none below TF_MIN_RECORDS, where a name's frequency says nothing (a name
    shared in a 12-row file would otherwise weigh a full name's average and be merged on its own)."""
    if conn.execute(f"select count(*) from {records}").fetchone()[0] < TF_MIN_RECORDS:
        return 0, 0
    return name_blocking_limits(json.loads(Path(config.model_path).read_text(encoding="utf-8")), config.review)


def _match_input_sql(records: str, only: str | None = None, name_limits: tuple[int, int] = (0, 0)) -> str:
    """The match input of every record, or of the records whose ids the relation ``only`` lists."""
    rare, uncommon = name_limits
    c_only = f"c.record_id in (select record_id from {only})" if only else "true"
    r_only = f"r.record_id in (select record_id from {only})" if only else "true"
    lists = ",\n".join(
        f"list(c.value order by c.value) filter (where c.kind = '{kind}' and s.value is null) as {kind}"
        for kind in CONTACT_LISTS
    )
    return f"""
        with identifying as (
            select c.record_id, {lists}
            from {RECORD_CONTACTS} c
            left join {SHARED_CONTACT_VALUES} s on s.kind = c.kind and s.value = c.value
            where {c_only}
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
            r.job_title_canonical,
            case when length(r.name) >= 2 and n.records <= {int(rare)} then r.name_pinyin end as rare_name,
            case when length(r.name) >= 2 and n.records <= {int(uncommon)} then r.name_pinyin end as uncommon_name
        from {records} r
        left join identifying i on i.record_id = r.record_id
        -- how many records of the library carry each full name (by pinyin); an equi-join (a hash join)
        left join (select name_pinyin, count(*) as records from {records} where length(name) >= 2 group by name_pinyin) n
            on n.name_pinyin = r.name_pinyin
        where {r_only}
    """


def _shared_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    shared = dict(conn.execute(f"select kind, count(*) from {SHARED_CONTACT_VALUES} group by kind").fetchall())
    return {kind: shared.get(kind, 0) for kind in CONTACT_LISTS}


def prepare_match_input(conn: duckdb.DuckDBPyConnection, records: str, config: MatchConfig) -> dict[str, int]:
    """Build ``matching.match_input`` from standardised records; return how many shared values were dropped."""
    conn.execute(f"create schema if not exists {SCHEMA}")
    conn.execute(f"create or replace table {RECORD_CONTACTS} as {_record_contacts_sql(records)}")
    conn.execute(f"create or replace table {SHARED_CONTACT_VALUES} as {_shared_values_sql()}",
                 [config.shared_value_min_people])
    conn.execute(f"create or replace table {MATCH_INPUT} as {_match_input_sql(records, name_limits=_name_limits(conn, records, config))}")
    return _shared_counts(conn)


def update_match_input(conn: duckdb.DuckDBPyConnection, records: str, config: MatchConfig, changed: str) -> dict[str, int]:
    """Bring ``match_input`` up to date with the records in ``changed`` (a relation of record ids) without
    rebuilding it: their contacts replace their old ones, the values they hold are counted again across
    the library, and a value that has become shared leaves every record that holds it."""
    in_changed = f"record_id in (select record_id from {changed})"
    conn.execute("begin transaction")
    try:
        # the values the changed records held before (an updated or retired record gives some up) and now
        conn.execute(f"""create or replace temp table touched_values as
                         select distinct kind, value from {RECORD_CONTACTS} where {in_changed}""")
        conn.execute(f"delete from {RECORD_CONTACTS} where {in_changed}")
        conn.execute(f"insert into {RECORD_CONTACTS} {_record_contacts_sql(records, in_changed)}")
        conn.execute(f"""insert into touched_values select distinct kind, value from {RECORD_CONTACTS}
                         where {in_changed} except select kind, value from touched_values""")
        conn.execute(f"""create or replace temp table was_shared as
                         select s.kind, s.value from {SHARED_CONTACT_VALUES} s join touched_values using (kind, value)""")
        conn.execute(f"delete from {SHARED_CONTACT_VALUES} where (kind, value) in (select kind, value from touched_values)")
        conn.execute(f"insert into {SHARED_CONTACT_VALUES} {_shared_values_sql('(kind, value) in (select kind, value from touched_values)')}",
                     [config.shared_value_min_people])
        # library records whose lists change because a value they hold became (or stopped being) shared
        conn.execute(f"""create or replace temp table match_input_rebuild as
            select record_id from {changed}
            union
            select c.record_id from {RECORD_CONTACTS} c
            join (select kind, value from {SHARED_CONTACT_VALUES} where (kind, value) in (select kind, value from touched_values)
                  union all select kind, value from was_shared) v using (kind, value)
            where c.record_id not in (select record_id from {changed})""")
        conn.execute(f"delete from {MATCH_INPUT} where record_id in (select record_id from match_input_rebuild)")
        conn.execute(f"insert into {MATCH_INPUT} {_match_input_sql(records, 'match_input_rebuild', _name_limits(conn, records, config))}")
        # A library record whose lists changed is matched again too, and its lead rebuilt: a value that
        # became shared must stop holding its lead together, as it would in a full run.
        conn.execute(f"""create or replace temp table rematched as select record_id from match_input_rebuild
                         where record_id not in (select record_id from {changed})""")
        conn.execute(f"insert into {changed} select record_id from rematched")
        conn.execute(f"insert into {PENDING_CHANGES} select record_id, 'rematched', null from rematched")
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return _shared_counts(conn)


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
            block_on(*key, arrays_to_explode=[c for c in key if c in LIST_COLUMNS] or None) for key in BLOCKING_KEYS
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
    settings = splink_settings()
    fix_identifier_u(settings, identifier_u_probabilities(conn))
    linker = _linker(conn, settings)
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


def identifier_u_probabilities(conn: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """For each identifier comparison, the chance that two different people share the value: measured on
    the pairs whose full names clearly differ (the model's "name different" level), which are different
    people. Splink's random sampling cannot measure it: among random pairs, those sharing a mobile are
    nearly all the same person, so it finds u = (share of matches) x m and a shared mobile would only ever
    be as strong as the prior is weak (a pair with a shared mobile and nothing else known stayed 50/50).
    A value nobody was seen to share counts as shared once (the estimate's floor)."""
    full = "length(name) >= 2 and name_pinyin is not null"
    named = conn.execute(f"select count(*) from {MATCH_INPUT} where {full}").fetchone()[0]
    pairs = max(named * (named - 1) / 2, 1.0)
    different = "a.name_pinyin <> b.name_pinyin and jaro_winkler_similarity(a.name_pinyin, b.name_pinyin) < 0.9"
    out = {}
    for column in IDENTIFIER_COMPARISONS:
        value = f"unnest({column})" if column in LIST_COLUMNS else column
        shared = conn.execute(f"""
            with v as (select record_id, name_pinyin, {value} as value from {MATCH_INPUT} where {full})
            select count(distinct (a.record_id, b.record_id)) from v a join v b
            on a.value = b.value and a.record_id < b.record_id
            where a.value is not null and {different}""").fetchone()[0]
        out[column] = max(shared, 1) / pairs
    return out


def fix_identifier_u(settings: dict[str, Any], u: dict[str, float]) -> dict[str, Any]:
    """Put the measured u of each identifier comparison into the settings, fixed for training."""
    for comparison in settings["comparisons"]:
        column = comparison["output_column_name"]
        if column not in u:
            continue
        agree, different = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        agree.update(u_probability=u[column], fix_u_probability=True)
        different.update(u_probability=1.0 - u[column], fix_u_probability=True)
    return settings


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


def _tf_table(column: str) -> str:
    return f"{SCHEMA}.tf_{column}"


def _scoring_model(conn: duckdb.DuckDBPyConnection, model_path: Path) -> tuple[dict[str, Any], bool]:
    """The trained model with its prior rescaled to the library's size, and whether term frequencies apply."""
    model = json.loads(Path(model_path).read_text(encoding="utf-8"))
    records = conn.execute(f"select count(*) from {MATCH_INPUT}").fetchone()[0]
    trained_prior = float(model["probability_two_random_records_match"])
    model["probability_two_random_records_match"] = prior_for(model, records)
    scale_identifiers(model, model["probability_two_random_records_match"] / trained_prior)
    # Candidate pairs are the code's (BLOCKING_KEYS, as the incremental path finds them), whatever the
    # model file was trained with.
    model["blocking_rules_to_generate_predictions"] = splink_settings()["blocking_rules_to_generate_predictions"]
    use_tf = records >= TF_MIN_RECORDS
    if not use_tf:
        # In a small file every repeated value looks common (张伟 is 50% of a two-row file), so term
        # frequencies would punish exactly the duplicates we are looking for: use the plain weights.
        for comparison in model["comparisons"]:
            for level in comparison["comparison_levels"]:
                level.pop("tf_adjustment_column", None)
                level.pop("tf_adjustment_weight", None)
    return model, use_tf


def write_term_frequencies(conn: duckdb.DuckDBPyConnection) -> None:
    """The share of the library's records carrying each value of a term-frequency column, as Splink
    computes it (term_frequencies_for_single_column_sql), over the whole current match input: an import
    counts its own records too, so its pairs weigh a name as a full rerun would."""
    for column in TF_COMPARISONS:
        conn.execute(f"""
            create or replace table {_tf_table(column)} as
            select {column}, cast(count(*) as float8) / (select count({column}) from {MATCH_INPUT}) as tf_{column}
            from {MATCH_INPUT} where {column} is not null group by {column}""")


def use_term_frequencies(linker: Linker, db_api: DuckDBAPI) -> None:
    """Score with the term-frequency tables write_term_frequencies wrote (Splink would count its own input)."""
    for column in TF_COMPARISONS:
        tf = db_api.register(_tf_table(column), dataset_display_name=f"tf_{column}")
        linker.table_management.register_term_frequency_lookup(tf, column)


def score_pairs(conn: duckdb.DuckDBPyConnection, model_path: Path, review_threshold: float) -> int:
    """Score every candidate pair of the library with the trained model into ``matching.scored_pairs``
    (replacing it); keep the term-frequency tables for incremental runs. Return the number of pairs kept."""
    model, use_tf = _scoring_model(conn, model_path)
    linker = _linker(conn, model)
    # Kept even when not applied: a library that grows past TF_MIN_RECORDS by imports needs them.
    write_term_frequencies(conn)
    use_term_frequencies(linker, DuckDBAPI(connection=conn))
    predictions = linker.inference.predict(threshold_match_probability=review_threshold, warning_mode="never")
    conn.execute(f"create or replace table {SCORED_PAIRS} as {_scored_pairs_sql(model, use_tf, predictions.physical_name)}")
    # Splink's working tables (term frequencies, predictions) would otherwise pile up in the file every run.
    linker.table_management.delete_tables_created_by_splink_from_db()
    return conn.execute(f"select count(*) from {SCORED_PAIRS}").fetchone()[0]


def score_changed_records(conn: duckdb.DuckDBPyConnection, model_path: Path, review_threshold: float,
                          changed: str) -> int:
    """Score only the records in ``changed`` (a relation of record ids): against the rest of the library
    (Splink's ``predict_between``) and against each other (``predict_within``), with the library's
    term-frequency tables, so the library's own pairs are not scored again. Their old pairs are replaced
    in ``matching.scored_pairs``; return the number of new pairs kept."""
    model, use_tf = _scoring_model(conn, model_path)
    conn.execute("drop view if exists match_input")
    conn.execute(f"create or replace temp view changed_match_input as select * from {MATCH_INPUT} "
                 f"where record_id in (select record_id from {changed})")
    # Only library records that share a blocking key with a changed record can pair with one: found by
    # joins here, Splink blocks and scores a few thousand records instead of the whole library.
    conn.execute(f"""create or replace temp table library_match_input as
                     select * from {MATCH_INPUT}
                     where record_id in ({_library_candidates_sql('changed_match_input')})
                       and record_id not in (select record_id from {changed})""")
    db_api = DuckDBAPI(connection=conn)
    # table names: Splink reads them where they are, no copy of the library
    new = db_api.register("changed_match_input", dataset_display_name="changed_match_input")
    library = db_api.register("library_match_input", dataset_display_name="library_match_input")
    linker = Linker(new, model, log_level=logging.WARNING)
    write_term_frequencies(conn)
    use_term_frequencies(linker, db_api)
    within = linker.inference.predict_within(new, threshold_match_probability=review_threshold, warning_mode="never")
    between = linker.inference.predict_between(new, library, threshold_match_probability=review_threshold,
                                               warning_mode="never")
    conn.execute("begin transaction")
    try:
        conn.execute(f"delete from {SCORED_PAIRS} where record_id_l in (select record_id from {changed}) "
                     f"or record_id_r in (select record_id from {changed})")
        added = 0
        for predictions in (within, between):
            added += conn.execute(f"insert into {SCORED_PAIRS} by name "
                                  f"{_scored_pairs_sql(model, use_tf, predictions.physical_name)}").fetchone()[0]
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    linker.table_management.delete_tables_created_by_splink_from_db()
    conn.execute("drop view if exists changed_match_input")
    conn.execute("drop table if exists library_match_input")
    return added


def _library_candidates_sql(changed_input: str) -> str:
    """Record ids of the match input sharing a blocking key (BLOCKING_KEYS) with a row of ``changed_input``."""
    parts = []
    for key in BLOCKING_KEYS:
        if key[0] in LIST_COLUMNS:
            (column,) = key
            parts.append(f"""select l.record_id from (select record_id, unnest({column}) as value from {MATCH_INPUT}) l
                             semi join (select unnest({column}) as value from {changed_input}) n using (value)""")
        else:
            present = " and ".join(f"{c} is not null" for c in key)
            parts.append(f"""select l.record_id from {MATCH_INPUT} l
                             semi join (select distinct {', '.join(key)} from {changed_input} where {present}) n
                             using ({', '.join(key)})""")
    return " union ".join(parts)


def _scored_pairs_sql(model: dict[str, Any], use_tf: bool, predictions: str) -> str:
    """Splink's predictions as scored pairs: the lower record id on the left, with a per-field explanation."""
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
    return f"""
        select
            least(record_id_l, record_id_r) as record_id_l, greatest(record_id_l, record_id_r) as record_id_r,
            match_weight, match_probability,
            -- Names that clearly differ are never merged automatically, however strong the contact match.
            coalesce(gamma_name <> 0, true) as names_compatible,
            -- kept so the review queue can sort pairs into kinds of conflict (REVIEW_KINDS)
            gamma_mobiles, gamma_emails, gamma_wechat, gamma_qq, gamma_name, gamma_company_core,
            concat_ws('; ', {', '.join(explain_parts)}) as explanation
        from {predictions}
    """


def scale_identifiers(model: dict[str, Any], factor: float) -> dict[str, Any]:
    """Rescale the u of identifier agreement levels by ``factor``, the prior's own rescaling (prior_for).

    A shared mobile between two different people is rare in proportion to the number of pairs: among N
    records about N values are shared by accident (a recycled number, a family phone) while there are
    N^2/2 pairs, so u falls as 1/N, like the prior. Rescaling the prior alone would make a shared mobile
    20 times weaker evidence in a 1,000,000-record library than in the 50,000 it was trained on, and leave
    pairs held together by a mobile and little else unmerged. Names, companies, streets, cities and titles
    are common values: their u does not depend on the library's size and is left alone.
    """
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] not in IDENTIFIER_COMPARISONS:
            continue
        *agree, different = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        for level in agree:
            level["u_probability"] = min(float(level["u_probability"]) * factor, 0.5 / len(agree))
        different["u_probability"] = 1.0 - sum(level["u_probability"] for level in agree)
    return model


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

"""Matching on small crafted cases: true duplicates merge, strangers sharing a value never do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.lib.matching.clustering import cluster
from pipelines.runs import dedupe_file, standardise_library
from pipelines.lib.matching.match_config import ConfigError, load_match_config
from pipelines.lib.sources.sample_data import generate_leads

HEADERS = ["姓名", "手机", "座机", "邮箱", "微信", "公司", "城市", "备注"]
CRAFTED = [
    # the same person in every mobile format, a homophone and an honorific: one lead
    ["张伟", "13812345601", None, None, None, "北京字节跳动科技有限公司", "北京", "same-person"],
    ["张 伟", "+86 138-1234-5601", None, "zw1@qq.com", None, "字节跳动(北京)有限公司", None, "same-person"],
    ["章伟", "１３８１２３４５６０１", None, "zw1@qq.com", None, None, "北京", "same-person"],
    ["张总", "13812345601.0", None, None, None, "字节跳动", None, "same-person"],
    # five colleagues sharing the company switchboard: five leads
    *[[name, f"1390000{i:04d}", "0755-86001234", None, None, "深圳恒泰科技有限公司", "深圳", "switchboard"]
      for i, name in enumerate(["李娜", "王芳", "刘洋", "陈静", "杨磊"])],
    # two nameless contacts of one company, each with a mobile of their own, behind one switchboard: the
    # chaining guard cannot tell them apart (it counts people by name), names cannot keep them apart, and
    # company and city agree; only the switchboard being no matching input keeps them two leads
    [None, "13900011001", "0571-88776655", None, None, "杭州云帆网络有限公司", "杭州", "switchboard-nameless"],
    [None, "13900011002", "0571-88776655", None, None, "杭州云帆网络有限公司", "杭州", "switchboard-nameless"],
    # a junk number typed for four strangers: four leads
    *[[name, "13800138000", None, None, None, None, "上海", "junk-number"]
      for name in ["赵敏", "孙丽", "周杰", "吴涛"]],
    # a placeholder number typed for two namesakes at two companies: were it a number, the two would share a
    # mobile and a name (the guard sees one person) and be merged; it is nulled before matching
    ["钱芳", "13888888888", None, None, None, "上海甲贸易有限公司", "上海", "junk-namesake"],
    ["钱芳", "13888888888", None, None, None, "上海乙科技有限公司", "上海", "junk-namesake"],
    # one family e-mail used by three people: three leads
    *[[name, None, None, "family_home@163.com", None, None, "杭州", "family-email"]
      for name in ["郑强", "郑红", "郑军"]],
    # one front-desk mobile shared by three people at a company: three leads
    *[[name, "13711112222", None, None, None, "瑞达贸易有限公司", "广州", "front-desk"]
      for name in ["黄艳", "何勇", "高明"]],
    # two people sharing only an e-mail, names different: not merged (review)
    ["林超", None, None, "lin_family@126.com", None, None, "成都", "two-share-email"],
    ["罗霞", None, None, "lin_family@126.com", None, None, "成都", "two-share-email"],
    # four different people with a very common name in one city: four leads. The name is as common here as
    # it is in a library (twenty more 王伟 elsewhere): a name carried by a few records only may be a
    # blocking key with a city, a common one never
    *[["王伟", f"1350000{i:04d}", None, None, None, company, "武汉", "common-name"]
      for i, company in enumerate(["甲", "乙", "丙", "丁"])],
    *[["王伟", f"1350001{i:04d}", None, None, None, f"王伟同名{i}号有限公司", city, "common-name-elsewhere"]
      for i, city in enumerate(["北京", "上海", "广州", "深圳", "成都", "重庆", "天津", "南京", "杭州", "西安"] * 2)],
]
# People whose records disagree on place, title and time (survivorship). Each pair shares name, mobile,
# e-mail and company, so it is one lead; 更新时间 is when a record was last updated, 登记时间 when it was
# registered.
PLACE_HEADERS = ["姓名", "手机", "邮箱", "公司", "职务", "省份", "城市", "区县", "地址", "更新时间", "登记时间", "备注"]
SURVIVORSHIP = [
    # the newer record knows only province and city; the older one the whole place, in another city
    ["赵雷", "13912340001", "zhaolei@163.com", "华联商贸有限公司", None, "北京市", "北京市", None, None,
     "2026-01-10", "2025-12-01", "place"],
    ["赵雷", "13912340001", "zhaolei@163.com", "华联商贸有限公司", None, "上海市", "上海市", "浦东新区",
     "上海市浦东新区世纪大道100号", "2024-05-01", "2023-02-01", "place"],
    # updated later but registered earlier: the later update wins, whatever the registration times say
    ["周婷", "13912340002", "zhouting@163.com", "华联商贸有限公司", "销售经理", None, None, None, None,
     "2024-01-01", "2026-01-01", "recency"],
    ["周婷", "13912340002", "zhouting@163.com", "华联商贸有限公司", "采购经理", None, None, None, None,
     "2025-06-01", "2020-01-01", "recency"],
    # a record that says when it was updated beats one that says only when it was created
    ["孙浩", "13912340003", "sunhao@163.com", "华联商贸有限公司", "销售经理", None, None, None, None,
     "2022-03-01", None, "updated-beats-created"],
    ["孙浩", "13912340003", "sunhao@163.com", "华联商贸有限公司", "采购经理", None, None, None, None,
     None, "2026-03-01", "updated-beats-created"],
    # neither says when it was updated: the later registration wins (the documented fallback)
    ["钱坤", "13912340004", "qiankun@163.com", "华联商贸有限公司", "销售经理", None, None, None, None,
     None, "2025-01-01", "created-fallback"],
    ["钱坤", "13912340004", "qiankun@163.com", "华联商贸有限公司", "采购经理", None, None, None, None,
     None, "2021-01-01", "created-fallback"],
]


def _write_rows(path: Path, headers: list[str], rows: list[list]) -> Path:
    pl.DataFrame([dict(zip(headers, r)) for r in rows], schema={h: pl.Utf8 for h in headers}).write_csv(path)
    return path


@pytest.fixture(scope="module")
def matched(tmp_path_factory, module_monkeypatch):
    """The crafted rows through the library's own import, standardisation and matching (the dedupe job:
    what `leadfactory dedupe` runs), then every candidate pair the blocking rules generate, scored with no
    threshold, into matching.candidate_pairs."""
    import duckdb

    from pipelines.lib.matching.matching import SCORED_PAIRS, prepare_match_input, score_pairs
    from pipelines.runs import run_job
    from tests.conftest import use_home

    home = use_home(tmp_path_factory.mktemp("crafted"), module_monkeypatch)
    _write_rows(home.warehouse_dir / "crafted.csv", HEADERS, CRAFTED)
    _write_rows(home.warehouse_dir / "survivorship.csv", PLACE_HEADERS, SURVIVORSHIP)
    assert run_job("dedupe_job").success
    config = load_match_config()
    with duckdb.connect(str(home.duckdb_path)) as conn:
        prepare_match_input(conn, "marts.lead_records", config)
        score_pairs(conn, config.model_path, 0.0)  # every pair the blocking rules generate
        conn.execute(f"create table matching.candidate_pairs as select * from {SCORED_PAIRS}")
    return home


def query(home, sql: str) -> list[dict]:
    import duckdb

    with duckdb.connect(str(home.duckdb_path), read_only=True) as conn:
        cursor = conn.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def records(matched) -> list[dict]:
    """Every crafted record, standardised, with its case (备注) and lead."""
    rows = query(matched, """select r.record_id, r.name, r.mobile, r.landlines, m.lead_id,
                                    json_extract_string(r.extra_attributes, '$.备注') as case_label
                             from marts.lead_records r join matching.lead_members m using (record_id)""")
    return [{**r, "case": r["case_label"]} for r in rows]


@pytest.fixture(scope="module")
def crafted(records) -> dict[str, list[str]]:
    """{case label (备注): [lead ids of its records]}."""
    by_case: dict[str, list[str]] = {}
    for record in records:
        by_case.setdefault(record["case"], []).append(record["lead_id"])
    return by_case


def test_every_crafted_row_is_a_record(records):
    assert len(records) == len(CRAFTED) + len(SURVIVORSHIP)


def test_true_duplicates_in_every_format_become_one_lead(crafted):
    assert len(set(crafted["same-person"])) == 1


@pytest.mark.parametrize(("case", "people"), [
    ("family-email", 3), ("front-desk", 3), ("two-share-email", 2),
])
def test_strangers_sharing_a_value_are_never_merged(crafted, case, people):
    assert len(set(crafted[case])) == people, crafted[case]


def test_a_shared_switchboard_is_no_matching_input(matched, records, crafted):
    """Landlines are not a matching input: the shared switchboard is in the records, never in what Splink
    compares, and the two nameless colleagues it would glue stay two leads."""
    switchboards = {v for r in records if r["case"].startswith("switchboard") for v in r["landlines"]}
    assert len(switchboards) == 2  # standardised and kept on the records
    (found,) = query(matched, f"""
        select count(*) as n from matching.match_input m
        where list_has_any(coalesce(m.mobiles, []) || coalesce(m.emails, []) || [m.wechat, m.qq, m.first_mobile],
                           {sorted(switchboards)})""")
    assert found["n"] == 0
    assert len(set(crafted["switchboard"])) == 5
    assert len(set(crafted["switchboard-nameless"])) == 2, "a switchboard glued two colleagues"


def test_a_junk_number_is_nulled_before_matching(matched, records, crafted):
    junk = [r for r in records if r["case"] in ("junk-number", "junk-namesake")]
    assert len(junk) == 6 and all(r["mobile"] is None for r in junk)
    (with_mobile,) = query(matched, f"""select count(*) as n from matching.match_input
                                       where record_id in {tuple(r["record_id"] for r in junk)} and mobiles is not null""")
    assert with_mobile["n"] == 0
    assert len(set(crafted["junk-number"])) == 4
    assert len(set(crafted["junk-namesake"])) == 2, "a placeholder number merged two namesakes"


def test_no_blocking_rule_pairs_namesakes_who_share_nothing_else(matched, records, crafted):
    """Four 王伟 in one city (and twenty elsewhere), each with an own mobile and company: no blocking rule
    makes any two a candidate pair (every pair blocking generates is in matching.candidate_pairs, scored
    with no threshold), so a shared common name and city can never merge them."""
    namesakes = tuple(r["record_id"] for r in records if r["case"].startswith("common-name"))
    assert len(namesakes) == 24
    (pairs,) = query(matched, f"""select count(*) as n from matching.candidate_pairs
                                  where record_id_l in {namesakes} and record_id_r in {namesakes}""")
    assert pairs["n"] == 0
    (everything,) = query(matched, "select count(*) as n from matching.candidate_pairs")
    assert everything["n"] > 0  # blocking did generate pairs elsewhere: the rows above were not just left out
    assert len(set(crafted["common-name"])) == 4


def _golden_of(matched, case: str) -> dict:
    """The golden lead built from the records of one case (备注)."""
    leads = query(matched, f"""
        select g.* from matching.golden_leads g
        where g.lead_id in (select m.lead_id from matching.lead_members m join marts.lead_records r using (record_id)
                            where json_extract_string(r.extra_attributes, '$.备注') = '{case}')""")
    assert len(leads) == 1, f"{case}: the records should be one lead"
    return leads[0]


def test_a_lead_takes_its_whole_place_from_one_record(matched):
    """Province, city, district and address are chosen together: the fuller place of the older record,
    not the newer record's province and city with the older one's district and street."""
    lead = _golden_of(matched, "place")
    place = (lead["province"], lead["city"], lead["district"], lead["address"])
    assert place == ("上海市", "上海市", "浦东新区", "上海市浦东新区世纪大道100号"), place


def test_recency_is_the_update_time_and_the_creation_time_only_breaks_ties(matched):
    from datetime import datetime

    place = _golden_of(matched, "place")
    assert place["updated_at"] == datetime(2026, 1, 10)  # the latest update
    assert place["created_at"] == datetime(2023, 2, 1)  # the earliest creation
    assert _golden_of(matched, "recency")["job_title"] == "采购经理"
    assert _golden_of(matched, "updated-beats-created")["job_title"] == "销售经理"
    fallback = _golden_of(matched, "created-fallback")
    assert fallback["job_title"] == "销售经理" and fallback["updated_at"] is None


def test_a_long_chain_is_split_by_the_guard_and_the_cuts_go_to_review(tmp_path):
    """Twenty records of one name linked each to the next by a mobile or an e-mail: a chain, not a person.

    Set among 3,000 ordinary leads, so that term frequencies are those of real data."""
    chain = []
    for i in range(20):
        chain.append({"name": "陈晨", "mobile": f"1361111{(i // 2):04d}", "email": f"chain{(i + 1) // 2}@qq.com",
                      "company": "链条科技有限公司", "city": "南京市"})
    background = generate_leads(3000, seed=11).drop("person_id")
    frame = pl.concat([background, pl.DataFrame(chain)], how="diagonal")
    source = tmp_path / "chain.parquet"
    frame.write_parquet(source)
    output, stats, _ = dedupe_file(source, tmp_path / "out.csv")
    max_size = load_match_config().max_cluster_size
    chain_leads = output.filter(pl.col("source_row") > 3000)
    assert stats.largest_cluster_before_guard == 20
    assert stats.clusters_split_by_guard == 1
    assert stats.largest_lead <= max_size
    assert chain_leads.group_by("lead_id").len()["len"].max() <= max_size
    assert chain_leads["lead_id"].n_unique() >= 2
    assert stats.pairs_to_review >= 1


def test_constrained_clustering_keeps_strongest_links_and_honours_different():
    # 0-1-2-3 chain; 0 and 3 must stay apart; the weakest link is cut
    labels = cluster(4, np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([20.0, 5.0, 18.0]), [(0, 3)], max_size=10)
    assert labels.labels[0] == labels.labels[1] and labels.labels[2] == labels.labels[3]
    assert labels.labels[0] != labels.labels[3]
    assert labels.cut_edges == [1]
    # a human "same" (infinite weight) joins even beyond the size limit
    forced = cluster(3, np.array([0, 1]), np.array([1, 2]), np.array([np.inf, np.inf]), [], max_size=2)
    assert len(set(forced.labels.tolist())) == 1


def test_two_clearly_different_names_never_share_a_lead_through_a_nameless_record():
    # 0 张伟 - 1 (no name) - 2 欧阳震华: both links are sure, but 0 and 2 name different people; the
    # weaker link is cut (and goes to review), unless a person said the two are the same
    edges = (np.array([0, 1]), np.array([1, 2]), np.array([30.0, 25.0]))
    names_differ = (np.array([0]), np.array([2]))
    split = cluster(3, *edges, [], max_size=10, names_differ=names_differ)
    assert split.labels[0] == split.labels[1] != split.labels[2]
    assert split.cut_edges == [1]
    decided = cluster(3, np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([30.0, 25.0, np.inf]), [], max_size=10,
                      names_differ=names_differ)
    assert len(set(decided.labels.tolist())) == 1


def test_output_has_one_row_per_input_row_with_explanations(tmp_path):
    rows = [["张伟", "13812345601", None, None, None, "字节跳动", "北京", "a"],
            ["张伟", "138 1234 5601", None, None, None, "字节跳动", "北京", "a"],
            ["无", "-", None, None, None, None, None, "a"]]
    source = tmp_path / "in.csv"
    pl.DataFrame([dict(zip(HEADERS, r)) for r in rows], schema={h: pl.Utf8 for h in HEADERS}).write_csv(source)
    output, _, _ = dedupe_file(source, tmp_path / "out.xlsx")
    assert output["source_row"].to_list() == [2, 3, 4]  # as Excel numbers the rows: the header is row 1
    assert output["lead_id"][0] == output["lead_id"][1] and output["lead_id"][2] is None
    assert "同手机号" in output["match_explanation"][1]
    assert output["match_explanation"][2].startswith("未收录")
    written = pl.read_excel(tmp_path / "out.xlsx")
    assert written.height == 3 and "lead_id" in written.columns


def test_matching_config_is_validated_with_clear_errors(tmp_path):
    bad = tmp_path / "matching.yaml"
    bad.write_text("thresholds: {auto_merge: 0.8, review: 0.9}\nchaining_guard: {shared_value_min_people: 3, max_cluster_size: 12}\n")
    with pytest.raises(ConfigError, match="thresholds.review .0.9. must be below thresholds.auto_merge"):
        load_match_config(bad)
    bad.write_text("thresholds: {auto_merge: 0.99, review: 0.8}\nchaining_guard: {shared_value_min_people: 3}\n")
    with pytest.raises(ConfigError, match="chaining_guard.max_cluster_size: missing"):
        load_match_config(bad)


def test_training_estimates_a_sensible_model_and_records_its_size(tmp_path, monkeypatch):
    """A real training run on 20,000 generated records, written to a temporary path (not the committed model)."""
    import json

    import duckdb

    from pipelines.lib.matching.matching import prepare_match_input, train_model
    from tests.conftest import use_home

    home = use_home(tmp_path, monkeypatch)
    generate_leads(20_000, seed=5).drop("person_id").write_parquet(home.warehouse_dir / "leads.parquet")
    standardise_library()
    model_path = tmp_path / "model.json"
    with duckdb.connect(str(home.duckdb_path)) as conn:
        prepare_match_input(conn, "marts.lead_records", load_match_config())
        train_model(conn, model_path)
        conn.execute("create or replace table matching.match_input as select * from matching.match_input limit 500")
        with pytest.raises(ValueError, match="500 records are too few to train"):
            train_model(conn, tmp_path / "small.json")
    assert not (tmp_path / "small.json").exists()
    model = json.loads(model_path.read_text(encoding="utf-8"))
    levels = {(c["output_column_name"], lvl["label_for_charts"]): lvl
              for c in model["comparisons"] for lvl in c["comparison_levels"]}
    shared_mobile = levels[("mobiles", "mobile shared")]
    assert shared_mobile["m_probability"] > 0.8 and shared_mobile["u_probability"] < 0.001
    assert levels[("name", "name different")]["m_probability"] < 0.1
    assert all(lvl.get("m_probability", 1) >= 0.0009 for lvl in levels.values() if not lvl.get("is_null_level"))
    assert 19_900 < model["leadfactory_training_records"] <= 20_000
    assert 0 < model["probability_two_random_records_match"] < 0.01


def test_a_salesperson_mobile_on_many_customers_glues_nobody(tmp_path):
    """One number typed for 30 different customers (some nameless, some surname-only) in 3,000 leads."""
    rows = [{"name": name, "mobile": "13988886666", "city": "广州市", "company": f"客户{i}号有限公司"}
            for i, name in enumerate(["王总", "李总", None, "张伟", "刘洋", None, "陈静", "王总", "杨磊", "赵敏"] * 3)]
    background = generate_leads(3000, seed=12).drop("person_id")
    source = tmp_path / "leads.parquet"
    pl.concat([background, pl.DataFrame(rows)], how="diagonal").write_parquet(source)
    output, stats, _ = dedupe_file(source, tmp_path / "out.csv")
    placeholder = output.filter(pl.col("source_row") > 3000)
    assert placeholder["lead_id"].n_unique() >= 25  # at most a same-name pair or two may share a lead
    assert output.group_by("lead_id").len()["len"].max() <= load_match_config().max_cluster_size

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


def _dedupe(tmp_path: Path, rows: list[list]) -> dict[str, list[str]]:
    """Run `dedupe` on the rows; return {case label (备注): [lead ids in row order]}."""
    source = tmp_path / "in.csv"
    pl.DataFrame([dict(zip(HEADERS, r)) for r in rows], schema={h: pl.Utf8 for h in HEADERS}).write_csv(source)
    output, _, _ = dedupe_file(source, tmp_path / "out.csv")
    labels = [r[-1] for r in rows]
    by_case: dict[str, list[str]] = {}
    for label, lead in zip(labels, output.sort("source_row")["lead_id"].to_list()):
        by_case.setdefault(label, []).append(lead)
    return by_case


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    rows = [
        # the same person in every mobile format, a homophone and an honorific: one lead
        ["张伟", "13812345601", None, None, None, "北京字节跳动科技有限公司", "北京", "same-person"],
        ["张 伟", "+86 138-1234-5601", None, "zw1@qq.com", None, "字节跳动(北京)有限公司", None, "same-person"],
        ["章伟", "１３８１２３４５６０１", None, "zw1@qq.com", None, None, "北京", "same-person"],
        ["张总", "13812345601.0", None, None, None, "字节跳动", None, "same-person"],
        # five colleagues sharing the company switchboard: five leads
        *[[name, f"1390000{i:04d}", "0755-86001234", None, None, "深圳恒泰科技有限公司", "深圳", "switchboard"]
          for i, name in enumerate(["李娜", "王芳", "刘洋", "陈静", "杨磊"])],
        # a junk number typed for four strangers: four leads
        *[[name, "13800138000", None, None, None, None, "上海", "junk-number"]
          for name in ["赵敏", "孙丽", "周杰", "吴涛"]],
        # one family e-mail used by three people: three leads
        *[[name, None, None, "family_home@163.com", None, None, "杭州", "family-email"]
          for name in ["郑强", "郑红", "郑军"]],
        # one front-desk mobile shared by three people at a company: three leads
        *[[name, "13711112222", None, None, None, "瑞达贸易有限公司", "广州", "front-desk"]
          for name in ["黄艳", "何勇", "高明"]],
        # two people sharing only an e-mail, names different: not merged (review)
        ["林超", None, None, "lin_family@126.com", None, None, "成都", "two-share-email"],
        ["罗霞", None, None, "lin_family@126.com", None, None, "成都", "two-share-email"],
        # four different people with a very common name in one city: four leads
        *[["王伟", f"1350000{i:04d}", None, None, None, company, "武汉", "common-name"]
          for i, company in enumerate(["甲", "乙", "丙", "丁"])],
    ]
    return _dedupe(tmp_path_factory.mktemp("crafted"), rows)


def test_true_duplicates_in_every_format_become_one_lead(crafted):
    assert len(set(crafted["same-person"])) == 1


@pytest.mark.parametrize(("case", "people"), [
    ("switchboard", 5), ("junk-number", 4), ("family-email", 3), ("front-desk", 3), ("two-share-email", 2),
    ("common-name", 4),
])
def test_strangers_sharing_a_value_are_never_merged(crafted, case, people):
    assert len(set(crafted[case])) == people, crafted[case]


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

"""The sample generator: repeatable, with known duplicate groups and the noise real files carry."""

from __future__ import annotations

import polars as pl

from pipelines.lib.sources.sample_data import generate_leads, write_sample_files


def test_same_seed_same_leads_and_known_duplicates():
    a = generate_leads(3000, seed=1)
    assert a.equals(generate_leads(3000, seed=1))
    assert not a.equals(generate_leads(3000, seed=2))
    sizes = a.group_by("person_id").len()["len"]
    assert a.height == 3000
    assert 1.4 < a.height / sizes.len() < 2.1  # about 1.76 records per person
    assert sizes.max() <= 5 and (sizes > 1).sum() > 500


def test_the_noise_is_there():
    leads = generate_leads(5000, seed=3)
    mobile = leads["mobile"].drop_nulls()
    assert mobile.str.contains("０").any()  # full-width digits
    assert mobile.str.ends_with(".0").any()  # Excel floats
    assert mobile.str.starts_with("+86").any() and mobile.str.starts_with("0086").any()
    assert (leads["mobile"] == "13800138000").any()  # junk placeholder
    names = leads.group_by("name").agg(pl.col("person_id").n_unique().alias("people"))
    assert names["people"].max() > 3  # one common name, several different people
    switchboards = leads.drop_nulls("landline").group_by("landline").agg(pl.col("person_id").n_unique().alias("people"))
    assert switchboards["people"].max() > 1  # a company switchboard shared by colleagues


def test_written_files_and_truth_line_up(tmp_path):
    leads = generate_leads(1000, seed=5)
    written = write_sample_files(leads, tmp_path, excel_rows=100)
    assert written["inbox/展会线索.xlsx"] == 100
    assert sum(v for k, v in written.items() if k != "truth.csv") == written["truth.csv"] == 1000
    truth = pl.read_csv(tmp_path / "truth.csv")
    assert truth.select(pl.struct("source_file", "source_row").is_unique().all()).item()
    gbk = (tmp_path / "warehouse" / "legacy_leads_gbk.csv").read_bytes()
    assert gbk.decode("gb18030").startswith("姓名,手机号")

"""The sample generator: repeatable, with known duplicate groups and the noise real files carry."""

from __future__ import annotations

import polars as pl

from pipelines.lib.sources.sample_data import TRUTH_COLUMNS, generate_leads, write_sample_files


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


def _digits(mobile: pl.Expr) -> pl.Expr:
    """The mobile's last 11 digits, whatever its form (full-width, +86, .0): enough to compare two records."""
    folded = mobile.str.replace(r"\.0$", "").str.replace_many(list("０１２３４５６７８９"), list("0123456789"))
    return folded.str.replace_all(r"\D", "").str.slice(-11)


def test_life_changes_at_the_requested_rate():
    for rate in (0.0, 0.3, 0.6):
        leads = generate_leads(20_000, seed=9, life_changes=rate, explain=True)
        people = leads.group_by("person_id").agg(pl.len().alias("records"), pl.col("life_change").first(),
                                                 pl.col("after_change").any().alias("changed"))
        several = people.filter(pl.col("records") > 1)
        share = several["life_change"].is_not_null().mean()
        assert abs(share - rate) < 0.03, (rate, share)
        assert people.filter(pl.col("records") == 1)["life_change"].null_count() == people.filter(pl.col("records") == 1).height
        # every changed person has records on both sides of the change
        changed = several.filter(pl.col("life_change").is_not_null())
        assert changed["changed"].all()
        if rate:
            jobs = (changed["life_change"] == "job").mean()
            assert 0.55 < jobs < 0.78, jobs  # about two job changes for one new mobile
    assert "life_change" not in generate_leads(100, seed=9).columns  # truth columns only when asked for


def test_life_changes_change_only_the_changed_people():
    unchanged = generate_leads(5000, seed=4, life_changes=0.0)
    changed = generate_leads(5000, seed=4, life_changes=0.3, explain=True)
    keep = changed.select(pl.col("life_change").is_null()).to_series()
    assert changed.drop(TRUTH_COLUMNS).filter(keep).equals(unchanged.filter(keep))
    assert not changed.drop(TRUTH_COLUMNS).filter(~keep).equals(unchanged.filter(~keep))


def test_a_job_change_keeps_name_and_mobile_and_a_mobile_change_keeps_email_and_company():
    leads = generate_leads(20_000, seed=10, life_changes=0.3, explain=True).with_columns(
        _digits(pl.col("mobile")).alias("digits"), pl.col("email").str.to_lowercase().alias("mail"))
    pairs = leads.join(leads, on="person_id", suffix="_b").filter(
        pl.col("after_change").not_() & pl.col("after_change_b") & pl.col("life_change").is_not_null())
    job, mobile = pairs.filter(pl.col("life_change") == "job"), pairs.filter(pl.col("life_change") == "mobile")

    def share(frame: pl.DataFrame, column: str, same: bool = True) -> float:
        both = frame.filter(pl.col(column).is_not_null() & pl.col(f"{column}_b").is_not_null())
        return (both[column] == both[f"{column}_b"]).mean() if same else (both[column] != both[f"{column}_b"]).mean()

    # a job change: another company (never the same name of a company), usually another title, often
    # another city; the mobile, WeChat and (mostly) the name stay
    assert share(job, "company", same=False) == 1.0
    assert share(job, "job_title", same=False) > 0.6
    assert share(job, "city", same=False) > 0.2  # often: about a third of them move
    assert share(job, "digits") > 0.85
    assert share(job, "wechat") == 1.0
    assert share(job, "name") > 0.6  # as written: 王总, 张 伟 and 张伟先生 are the same name
    # a work e-mail moves to the new company's domain; a private one stays
    work = job.filter(pl.col("mail").is_not_null() & pl.col("mail_b").is_not_null()
                      & ~pl.col("mail").str.contains("qq.com|163.com|126.com|gmail.com|sina.com|outlook.com"))
    assert work.height > 20 and (work["mail"] != work["mail_b"]).mean() > 0.9
    # a mobile change: a new number; the e-mail, WeChat and company stay
    assert share(mobile, "digits", same=False) > 0.8
    assert share(mobile, "mail") > 0.9  # as written: a full-width ＠ or test@test.com now and then
    assert share(mobile, "wechat") == 1.0
    # the records after the change are the newer ones
    assert (pairs["updated_at"] < pairs["updated_at_b"]).all()
    # and the person is usually recognisable by what they kept, on both sides
    assert job.select(pl.col("digits").is_not_null() & pl.col("digits_b").is_not_null()).to_series().mean() > 0.9


def test_ids_belong_to_one_person():
    """Two namesakes never draw the same WeChat id, e-mail address or mobile; sharing is modelled on purpose
    (family e-mails, a salesperson's mobile), so the truth never punishes trusting an id."""
    leads = generate_leads(20_000, seed=6, life_changes=0.3)
    for column in ("wechat", "qq"):
        holders = leads.drop_nulls(column).group_by(column).agg(pl.col("person_id").n_unique().alias("people"))
        assert holders["people"].max() == 1, column

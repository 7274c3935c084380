"""Personal data is masked in logs; pinyin keys are computed once per distinct name."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.lib.standardise import pinyin
from pipelines.lib.quality.masking import mask_contact, mask_email, mask_phone


@pytest.mark.parametrize(
    ("value", "masked"),
    [("+8613800138001", "138****8001"), ("13800138001", "138****8001"), ("0755-88886666", "075*-****6666"),
     ("+862161234567;ext=801", "21******67"), ("+85291234567", "+852****4567"), ("1234", "****")],
)
def test_mask_phone_hides_the_middle(value, masked):
    assert mask_phone(value) == masked


def test_the_sql_masking_is_the_python_masking():
    """Reports and the CRM's service role mask in SQL: the same rule as the logs."""
    import duckdb

    from pipelines.lib.quality.masking import mask_email_sql, mask_phone_sql

    phones = ["+8613800138001", "+862161234567;ext=801", "+85291234567", "+12025550123", "+8695511", None]
    emails = ["zhang.wei@qq.com", "a@b.cn", "bad", None]
    with duckdb.connect() as conn:
        got_phones = [conn.execute(f"select {mask_phone_sql('v')} from (select ?::varchar as v)", [p]).fetchone()[0] for p in phones]
        got_emails = [conn.execute(f"select {mask_email_sql('v')} from (select ?::varchar as v)", [e]).fetchone()[0] for e in emails]
    assert got_phones == [mask_phone(p) for p in phones]
    assert got_emails == [mask_email(e) for e in emails]


def test_mask_email_keeps_only_first_letter_and_domain():
    assert mask_email("zhang.wei@qq.com") == "z***@qq.com"
    assert mask_contact("wechat", "zhangwei_88") == "zh***"
    assert mask_contact("name", "张伟") == "张伟"


def test_pinyin_keys_match_homophones_and_ignore_spacing():
    assert pinyin.pinyin_key("张伟") == pinyin.pinyin_key("章伟") == pinyin.pinyin_key("Zhang Wei") == "zhangwei"
    assert pinyin.pinyin_key("王芳") != pinyin.pinyin_key("汪洋")


def test_pinyin_arrow_batch_computes_each_distinct_name_once():
    pinyin.pinyin_key.cache_clear()
    names = pa.array(["刘洋", "刘洋", None, "赵敏", "刘洋"] * 1000)
    from pipelines.lib.standardise.dbt_udfs import PER_VALUE_FUNCTIONS, per_distinct_value

    assert PER_VALUE_FUNCTIONS["pinyin_key"] is pinyin.pinyin_key
    keys = per_distinct_value(pinyin.pinyin_key)(names).to_pylist()
    assert keys[:5] == ["liuyang", "liuyang", None, "zhaomin", "liuyang"]
    info = pinyin.pinyin_key.cache_info()
    assert info.misses == 2 and info.hits == 0

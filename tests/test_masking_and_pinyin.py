"""Personal data is masked in logs; pinyin keys are computed once per distinct name."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.lib.standardise import pinyin
from pipelines.lib.quality.masking import mask_contact, mask_email, mask_phone


@pytest.mark.parametrize(
    ("value", "masked"),
    [("+8613800138001", "+86138******01"), ("13800138001", "138******01"), ("0755-88886666", "075*-******66"), ("1234", "****")],
)
def test_mask_phone_hides_the_middle(value, masked):
    assert mask_phone(value) == masked


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

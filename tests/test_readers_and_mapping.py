"""Reading lead files (encodings, Excel cells, bad files) and mapping their headers."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pipelines.lib.sources.field_mapping import ConfigError, load_field_mapping, normalise_header
from pipelines.lib.identity.ingest import to_canonical
from pipelines.lib.sources.readers import LeadFileError, read_lead_file

CSV_TEXT = "姓名,手机,公司\n张伟,13800138001,北京字节跳动科技有限公司\n李娜,15912345678,华为技术有限公司\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_any_common_chinese_encoding_reads_the_same(tmp_path: Path, encoding: str):
    path = tmp_path / f"leads_{encoding}.csv"
    path.write_bytes(CSV_TEXT.encode(encoding))
    (sheet,) = read_lead_file(path)
    assert sheet.frame.columns == ["_source_row", "姓名", "手机", "公司"]
    assert sheet.frame.row(0) == (2, "张伟", "13800138001", "北京字节跳动科技有限公司")


def test_excel_keeps_numbers_as_typed_digits_and_leading_zeros(tmp_path: Path):
    path = tmp_path / "drop.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "手机", "邮编", "座机"])
    ws.append(["张伟", 13800138001, "010020", 75512345678])
    ws.append(["李娜", 13912345678.0, "518000", None])
    second = wb.create_sheet("补充")
    second.append(["name", "mobile"])
    second.append(["王芳", 15000000001])
    wb.save(path)
    first, extra = read_lead_file(path, "inbox/drop.xlsx")
    assert first.frame["手机"].to_list() == ["13800138001", "13912345678"]
    assert first.frame["邮编"].to_list() == ["010020", "518000"]
    assert first.frame["座机"].to_list() == ["75512345678", None]
    assert extra.label == "inbox/drop.xlsx#补充"
    assert extra.frame["mobile"].to_list() == ["15000000001"]


def test_binary_garbage_is_refused_naming_the_file(tmp_path: Path):
    path = tmp_path / "corrupt.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(LeadFileError, match="corrupt.xlsx"):
        read_lead_file(path)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("姓名", "name"), ("联系人", "name"), ("Name", "name"), ("客户姓名", "name"),
        ("手机", "mobile"), ("手机号", "mobile"), ("电话", "mobile"), ("Mobile Phone", "mobile"),
        ("手机(必填)", "mobile"), ("手机号码*", "mobile"), ("ＭＯＢＩＬＥ", "mobile"),
        ("座机", "landline"), ("公司电话", "landline"),
        ("邮箱", "email"), ("E-mail", "email"), ("微信", "wechat"), ("WeChat ID", "wechat"), ("QQ号", "qq"),
        ("公司", "company"), ("单位", "company"), ("Company_Name", "company"),
        ("职务", "job_title"), ("职位", "job_title"), ("title", "job_title"),
        ("地址", "address"), ("省份", "province"), ("城市", "city"), ("区县", "district"),
        ("来源", "source"), ("负责人", "owner"), ("更新时间", "updated_at"), ("修改时间", "updated_at"),
        ("Last Modified", "updated_at"),
        # a creation or registration time says nothing about when the record was updated
        ("创建时间", "created_at"), ("登记时间", "created_at"), ("录入时间", "created_at"), ("created at", "created_at"),
        ("Create Time", "created_at"), ("日期", "created_at"),
        ("客户等级", None), ("备注", None),
    ],
)
def test_header_synonyms(header: str, field: str | None):
    assert load_field_mapping().canonical_for(header) == field


def test_unmapped_columns_become_extra_attributes_and_phone_columns_combine():
    frame = pl.DataFrame({"姓名": ["张伟"], "手机": ["13800138001"], "电话": ["0755-1234567"], "备注": ["老客户"],
                          "公司": ["甲"], "单位": ["乙"]})
    out = to_canonical(frame, load_field_mapping())
    assert out["mobile"].to_list() == ["13800138001;0755-1234567"]
    assert out["company"].to_list() == ["甲"]  # single-valued: the first wins, the second is kept as an extra
    assert out["extra_attributes"].to_list() == ['{"备注":"老客户","单位":"乙"}']


def test_normalise_header_folds_width_case_and_notes():
    assert normalise_header(" Ｍｏｂｉｌｅ_Phone (必填) ") == "mobilephone"


def test_config_with_a_header_mapped_twice_is_refused_naming_file_and_entry(tmp_path: Path):
    bad = tmp_path / "synonyms.yaml"
    bad.write_text("fields:\n  name: [姓名]\n  company: [公司, 姓名]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"synonyms.yaml: fields.company: header '姓名' is already mapped to 'name'"):
        load_field_mapping(bad)


def test_config_with_an_unknown_field_is_refused(tmp_path: Path):
    bad = tmp_path / "synonyms.yaml"
    bad.write_text("fields:\n  shoe_size: [鞋码]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="shoe_size: not a canonical lead field"):
        load_field_mapping(bad)

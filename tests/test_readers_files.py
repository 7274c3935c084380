"""Reading the lead files specialists really have: real files built here, one behaviour per test."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import olefile
import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
import xlwt
from msoffcrypto.format.ooxml import OOXMLFile

from pipelines.lib.sources import readers
from pipelines.lib.sources.field_mapping import load_field_mapping
from pipelines.lib.sources.readers import (
    ROW_COLUMN,
    SUPPORTED_SUFFIXES,
    LeadFileError,
    LineNote,
    Sheet,
    is_lead_file_candidate,
    read_lead_file,
)

LEADS = [["张伟", "13800138001", "北京字节跳动科技有限公司"], ["李娜", "15912345678", "华为技术有限公司"]]
CSV_TEXT = "姓名,手机,公司\n" + "".join(",".join(r) + "\n" for r in LEADS)


def only(sheets: list[Sheet]) -> Sheet:
    assert len(sheets) == 1, [s.label for s in sheets]
    return sheets[0]


def data(sheet: Sheet) -> list[tuple]:
    return sheet.frame.drop(ROW_COLUMN).rows()


def rows(sheet: Sheet) -> list[int]:
    return sheet.frame[ROW_COLUMN].to_list()


def failure(path: Path) -> LeadFileError:
    with pytest.raises(LeadFileError) as caught:
        read_lead_file(path)
    exc = caught.value
    assert str(exc) == f"{exc.file}: {exc.reason_zh} ({exc.reason_en})"
    assert exc.file == path.name
    for raw in ("calamine", "Zip error", "EOCD", "Traceback", "Error"):
        assert raw not in str(exc)
    return exc


def xlsx_bytes(*sheet_rows: list[list], names: tuple[str, ...] = ()) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for index, content in enumerate(sheet_rows):
        ws = wb.create_sheet(names[index] if index < len(names) else f"Sheet{index + 1}")
        for row in content:
            ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ 1, 12: header rows, row numbers


def test_header_found_below_title_rows_and_rows_numbered_as_excel_shows(tmp_path: Path):
    path = tmp_path / "展会.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "2026年春季展会线索"
    ws["A3"] = "填写说明：手机必填，公司写全称"
    for column, header in enumerate(["姓名", "手机", "公司", "日期"], start=1):
        ws.cell(4, column, header)
    ws.append(["张伟", 13800138001, "字节跳动", "3月5日"])  # row 5
    ws.append([])  # row 6: blank (a blank row in between is skipped, numbering carries on)
    ws.cell(7, 1, "李娜")
    ws.cell(7, 2, "15912345678")
    wb.save(path)
    sheet = only(read_lead_file(path))
    assert sheet.header_row == 4
    assert sheet.frame.columns == [ROW_COLUMN, "姓名", "手机", "公司", "日期"]
    assert sheet.frame.schema[ROW_COLUMN] == pl.Int64
    assert all(sheet.frame.schema[c] == pl.Utf8 for c in sheet.frame.columns[1:])
    assert rows(sheet) == [5, 7]
    assert data(sheet) == [("张伟", "13800138001", "字节跳动", "3月5日"), ("李娜", "15912345678", None, None)]
    assert sheet.rejected == () and sheet.skipped == ()


def test_leading_blank_rows_and_columns_keep_excel_row_numbers(tmp_path: Path):
    # Calamine ranges start at the first non-empty cell; the reader must still count from row 1.
    path = tmp_path / "offset.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet()
    ws.write_row(5, 2, ["姓名", "手机", "公司"])  # C6:E6
    ws.write_row(6, 2, ["张伟", "13800138001"])  # row 7
    ws.write_row(9, 2, ["李娜", "15912345678"])  # row 10
    ws.merge_range("E7:E10", "字节跳动")  # merged cells are addressed from column A, row 1
    wb.close()
    sheet = only(read_lead_file(path))
    assert sheet.header_row == 6
    assert rows(sheet) == [7, 10]
    assert sheet.frame.columns == [ROW_COLUMN, "姓名", "手机", "公司"]
    assert sheet.frame["公司"].to_list() == ["字节跳动", "字节跳动"]


def test_csv_row_numbers_count_lines_above_header_blank_lines_and_records_not_lines(tmp_path: Path):
    path = tmp_path / "export.csv"
    text = (
        "线索导出 2026-03-05\n"  # row 1
        "\n"  # row 2
        "姓名,手机,地址\n"  # row 3: header
        '张伟,13800138001,"北京市\n海淀区"\n'  # row 4 (one record over two lines)
        "\n"  # row 5
        "李娜,15912345678,深圳\n"  # row 6
    )
    path.write_text(text, encoding="utf-8")
    sheet = only(read_lead_file(path))
    assert sheet.header_row == 3
    assert rows(sheet) == [4, 6]
    assert data(sheet)[0] == ("张伟", "13800138001", "北京市\n海淀区")


def test_header_detection_needs_a_key_lead_field(tmp_path: Path):
    # "日期 / 来源 / 负责人" map to fields but none of them identifies a lead: not a header.
    path = tmp_path / "report.xlsx"
    path.write_bytes(xlsx_bytes([["日期", "来源", "负责人"], ["2026-03-05", "展会", "王芳"]]))
    assert failure(path).kind == "no_lead_columns"


# ------------------------------------------------------------------------------ 2: several sheets


def test_every_lead_sheet_is_read_and_other_sheets_are_not(tmp_path: Path):
    path = tmp_path / "drop.xlsx"
    wb = openpyxl.Workbook()
    intro = wb.active
    intro.title = "填写说明"
    intro.append(["请在后面的工作表填写线索"])
    intro.append(["手机号请填 11 位"])
    east = wb.create_sheet("华东")
    east.append(["姓名", "手机"])
    east.append(["张伟", 13800138001])
    lists = wb.create_sheet("下拉选项")
    lists.append(["姓名", "手机"])  # a hidden helper sheet is not read even with a lead header
    lists.append(["销售甲", 13000000000])
    lists.sheet_state = "hidden"
    south = wb.create_sheet("华南")
    south.append(["联系人", "电话"])
    south.append(["李娜", "15912345678"])
    wb.save(path)
    first, second = read_lead_file(path, "inbox/drop.xlsx")
    assert first.label == "inbox/drop.xlsx"
    assert data(first) == [("张伟", "13800138001")]
    assert second.label == "inbox/drop.xlsx#华南"
    assert data(second) == [("李娜", "15912345678")]


def test_workbook_without_a_lead_sheet_is_refused(tmp_path: Path):
    path = tmp_path / "instructions.xlsx"
    path.write_bytes(xlsx_bytes([["填写说明"], ["请联系市场部"]], [["产品", "数量"], ["A", 3]]))
    exc = failure(path)
    assert exc.kind == "no_lead_columns"
    assert exc.reason_zh == "找不到姓名、手机等线索列"
    assert exc.reason_en == "no lead columns such as name or mobile found"


def test_csv_and_parquet_without_lead_columns_are_refused(tmp_path: Path):
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text("订单号,金额\nA001,30\n", encoding="utf-8")
    assert failure(csv_path).kind == "no_lead_columns"
    parquet_path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"order_id": ["A001"], "amount": [30]}), parquet_path)
    assert failure(parquet_path).kind == "no_lead_columns"


# ------------------------------------------------------------------------------ 3, 4, 5: Excel cells


def test_merged_company_cell_is_filled_into_every_row_of_the_range(tmp_path: Path):
    path = tmp_path / "merged.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "展会线索"
    ws.merge_cells("A1:C1")  # merged title: not a header, not data
    ws.append([])
    ws.append([])
    ws.append(["姓名", "手机", "公司"])  # row 4
    for name, mobile in [("张伟", "13800138001"), ("李娜", "15912345678"), ("王芳", "13700000000"), ("刘洋", "13600000000")]:
        ws.append([name, mobile])
    ws["C5"] = "字节跳动"
    ws.merge_cells("C5:C8")
    ws.append(["赵磊", "13500000000", "华为"])  # row 9, outside the merge
    wb.save(path)
    sheet = only(read_lead_file(path))
    assert rows(sheet) == [5, 6, 7, 8, 9]
    assert sheet.frame["公司"].to_list() == ["字节跳动"] * 4 + ["华为"]


def test_merged_cells_in_xls_are_filled_too(tmp_path: Path):
    path = tmp_path / "merged.xls"
    wb = xlwt.Workbook()
    ws = wb.add_sheet("线索")
    for column, header in enumerate(["姓名", "手机", "公司"]):
        ws.write(0, column, header)
    for row, (name, mobile) in enumerate([("张伟", "13800138001"), ("李娜", "15912345678")], start=1):
        ws.write(row, 0, name)
        ws.write(row, 1, mobile)
    ws.write_merge(1, 2, 2, 2, "字节跳动")
    wb.save(str(path))
    sheet = only(read_lead_file(path))
    assert sheet.frame["公司"].to_list() == ["字节跳动", "字节跳动"]


def test_formula_cells_give_their_cached_values(tmp_path: Path):
    path = tmp_path / "formulas.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["姓名", "手机", "公司"])
    ws.write_row(1, 0, ["张伟", 13800138001, "字节跳动"])
    ws.write_formula(2, 0, '="李"&"娜"', None, "李娜")
    ws.write_formula(2, 1, "=B2+1", None, 13800138002)
    ws.write_formula(2, 2, '=UPPER("abc")', None, "ABC")
    wb.close()
    sheet = only(read_lead_file(path))
    assert data(sheet) == [("张伟", "13800138001", "字节跳动"), ("李娜", "13800138002", "ABC")]


def test_numbers_keep_their_digits_and_dates_become_iso_text(tmp_path: Path):
    path = tmp_path / "typed.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "手机", "邮编", "登记时间", "金额"])
    ws.append(["张伟", 13800138001, "010020", dt.date(2026, 3, 5), 1.5])
    ws.append(["李娜", 13912345678.0, "518000", dt.datetime(2026, 3, 5, 14, 30), 100])
    ws.append(["王芳", "0755-12345678", None, 45356, -3])  # a plain number in the date column stays a number
    wb.save(path)
    sheet = only(read_lead_file(path))
    assert data(sheet) == [
        ("张伟", "13800138001", "010020", "2026-03-05", "1.5"),
        ("李娜", "13912345678", "518000", "2026-03-05 14:30:00", "100"),
        ("王芳", "0755-12345678", None, "45356", "-3"),
    ]


def test_xls_dates_and_numbers(tmp_path: Path):
    path = tmp_path / "old.xls"
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    stamp_style = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
    for column, header in enumerate(["姓名", "手机", "日期"]):
        ws.write(2, column, header)  # rows 1-2 are blank
    ws.write(3, 0, "张伟")
    ws.write(3, 1, 13800138001)
    ws.write(3, 2, dt.date(2026, 3, 5), date_style)
    ws.write(4, 0, "李娜")
    ws.write(4, 1, "015912345678")
    ws.write(4, 2, dt.datetime(2026, 3, 5, 14, 30), stamp_style)
    wb.save(str(path))
    sheet = only(read_lead_file(path))
    assert data(sheet) == [("张伟", "13800138001", "2026-03-05"), ("李娜", "015912345678", "2026-03-05 14:30:00")]
    assert sheet.header_row == 3 and rows(sheet) == [4, 5]


# ------------------------------------------------------------------------------ 6: file types and suffixes


@pytest.mark.parametrize("name", ["a.xlsx", "b.xlsm", "c.XLSX", "d.Xlsm"])
def test_openxml_workbooks_with_any_suffix_case(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(xlsx_bytes([["姓名", "手机"], *[[n, m] for n, m, _ in LEADS]]))
    assert data(only(read_lead_file(path))) == [("张伟", "13800138001"), ("李娜", "15912345678")]


@pytest.mark.parametrize("name", ["e.xls", "f.XLS"])
def test_xls_workbooks(tmp_path: Path, name: str):
    wb = xlwt.Workbook()
    ws = wb.add_sheet("线索")
    for r, row in enumerate([["姓名", "手机", "公司"], *LEADS]):
        for c, value in enumerate(row):
            ws.write(r, c, value)
    wb.save(str(tmp_path / name))
    sheet = only(read_lead_file(tmp_path / name))
    assert data(sheet) == [tuple(r) for r in LEADS]
    assert rows(sheet) == [2, 3]


def test_upper_case_csv_and_supported_suffixes(tmp_path: Path):
    path = tmp_path / "LEADS.CSV"
    path.write_text(CSV_TEXT, encoding="utf-8")
    assert data(only(read_lead_file(path))) == [tuple(r) for r in LEADS]
    assert SUPPORTED_SUFFIXES == {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet"}


def test_excel_workbook_saved_with_the_other_excel_suffix_is_still_read(tmp_path: Path):
    path = tmp_path / "really_xlsx.xls"
    path.write_bytes(xlsx_bytes([["姓名", "手机"], ["张伟", "13800138001"]]))
    assert data(only(read_lead_file(path))) == [("张伟", "13800138001")]


# ------------------------------------------------------------------------------ 7: text files


def _utf16_be_bom(text: str) -> bytes:
    return b"\xfe\xff" + text.encode("utf-16-be")


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda t: t.encode("utf-8"), "utf-8"),
        (lambda t: t.encode("utf-8-sig"), "utf-8-sig"),
        (lambda t: t.encode("gbk"), "gb18030"),
        (lambda t: t.encode("gb18030"), "gb18030"),
        (lambda t: t.encode("utf-16"), "utf-16"),  # LE with BOM
        (_utf16_be_bom, "utf-16"),
        (lambda t: t.encode("utf-16-le"), "utf-16-le"),  # no BOM: found from the NUL bytes
    ],
    ids=["utf8", "utf8-bom", "gbk", "gb18030", "utf16le-bom", "utf16be-bom", "utf16le-nobom"],
)
def test_csv_in_every_common_encoding(tmp_path: Path, encode, encoding: str):
    path = tmp_path / "leads.csv"
    path.write_bytes(encode(CSV_TEXT))
    sheet = only(read_lead_file(path))
    assert sheet.encoding == encoding
    assert sheet.frame.columns == [ROW_COLUMN, "姓名", "手机", "公司"]
    assert data(sheet) == [tuple(r) for r in LEADS]
    assert rows(sheet) == [2, 3]


@pytest.mark.parametrize(
    ("name", "separator"),
    [("comma.csv", ","), ("semicolon.csv", ";"), ("tab.txt", "\t"), ("tab.tsv", "\t"), ("semi.txt", ";")],
)
def test_separator_is_sniffed_from_the_header(tmp_path: Path, name: str, separator: str):
    # The address holds commas: with ";" or tab separators a comma split would be wrong.
    text = separator.join(["姓名", "手机", "地址"]) + "\n" + separator.join(["张伟", "13800138001", "北京,海淀"]) + "\n"
    if separator == ",":
        text = '姓名,手机,地址\n张伟,13800138001,"北京,海淀"\n'
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert data(only(read_lead_file(path))) == [("张伟", "13800138001", "北京,海淀")]


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r", "mixed"])
def test_any_line_endings_and_quoted_newlines(tmp_path: Path, newline: str):
    lines = ["姓名,手机,备注", '张伟,13800138001,"第一行\n第二行"', "李娜,15912345678,", "王芳,13700000000,好"]
    if newline == "mixed":
        text = lines[0] + "\r\n" + lines[1] + "\n" + lines[2] + "\r" + lines[3] + "\r\n"
    else:
        text = newline.join(lines) + newline
    path = tmp_path / "endings.csv"
    path.write_bytes(text.encode("utf-8"))
    sheet = only(read_lead_file(path))
    assert [r[0] for r in data(sheet)] == ["张伟", "李娜", "王芳"]
    assert data(sheet)[0][2] == "第一行\n第二行"
    assert rows(sheet) == [2, 3, 4]


# ------------------------------------------------------------------------------ 8: one bad row rejects that row only


def test_ragged_rows_are_rejected_one_by_one(tmp_path: Path):
    path = tmp_path / "ragged.csv"
    path.write_text(
        "姓名,手机,公司\n"
        "张伟,13800138001,字节跳动\n"  # row 2
        "李娜,15912345678,华为,多出来的一列\n"  # row 3: 4 fields
        "王芳,13700000000\n"  # row 4: 2 fields
        "刘洋,13600000000,腾讯,,\n",  # row 5: trailing empty fields are fine
        encoding="utf-8",
    )
    sheet = only(read_lead_file(path))
    assert rows(sheet) == [2, 5]
    assert sheet.rejected == (
        LineNote(3, "第 3 行字段数为 4，表头有 3 列 (row 3 has 4 fields where the header has 3)"),
        LineNote(4, "第 4 行字段数为 2，表头有 3 列 (row 4 has 2 fields where the header has 3)"),
    )


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_a_few_undecodable_bytes_reject_only_their_rows(tmp_path: Path, encoding: str):
    good = ["张伟,13800138001,北京字节跳动", "李娜,15912345678,华为技术", "王芳,13700000000,腾讯科技"] * 5
    body = [("姓名,手机,公司").encode(encoding)] + [line.encode(encoding) for line in good]
    body[3] = "赵磊,13500000000,".encode(encoding) + b"\xff\xfe\x80"  # row 4: broken bytes
    path = tmp_path / "broken_bytes.csv"
    path.write_bytes(b"\n".join(body) + b"\n")
    sheet = only(read_lead_file(path))
    assert sheet.encoding == ("utf-8" if encoding == "utf-8" else "gb18030")
    assert sheet.rejected == (LineNote(4, "第 4 行有无法识别的字符 (row 4 has bytes that are not valid text)"),)
    assert 4 not in rows(sheet) and len(rows(sheet)) == 14
    assert data(sheet)[0] == ("张伟", "13800138001", "北京字节跳动")


def test_utf8_file_with_a_stray_gbk_character_is_not_read_as_gbk_mojibake(tmp_path: Path):
    # These UTF-8 lines happen to be valid GB18030 as well; one GBK full-width space (A1 A1) pasted into
    # row 3 breaks UTF-8. Reading the whole file as GB18030 would turn every name into mojibake.
    lines = ["姓名,手机,公司", "张伟,13800138001,北京字节跳动", "王芳,13700000000,腾讯科技"] + ["刘洋,13600000000,字节跳动"] * 5
    body = [line.encode("utf-8") for line in lines]
    body[2] = "王芳".encode("utf-8") + b"\xa1\xa1" + ",13700000000,腾讯科技".encode("utf-8")
    raw = b"\r\n".join(body) + b"\r\n"
    raw.decode("gb18030")  # the trap: strict GB18030 succeeds
    path = tmp_path / "mixed.csv"
    path.write_bytes(raw)
    sheet = only(read_lead_file(path))
    assert sheet.encoding == "utf-8"
    assert [n.row for n in sheet.rejected] == [3]
    assert data(sheet)[0] == ("张伟", "13800138001", "北京字节跳动")


# ------------------------------------------------------------------------------ 9: Parquet


def test_parquet_with_typed_and_nested_columns(tmp_path: Path):
    path = tmp_path / "warehouse.parquet"
    table = pa.table(
        {
            "name": ["张伟", "李娜", None],
            "mobile": pa.array([["13800138001", "13900139000"], ["15912345678"], None], pa.list_(pa.string())),
            "qq": pa.array([12345678, None, None], pa.int64()),
            "score": pa.array([1.5, 13800138000.0, None], pa.float64()),
            "birthday": pa.array([dt.date(1990, 1, 2), None, None], pa.date32()),
            "updated_at": pa.array([dt.datetime(2026, 3, 5, 14, 30), None, None], pa.timestamp("us")),
            "vip": pa.array([True, False, None]),
            "address": pa.array(
                [{"city": "北京", "zip": "100000"}, None, None],
                pa.struct([("city", pa.string()), ("zip", pa.string())]),
            ),
            "contacts": pa.array(
                [[{"kind": "wechat", "value": "zw1"}], None, None],
                pa.list_(pa.struct([("kind", pa.string()), ("value", pa.string())])),
            ),
        }
    )
    pq.write_table(table, path)
    sheet = only(read_lead_file(path))
    assert sheet.header_row == 0
    assert rows(sheet) == [1, 2]  # the all-empty third record is dropped
    assert all(sheet.frame.schema[c] == pl.Utf8 for c in sheet.frame.columns[1:])
    first, second = sheet.frame.drop(ROW_COLUMN).to_dicts()
    assert first == {
        "name": "张伟",
        "mobile": "13800138001;13900139000",
        "qq": "12345678",
        "score": "1.5",
        "birthday": "1990-01-02",
        "updated_at": "2026-03-05 14:30:00",
        "vip": "true",
        "address": '{"city": "北京", "zip": "100000"}',
        "contacts": '[{"kind": "wechat", "value": "zw1"}]',
    }
    assert second["mobile"] == "15912345678" and second["score"] == "13800138000" and second["vip"] == "false"


# ------------------------------------------------------------------------------ 10: totals and notes


def test_totals_rows_and_notes_after_the_header_are_skipped(tmp_path: Path):
    path = tmp_path / "with_totals.xlsx"
    path.write_bytes(
        xlsx_bytes(
            [
                ["姓名", "手机", "公司", "金额"],
                ["注：手机号请填 11 位"],  # row 2
                ["张伟", "13800138001", "字节跳动", 10],  # row 3
                ["李娜", "15912345678", "华为", 20],  # row 4
                ["小计", None, None, 30],  # row 5
                [None, "合计：", None, 30],  # row 6: first non-empty cell
                ["Total:", None, None, 30],  # row 7
                ["备注 以上数据来自展会"],  # row 8
            ]
        )
    )
    sheet = only(read_lead_file(path))
    assert rows(sheet) == [3, 4]
    assert [n.row for n in sheet.skipped] == [2, 5, 6, 7, 8]
    assert sheet.skipped[0].reason == "第 2 行是说明文字，不是线索 (row 2 is a note, not a lead)"
    assert sheet.skipped[1].reason == "第 5 行是合计行，不是线索 (row 5 is a totals row, not a lead)"
    assert sheet.rejected == ()


def test_csv_totals_and_notes_are_skipped_even_when_they_do_not_fit_the_header(tmp_path: Path):
    path = tmp_path / "notes.csv"
    path.write_text(
        "姓名,手机,公司\n说明：以下为展会线索\n张伟,13800138001,字节跳动\n总计,1,\nNote: exported by CRM\n",
        encoding="utf-8",
    )
    sheet = only(read_lead_file(path))
    assert rows(sheet) == [3]
    assert [n.row for n in sheet.skipped] == [2, 4, 5]
    assert sheet.rejected == ()


# ------------------------------------------------------------------------------ 11: bad files


@pytest.mark.parametrize("name", ["empty.csv", "empty.xlsx", "empty.parquet"])
def test_zero_byte_file_is_empty(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(b"")
    exc = failure(path)
    assert exc.kind == "empty"
    assert str(exc) == f"{name}: 文件是空的 (the file is empty)"


def test_whitespace_only_text_is_empty(tmp_path: Path):
    path = tmp_path / "blank.csv"
    path.write_bytes("\ufeff \r\n\r\n\t\n".encode("utf-8"))
    assert failure(path).kind == "empty"


def test_header_without_data_rows_is_not_an_error(tmp_path: Path):
    csv_path = tmp_path / "header_only.csv"
    csv_path.write_text("姓名,手机\n\n", encoding="utf-8")
    sheet = only(read_lead_file(csv_path))
    assert sheet.frame.height == 0 and sheet.frame.columns == [ROW_COLUMN, "姓名", "手机"]
    xlsx_path = tmp_path / "header_only.xlsx"
    xlsx_path.write_bytes(xlsx_bytes([["标题"], ["姓名", "手机"]]))
    sheet = only(read_lead_file(xlsx_path))
    assert sheet.frame.height == 0 and sheet.header_row == 2


def test_truncated_workbook_is_corrupt(tmp_path: Path):
    whole = xlsx_bytes([["姓名", "手机"], *[[f"客户{i}", f"138{i:08d}"] for i in range(500)]])
    path = tmp_path / "half.xlsx"
    path.write_bytes(whole[: len(whole) // 2])
    exc = failure(path)
    assert exc.kind == "corrupt"
    assert exc.reason_zh == "文件不完整或不是 Excel 工作簿"
    assert exc.reason_en == "the file is incomplete or not an Excel workbook"


def test_binary_garbage_named_xlsx_is_corrupt(tmp_path: Path):
    path = tmp_path / "garbage.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    assert failure(path).kind == "corrupt"


def test_password_protected_workbook(tmp_path: Path):
    plain = tmp_path / "plain.xlsx"
    plain.write_bytes(xlsx_bytes([["姓名", "手机"], ["张伟", "13800138001"]]))
    path = tmp_path / "secret.xlsx"
    with plain.open("rb") as source, path.open("wb") as target:
        OOXMLFile(source).encrypt("123456", target)
    assert path.read_bytes().startswith(b"\xd0\xcf\x11\xe0")
    exc = failure(path)
    assert exc.kind == "encrypted"
    assert exc.reason_zh == "工作簿有密码保护，请去掉密码后重新放入"
    assert exc.reason_en == "the workbook is password-protected; remove the password and drop it again"


def test_password_protected_xls_is_found_from_its_filepass_record(tmp_path: Path):
    # msoffcrypto cannot encrypt .xls; turn the record after BOF into FILEPASS (same length) instead.
    path = tmp_path / "secret.xls"
    wb = xlwt.Workbook()
    wb.add_sheet("线索").write(0, 0, "姓名")
    wb.save(str(path))
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        stream = bytearray(ole.openstream("Workbook").read())
        bof_length = int.from_bytes(stream[2:4], "little")
        stream[4 + bof_length : 6 + bof_length] = (0x002F).to_bytes(2, "little")
        ole.write_stream("Workbook", bytes(stream))
    assert failure(path).kind == "encrypted"


def test_csv_text_named_xlsx_is_mislabelled(tmp_path: Path):
    path = tmp_path / "leads.xlsx"
    path.write_text(CSV_TEXT, encoding="utf-8")
    exc = failure(path)
    assert exc.kind == "mislabelled"
    assert str(exc) == "leads.xlsx: 文件名是 .xlsx，但内容是 CSV 文本 (named .xlsx but the content is CSV text)"


@pytest.mark.parametrize(("name", "content_zh"), [("book.csv", "Excel 工作簿"), ("warehouse.txt", "Parquet 数据文件")])
def test_binary_formats_named_as_text_are_mislabelled(tmp_path: Path, name: str, content_zh: str):
    path = tmp_path / name
    if name.startswith("book"):
        path.write_bytes(xlsx_bytes([["姓名", "手机"], ["张伟", "13800138001"]]))
    else:
        pq.write_table(pa.table({"name": ["张伟"]}), path)
    exc = failure(path)
    assert exc.kind == "mislabelled"
    assert content_zh in exc.reason_zh


def test_parquet_content_checked_too(tmp_path: Path):
    path = tmp_path / "leads.parquet"
    path.write_text(CSV_TEXT, encoding="utf-8")
    assert failure(path).kind == "mislabelled"
    cut = tmp_path / "cut.parquet"
    buffer = io.BytesIO()
    pq.write_table(pa.table({"name": ["张伟"] * 100}), buffer)
    cut.write_bytes(buffer.getvalue()[:40])
    assert failure(cut).kind == "corrupt"


def _docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["brochure.pdf", "letter.docx", "sheet.numbers", "leads", "leads.xlsb"])
def test_unsupported_types(tmp_path: Path, name: str):
    path = tmp_path / name
    content = {".docx": _docx_bytes(), ".pdf": b"%PDF-1.4 whatever"}.get(path.suffix, CSV_TEXT.encode())
    path.write_bytes(content)
    exc = failure(path)
    assert exc.kind == "unsupported"
    assert "Excel (.xlsx)" in exc.reason_zh


def test_word_document_named_xlsx_is_mislabelled(tmp_path: Path):
    path = tmp_path / "leads.xlsx"
    path.write_bytes(_docx_bytes())
    exc = failure(path)
    assert exc.kind == "mislabelled" and "Word" in exc.reason_zh


def test_library_errors_never_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "ok.xlsx"
    path.write_bytes(xlsx_bytes([["姓名", "手机"], ["张伟", "13800138001"]]))

    def boom(*_args, **_kwargs):
        raise RuntimeError("calamine error: Zip error: Could not find EOCD")

    monkeypatch.setattr(readers.fastexcel, "read_excel", boom)
    assert failure(path).kind == "corrupt"
    monkeypatch.setattr(readers, "_read_excel", boom)
    exc = failure(path)
    assert exc.kind == "unreadable"
    assert exc.__cause__ is not None  # the library error stays available to logs


# ------------------------------------------------------------------------------ column names


def test_decorated_and_duplicate_headers_stay_distinct_and_map_alike(tmp_path: Path):
    path = tmp_path / "headers.xlsx"
    path.write_bytes(
        xlsx_bytes(
            [
                ["姓名", "手机号\u3000", "联系电话(必填)", "手机", "手机", None, "公司"],
                ["张伟", "13800138001", "13800138002", "13800138003", "13800138004", "备用", "字节跳动"],
            ]
        )
    )
    sheet = only(read_lead_file(path))
    assert sheet.frame.columns == [ROW_COLUMN, "姓名", "手机号", "联系电话(必填)", "手机", "手机(2)", "列6", "公司"]
    mapping = load_field_mapping()
    assert [mapping.canonical_for(c) for c in sheet.frame.columns[1:]] == [
        "name", "mobile", "mobile", "mobile", "mobile", None, "company",
    ]
    assert sheet.frame.row(0) == (2, "张伟", "13800138001", "13800138002", "13800138003", "13800138004", "备用", "字节跳动")


def test_csv_duplicate_headers(tmp_path: Path):
    path = tmp_path / "dup.csv"
    path.write_text("姓名,手机,手机,,公司\n张伟,13800138001,13900139000,,字节跳动\n", encoding="utf-8")
    sheet = only(read_lead_file(path))
    # a column with neither header nor values is layout and dropped
    assert sheet.frame.columns == [ROW_COLUMN, "姓名", "手机", "手机(2)", "公司"]
    mapping = load_field_mapping()
    assert mapping.canonical_for("手机(2)") == "mobile"


# ------------------------------------------------------------------------------ candidates


def test_lead_file_candidates(tmp_path: Path):
    (tmp_path / "leads.xlsx").write_bytes(b"x")
    (tmp_path / "~$leads.xlsx").write_bytes(b"x")
    (tmp_path / ".hidden.csv").write_bytes(b"x")
    (tmp_path / "brochure.pdf").write_bytes(b"x")
    (tmp_path / "folder.csv").mkdir()
    found = sorted(p.name for p in tmp_path.iterdir() if is_lead_file_candidate(p))
    assert found == ["brochure.pdf", "leads.xlsx"]  # unsupported files are reported, not ignored


def test_a_quote_never_closed_rejects_its_own_row_only(tmp_path: Path):
    # Excel would swallow every later line into one cell; here only row 3 is lost.
    path = tmp_path / "stray_quote.csv"
    tail = "".join(f"客户{i},138{i:08d}\n" for i in range(8000))  # longer than the csv field limit
    path.write_text('姓名,手机\n张伟,13800138001\n李娜,"15912345678\n' + tail, encoding="utf-8")
    sheet = only(read_lead_file(path))
    assert sheet.rejected == (LineNote(3, "第 3 行的引号没有配对，这一行无法读取 (row 3 has a quote that is never closed)"),)
    assert rows(sheet)[:3] == [2, 4, 5] and sheet.frame.height == 8001
    short = tmp_path / "stray_quote_at_end.csv"
    short.write_text('姓名,手机\n张伟,"13800138001\n李娜,15912345678\n', encoding="utf-8")
    sheet = only(read_lead_file(short))
    assert [n.row for n in sheet.rejected] == [2]
    assert data(sheet) == [("李娜", "15912345678")]

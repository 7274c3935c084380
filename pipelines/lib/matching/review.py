"""Review in Excel, a kind at a time (同类项批处理): the review queue out as a workbook, the filled workbook back in.

The workbook has an instruction sheet (说明), one sheet per kind of conflict (``REVIEW_KINDS``) with both
records of every pair side by side, field by field, a decision drop-down on every row and one for the
whole sheet, and a very hidden meta sheet that marks it as a review workbook and says when it was
exported. Importing it applies every decided row as one batch, by record, into the tables
``record_decision`` writes (``matching.decisions`` / ``decision_records``), so ``build_leads`` honours the
batch on every later run exactly as it honours ``leadfactory decide``. A pair whose leads changed since the
export is skipped with the reason; the rest apply.

Review workbooks hold full contact details (a person cannot judge a pair without them): they are personal
data and live under the data home only (``outbox/``).
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import polars as pl
import pyarrow as pa
import xlsxwriter

from .leads import DECISION_RECORDS, DECISIONS, LEAD_REGISTRY, REVIEW_KINDS, ensure_matching_tables
from ..home import LeadHome
from ..publish.publish import LEAD_MEMBERS, LEAD_RECORDS, LEAD_REVIEW_QUEUE
from ..publish.receipts import _write_sheet  # the receipts' sheet writer: text stays text
from ..quality.profiling import relation_exists

log = logging.getLogger(__name__)

META_SHEET = "leadfactory_meta"
MARKER = "leadfactory review workbook"
FORMAT_VERSION = "1"
INSTRUCTIONS_SHEET = "说明"
# A kind's sheet: title (row 1), the sheet's decision in A2, colour legend (row 3), header (row 4), pairs.
SHEET_DECISION_ROW, LEGEND_ROW, HEADER_ROW = 1, 2, 3
_SHEET_DECISION_ABOVE = HEADER_ROW - SHEET_DECISION_ROW  # rows between the sheet's decision and the header
DECISION_HEADER = "决定 (decision)"
ID_COLUMNS = ("review_id", "lead_id_l", "lead_id_r", "record_id_l", "record_id_r")
DECISION_WORDS = {"same": "同一人", "different": "不同人"}

# What people type for a decision, after full-width folding, lower-casing and dropping spaces.
_VARIANTS = {
    "same": ("同一人", "同一个人", "是同一人", "是同一个人", "相同", "是", "合并", "same", "sameperson", "y", "yes"),
    "different": ("不同人", "不是同一人", "不是同一个人", "不同", "否", "不是", "不合并", "different", "differentpeople",
                  "diff", "n", "no"),
}
DECISION_VARIANTS = {word: decision for decision, words in _VARIANTS.items() for word in words}

SKIP_REASONS = {
    "unknown_pair": "未知配对：缺少隐藏的编号，或不是本线索库的线索 (unknown pair: its hidden ids are missing or not leads of this library)",
    "record_gone": "有记录已不在线索库中 (a record is gone from the library)",
    "merged_since": "导出后两边已在同一线索中 (already in one lead: merged since the export)",
    "record_moved": "导出后有记录转到了其他线索 (a record moved to another lead since the export)",
    "decided_since": "导出后已有人对这两条线索作出决定 (decided since the export)",
    "duplicate": "同一配对在工作簿中出现多次，以第一次为准 (the pair appears more than once in the workbook; the first counts)",
}
STATUS_WORDS = {"applied": "已生效 (applied)", "skipped": "已跳过 (skipped)", "undecided": "未决定 (undecided)",
                "error": "错误 (error)"}

# How two records compare on a field, and its colour.
SAME, SIMILAR, DIFFERENT, MISSING = "相同", "相近", "不同", "缺失"
MARK_COLOURS = {SAME: "#C6EFCE", SIMILAR: "#E2F0D9", DIFFERENT: "#F8CBAD", MISSING: "#E7E6E6"}
LEGEND = {SAME: "相同 same", SIMILAR: "相近 similar: a value in common, or the same pinyin",
          DIFFERENT: "不同 different", MISSING: "缺失 missing on one side or both"}


class ReviewWorkbookError(ValueError):
    """The file is not a review workbook this product exported, or cannot be applied at all."""


# ---------------------------------------------------------------------------------------------- export

def _joined(values) -> str | None:
    return "、".join(values) if values else None


def _same_value(column: str) -> Callable[[dict, dict], str]:
    def compare(a: dict, b: dict) -> str:
        if a.get(column) is None or b.get(column) is None:
            return MISSING
        return SAME if a[column] == b[column] else DIFFERENT
    return compare


def _same_set(column: str) -> Callable[[dict, dict], str]:
    def compare(a: dict, b: dict) -> str:
        left, right = set(a.get(column) or ()), set(b.get(column) or ())
        if not left or not right:
            return MISSING
        return SAME if left == right else SIMILAR if left & right else DIFFERENT
    return compare


def _same_name(a: dict, b: dict) -> str:
    left, right = a.get("name"), b.get("name")
    if not left or not right:
        return MISSING
    if left == right:
        return SAME
    # 张伟/章伟 read alike; 王总 leaves only the surname
    if (a.get("name_pinyin") and a.get("name_pinyin") == b.get("name_pinyin")) or \
            (min(len(left), len(right)) == 1 and left[0] == right[0]):
        return SIMILAR
    return DIFFERENT


def _region(record: dict) -> str | None:
    parts = [record.get(k) for k in ("province", "city", "district")]
    return " ".join(dict.fromkeys(p for p in parts if p)) or None


# (label, what is shown, how the sides compare: None for fields that only inform). Companies, titles and
# addresses compare on the forms the matcher compares (core name, canonical title, street address).
FIELDS: list[tuple[str, Callable[[dict], Any], Callable[[dict, dict], str] | None]] = [
    ("姓名", lambda r: r.get("name"), _same_name),
    ("手机", lambda r: _joined(r.get("mobiles")), _same_set("mobiles")),
    ("座机", lambda r: _joined(r.get("landlines")), _same_set("landlines")),
    ("邮箱", lambda r: _joined(r.get("emails")), _same_set("emails")),
    ("微信", lambda r: r.get("wechat"), _same_value("wechat")),
    ("QQ", lambda r: r.get("qq"), _same_value("qq")),
    ("公司", lambda r: r.get("company"), _same_value("company_core")),
    ("职务", lambda r: r.get("job_title"), _same_value("job_title_canonical")),
    ("城市", _region, _same_value("city")),
    ("地址", lambda r: r.get("address"), _same_value("street_address")),
    ("渠道", lambda r: r.get("source"), None),
    ("负责人", lambda r: r.get("owner"), None),
    ("更新时间", lambda r: f"{r['updated_at']:%Y-%m-%d %H:%M}" if r.get("updated_at") else None, None),
    ("来源文件#行", lambda r: r.get("source_at"), None),
]


@dataclass(frozen=True)
class ReviewExport:
    path: Path
    pairs_by_kind: dict[str, int]  # kind (a key of REVIEW_KINDS) -> pairs in its sheet

    @property
    def pairs(self) -> int:
        return sum(self.pairs_by_kind.values())


def sheet_title(kind: str) -> str:
    """A kind's sheet title: its short Chinese name, without the characters Excel forbids in one."""
    label = REVIEW_KINDS[kind][0].split(" (")[0]
    return "".join(ch for ch in label if ch not in "、/\\?*[]:").strip()[:31]


def review_workbook_path(outbox: Path, when: datetime | None = None) -> Path:
    return outbox / f"审核_{(when or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}.xlsx"


def _pairs_to_review(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    """The published queue, most likely first, without pairs decided since it was published."""
    decided = (f"""and not exists (select 1 from {DECISIONS} d
                   where least(d.lead_a, d.lead_b) = least(q.lead_id_l, q.lead_id_r)
                     and greatest(d.lead_a, d.lead_b) = greatest(q.lead_id_l, q.lead_id_r))"""
               if relation_exists(conn, DECISIONS) else "")
    return conn.execute(f"""
        select q.* from {LEAD_REVIEW_QUEUE} q where true {decided}
        order by q.match_probability desc, q.review_id
    """).pl().to_dicts()


def _records_of(conn: duckdb.DuckDBPyConnection, pairs: list[dict]) -> dict[str, dict]:
    ids = sorted({p["record_id_l"] for p in pairs} | {p["record_id_r"] for p in pairs})
    if not ids or not relation_exists(conn, LEAD_RECORDS):
        return {}
    frame = conn.execute(f"select * from {LEAD_RECORDS} where record_id in (select unnest(?::varchar[]))", [ids]).pl()
    return {record["record_id"]: record for record in frame.to_dicts()}


def _side(pair: dict, records: dict[str, dict], side: str) -> dict:
    """One side's full record; the queue's own columns if the standardised record is no longer there."""
    record = records.get(pair[f"record_id_{side}"]) or {
        "name": pair[f"name_{side}"], "mobiles": [v for v in [pair[f"mobile_{side}"]] if v],
        "emails": [v for v in [pair[f"email_{side}"]] if v], "company": pair[f"company_{side}"]}
    return {**record, "source_at": pair[f"source_{side}"]}


def export_review_workbook(conn: duckdb.DuckDBPyConnection, home: LeadHome, path: Path | None = None) -> ReviewExport:
    """Write the review queue as a workbook to fill in (default ``<home>/outbox/审核_<time>.xlsx``)."""
    exported_at = datetime.now(timezone.utc)
    path = Path(path) if path else review_workbook_path(home.outbox_dir, exported_at)
    pairs = _pairs_to_review(conn)
    records = _records_of(conn, pairs)
    last_decision = conn.execute(f"select coalesce(max(decision_id), 0) from {DECISIONS}").fetchone()[0] \
        if relation_exists(conn, DECISIONS) else 0
    by_kind: dict[str, list[dict]] = {}
    for pair in pairs:
        by_kind.setdefault(pair["conflict_kind"] if pair["conflict_kind"] in REVIEW_KINDS else "other", []).append(pair)
    kinds = [kind for kind in REVIEW_KINDS if kind in by_kind]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp))
    formats = _formats(workbook)
    _write_instructions(workbook, formats, kinds, by_kind, home, exported_at)
    for kind in kinds:
        _write_kind(workbook, formats, kind, by_kind[kind], records)
    meta = workbook.add_worksheet(META_SHEET)
    for row, (key, value) in enumerate([(MARKER, FORMAT_VERSION),
                                        ("exported_at", f"{exported_at:%Y-%m-%d %H:%M:%S}"),
                                        ("home", str(home.root)),
                                        ("last_decision_id", str(last_decision))]):
        meta.write_string(row, 0, key)
        meta.write_string(row, 1, value)
    meta.very_hidden()  # only this product reads it; a person cannot unhide it by accident
    workbook.close()
    tmp.replace(path)  # a reader (or the inbox sensor) never sees half a workbook
    exported = ReviewExport(path, {kind: len(by_kind[kind]) for kind in kinds})
    log.info("review workbook %s: %d pairs in %d sheets", path.name, exported.pairs, len(kinds))
    return exported


def _formats(workbook) -> dict[str, Any]:
    add = workbook.add_format
    formats = {
        "title": add({"bold": True, "font_size": 14}),
        "bold": add({"bold": True}),
        "header": add({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}),
        "decision": add({"bg_color": "#FFF2CC", "border": 2, "border_color": "#BF9000", "bold": True}),
        "note": add({"italic": True, "font_color": "#595959"}),
        "wrap": add({"text_wrap": True, "valign": "top"}),
        "probability": add({"num_format": "0.0000"}),
        "link": add({"font_color": "blue", "underline": 1}),
        "plain": None,
    }
    for mark, colour in MARK_COLOURS.items():
        formats[mark] = add({"bg_color": colour})
    return formats


def _decision_validation(hint: str) -> dict[str, Any]:
    return {"validate": "list", "source": list(DECISION_WORDS.values()), "ignore_blank": True,
            "input_title": "决定 (decision)", "input_message": hint,
            "error_title": "请从列表中选择 (choose from the list)",
            "error_message": "同一人 (same person) 或 不同人 (different people)；拿不准就留空 (leave it blank if unsure)"}


def _write_instructions(workbook, formats, kinds: list[str], by_kind: dict[str, list[dict]], home: LeadHome,
                        exported_at: datetime) -> None:
    sheet = workbook.add_worksheet(INSTRUCTIONS_SHEET)
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 1, 60)
    sheet.set_column(2, 2, 14)
    sheet.write_string(0, 0, "线索审核工作簿 (lead review workbook)", formats["title"])
    lines = [
        ("导出时间 (exported, UTC)", f"{exported_at:%Y-%m-%d %H:%M:%S}"),
        ("线索库 (data home)", str(home.root)),
        ("待审核的配对 (pairs to review)", str(sum(len(by_kind[k]) for k in kinds))),
    ]
    for row, (label, value) in enumerate(lines, start=2):
        sheet.write_string(row, 0, label, formats["bold"])
        sheet.write_string(row, 1, value)
    row = len(lines) + 3
    for col, label in enumerate(("工作表 (sheet)", "冲突类型 (kind of conflict)", "配对数 (pairs)")):
        sheet.write_string(row, col, label, formats["header"])
    for kind in kinds:
        row += 1
        sheet.write_url(row, 0, f"internal:'{sheet_title(kind)}'!A1", formats["link"], sheet_title(kind))
        sheet.write_string(row, 1, REVIEW_KINDS[kind][0])
        sheet.write_number(row, 2, len(by_kind[kind]))
    steps = [
        ("怎么填 (how to fill it in)", None),
        ("1", "每个工作表是一类冲突，最可能是同一人的排在前面；每行是一对记录，两边逐字段并排。"
              "(Each sheet holds one kind of conflict, the likeliest pairs first; each row is a pair, both records side by side.)"),
        ("2", "在每行的「决定」列（A 列）选择 同一人 或 不同人；拿不准就留空，下次导出还会出现。"
              "(In column A of each row choose 同一人 (same person) or 不同人 (different people); "
              "leave it blank if unsure: the pair comes back in the next export.)"),
        ("3", "整表决定：在工作表的 A2 格选择后，本表所有留空的行都按它处理，已填写的行保持各自的决定。"
              "(Decide a whole sheet at once: choose in cell A2; every row left blank takes it, rows you filled keep theirs.)"),
        ("4", "颜色：绿色 两边相同，浅绿 相近（有共同的值或读音相同），橙色 不同，灰色 一方或双方缺失。"
              "(Colours: green same, light green similar (a value in common, or the same pinyin), orange different, "
              "grey missing on one side or both.)"),
        ("5", "可以排序、筛选；请不要删除隐藏的列和工作表，它们把每个决定对应回线索。"
              "(Sort and filter as you like; do not delete the hidden columns and sheet: they tie each decision to its leads.)"),
        ("怎么交回 (how to give it back)", None),
        ("1", f"保存后放进 inbox 文件夹 ({home.inbox_dir})，或运行 leadfactory review import 文件名。"
              f"(Save it and drop it into the inbox folder, or run: leadfactory review import FILE.)"),
        ("2", "结果写在 outbox 文件夹的 审核结果_<时间>.xlsx：每行已生效、已跳过或有错误，及原因。"
              "(The result, 审核结果_<time>.xlsx in the outbox folder, says for each row whether it applied, "
              "was skipped or had an error, and why.)"),
        ("3", "导出后线索有变化的配对（已合并、记录转走或已删除、已有人决定）会被跳过并说明原因，其余照常生效。"
              "(Pairs whose leads changed since the export (merged, a record moved or gone, decided by someone) "
              "are skipped with the reason; the rest apply.)"),
        ("4", "决定按记录保存，之后每次运行都遵守：不同人 永不合并，同一人 总是合并。"
              "(Decisions are kept by record and honoured by every later run: different people are never merged, "
              "the same person always is.)"),
    ]
    row += 2
    for label, text in steps:
        if text is None:
            row += 1
            sheet.write_string(row, 0, label, formats["bold"])
        else:
            sheet.write_string(row, 0, label)
            sheet.write_string(row, 1, text, formats["wrap"])
        row += 1
    sheet.activate()


def _write_kind(workbook, formats, kind: str, pairs: list[dict], records: dict[str, dict]) -> None:
    title = sheet_title(kind)
    sheet = workbook.add_worksheet(title)
    hint = "同一人 或 不同人；留空 = 未决定 (same or different; blank = undecided)"
    sheet.write_string(0, 0, f"{REVIEW_KINDS[kind][0]}：{len(pairs)} 对 (pairs)", formats["title"])
    sheet.write_blank(SHEET_DECISION_ROW, 0, None, formats["decision"])
    sheet.data_validation(SHEET_DECISION_ROW, 0, SHEET_DECISION_ROW, 0, _decision_validation(
        "整表决定：本表所有留空的行都按此处理 (decide every blank row of this sheet)"))
    sheet.write_string(SHEET_DECISION_ROW, 1, "← 整表决定 (decide every blank row of this sheet)：本表留空的行都按 A2 处理，"
                                              "已填写的行保持各自的决定 (rows you filled keep theirs)", formats["note"])
    for col, (mark, words) in enumerate(LEGEND.items(), start=1):
        sheet.write_string(LEGEND_ROW, col, words, formats[mark])

    sides = [(_side(pair, records, "l"), _side(pair, records, "r")) for pair in pairs]
    # (header, width, hidden): a field no record of this sheet has would only add grey columns
    headers: list[tuple[str, float, bool]] = [
        (DECISION_HEADER, 12, False), ("匹配概率 (probability)", 11, False), ("依据 (why)", 48, False)]
    for label, show, compare in FIELDS:
        empty = not any(show(record) is not None for pair_sides in sides for record in pair_sides)
        headers += [(f"{label} A", 16, empty), (f"{label} B", 16, empty)] + ([(f"{label} 比较", 6, empty)] if compare else [])
    headers += [("线索 A (lead)", 15, False), ("线索 B (lead)", 15, False)]
    ids_from = len(headers)
    headers += [(name, 10, True) for name in ID_COLUMNS]
    for col, (label, width, hidden) in enumerate(headers):
        sheet.write_string(HEADER_ROW, col, label, formats["header"])
        sheet.set_column(col, col, width, None, {"hidden": hidden})

    for row, (pair, (left, right)) in enumerate(zip(pairs, sides), start=HEADER_ROW + 1):
        sheet.write_blank(row, 0, None, formats["decision"])
        sheet.write_number(row, 1, pair["match_probability"], formats["probability"])
        sheet.write_string(row, 2, pair["explanation"] or "")
        col = 3
        for label, show, compare in FIELDS:
            mark = compare(left, right) if compare else None
            cell_format = formats[mark] if mark else formats["plain"]
            for record in (left, right):
                value = show(record)
                if value is None:
                    sheet.write_blank(row, col, None, cell_format)
                else:  # text stays text: Excel must not turn a mobile into 1.38E+10
                    sheet.write_string(row, col, str(value), cell_format)
                col += 1
            if mark:
                sheet.write_string(row, col, mark, cell_format)
                col += 1
        for value in (pair["lead_id_l"], pair["lead_id_r"], *(pair[name] for name in ID_COLUMNS)):
            sheet.write_string(row, col, value)
            col += 1
    last_row = HEADER_ROW + max(len(pairs), 1)
    sheet.data_validation(HEADER_ROW + 1, 0, last_row, 0, _decision_validation(hint))
    sheet.freeze_panes(HEADER_ROW + 1, 2)
    sheet.autofilter(HEADER_ROW, 0, last_row, ids_from - 1)


# ---------------------------------------------------------------------------------------------- import

def is_review_workbook(path: str | Path) -> bool:
    """True for a workbook ``export_review_workbook`` wrote (also after a person saved it); False for any
    other file, readable or not. Cheap on big lead workbooks: their sheet list is read, not their cells."""
    try:
        with zipfile.ZipFile(path) as archive:
            if META_SHEET not in archive.read("xl/workbook.xml").decode("utf-8", "replace"):
                return False
        with open(path, "rb") as handle:
            book = openpyxl.load_workbook(handle, read_only=True)
            try:
                first = next(book[META_SHEET].iter_rows(min_row=1, max_row=1, max_col=1, values_only=True), (None,))
            finally:
                book.close()
        return first[0] == MARKER
    except Exception:  # whatever else the file is (not a zip, corrupt, locked), it is not one of ours
        return False


def parse_decision(value: Any) -> str | None:
    """'same', 'different' or None (blank) for what a person typed; ValueError for anything else."""
    if value is None:
        return None
    text = "".join(unicodedata.normalize("NFKC", str(value)).lower().split())
    if not text:
        return None
    try:
        return DECISION_VARIANTS[text]
    except KeyError:
        raise ValueError(str(value)) from None


@dataclass
class ReviewRow:
    """One row of a filled workbook and what became of it."""
    sheet: str
    row: int  # as Excel numbers it
    value: str | None  # what the decision cell held
    review_id: str | None = None
    lead_id_l: str | None = None
    lead_id_r: str | None = None
    record_id_l: str | None = None
    record_id_r: str | None = None
    name_l: str | None = None
    name_r: str | None = None
    decision: str | None = None  # 'same' | 'different': the row's own, else its sheet's
    from_sheet: bool = False  # the decision came from the sheet's A2
    status: str = "undecided"  # applied | skipped | undecided | error (pending: decided, not yet applied)
    reason: str | None = None  # why it was skipped, or the error
    decision_id: int | None = None


@dataclass
class ReviewImport:
    workbook: Path
    origin: str  # kept with every decision of the batch
    exported_at: str
    exported_from: str  # the home the workbook was exported from
    decided_by: str
    rows: list[ReviewRow] = field(default_factory=list)

    def _count(self, status: str, decision: str | None = None) -> int:
        return sum(1 for r in self.rows if r.status == status and (decision is None or r.decision == decision))

    @property
    def same(self) -> int:
        return self._count("applied", "same")

    @property
    def different(self) -> int:
        return self._count("applied", "different")

    @property
    def undecided(self) -> int:
        return self._count("undecided")

    @property
    def skipped(self) -> dict[str, int]:
        """{skip reason key (SKIP_REASONS): rows}."""
        return dict(Counter(r.reason for r in self.rows if r.status == "skipped"))

    @property
    def errors(self) -> list[ReviewRow]:
        return [r for r in self.rows if r.status == "error"]

    def render(self) -> str:
        lines = [f"{self.workbook.name} (exported {self.exported_at} UTC), decided by {self.decided_by}:",
                 f"  同一人 same             {self.same:6,}",
                 f"  不同人 different        {self.different:6,}",
                 f"  未决定 undecided        {self.undecided:6,}",
                 f"  跳过 skipped            {sum(self.skipped.values()):6,}"]
        lines += [f"    {n:6,}  {SKIP_REASONS[key]}" for key, n in self.skipped.items()]
        lines.append(f"  错误 errors             {len(self.errors):6,}")
        lines += [f"    {r.reason}" for r in self.errors]
        return "\n".join(lines)


def _text(value: Any) -> str | None:
    return (str(value).strip() or None) if value is not None else None


def _read_sheet(sheet) -> list[ReviewRow]:
    """The rows of one kind's sheet; [] for a sheet without the review header (the instructions, a sheet
    a person added)."""
    lines = list(sheet.iter_rows(values_only=True))
    header_at = next((i for i, line in enumerate(lines[:20]) if DECISION_HEADER in line), None)
    if header_at is None:
        return []
    columns = {name: i for i, name in enumerate(lines[header_at]) if isinstance(name, str)}
    if not all(name in columns for name in ID_COLUMNS):  # decisions that cannot be tied to leads are not dropped silently
        return [ReviewRow(sheet.title, header_at + 1, None, status="error", reason=(
            f"工作表「{sheet.title}」缺少隐藏的编号列，本表的决定都未处理 "
            f"(sheet {sheet.title} lost its hidden id columns: none of its decisions was applied)"))]

    def cell(line: tuple, name: str) -> Any:
        i = columns.get(name)
        return line[i] if i is not None and i < len(line) else None

    rows: list[ReviewRow] = []
    sheet_cell = lines[header_at - _SHEET_DECISION_ABOVE][0] if header_at >= _SHEET_DECISION_ABOVE else None
    try:
        sheet_decision = parse_decision(sheet_cell)
    except ValueError:
        sheet_decision = None
        cell_row = header_at - _SHEET_DECISION_ABOVE + 1
        rows.append(ReviewRow(sheet.title, cell_row, _text(sheet_cell), status="error", reason=_error_text(
            sheet.title, cell_row, sheet_cell,
            f"；整表决定 A{cell_row} 无效，本表留空的行都未决定 (the sheet's decision in A{cell_row} is not valid: "
            "its blank rows stay undecided)")))
    for number, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        value = cell(line, DECISION_HEADER)
        ids = {name: _text(cell(line, name)) for name in ID_COLUMNS}
        if _text(value) is None and not any(ids.values()):
            continue  # an empty line, or a note a person added below the pairs
        row = ReviewRow(sheet.title, number, _text(value), **ids,
                        name_l=_text(cell(line, "姓名 A")), name_r=_text(cell(line, "姓名 B")))
        try:
            row.decision = parse_decision(value)
        except ValueError:
            row.status, row.reason = "error", _error_text(sheet.title, number, value)
        else:
            if row.decision is None and ids["review_id"] and sheet_decision:
                row.decision, row.from_sheet = sheet_decision, True
            row.status = "pending" if row.decision else "undecided"
        rows.append(row)
    return rows


def _error_text(sheet: str, row: int, value: Any, consequence: str = "") -> str:
    return (f"工作表「{sheet}」第 {row} 行：无法识别的决定「{value}」，请填 同一人 或 不同人 "
            f"(sheet {sheet}, row {row}: unknown decision {str(value)!r}; use 同一人 or 不同人){consequence}")


@dataclass(frozen=True)
class _FilledWorkbook:
    exported_at: str
    home: str
    last_decision_id: int
    rows: list[ReviewRow]


def _read_workbook(path: Path) -> _FilledWorkbook:
    """The meta and every row of a filled review workbook, decisions parsed (nothing applied)."""
    if not is_review_workbook(path):
        raise ReviewWorkbookError(f"{Path(path).name}: 不是审核工作簿，请用 leadfactory review export 导出 "
                                  f"(not a review workbook: export one with leadfactory review export)")
    with open(path, "rb") as handle:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        try:
            meta = {row[0]: row[1] for row in book[META_SHEET].iter_rows(max_col=2, values_only=True) if row[0]}
            rows = [row for name in book.sheetnames if name != META_SHEET for row in _read_sheet(book[name])]
        finally:
            book.close()
    try:
        return _FilledWorkbook(str(meta["exported_at"]), str(meta["home"]), int(meta["last_decision_id"]), rows)
    except (KeyError, TypeError, ValueError):
        raise ReviewWorkbookError(f"{Path(path).name}: 隐藏的导出信息已损坏 (the hidden export details are damaged)") from None


def import_review_workbook(conn: duckdb.DuckDBPyConnection, path: str | Path, decided_by: str) -> ReviewImport:
    """Apply a filled review workbook as one batch, in one transaction; every decision is kept by record
    with who, when and which workbook. Rows whose pair changed since the export are skipped, with why."""
    path = Path(path)
    book = _read_workbook(path)
    if not relation_exists(conn, LEAD_MEMBERS):
        raise ReviewWorkbookError("还没有发布过线索，无从审核 (nothing has been published yet: there is nothing to decide on)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    result = ReviewImport(workbook=path, origin=f"review workbook {path.name} exported {book.exported_at} UTC sha256:{digest}",
                          exported_at=book.exported_at, exported_from=book.home, decided_by=decided_by, rows=book.rows)
    pending = [(i, r) for i, r in enumerate(book.rows) if r.status == "pending"]
    ensure_matching_tables(conn)
    conn.register("review_rows", pa.table({
        "idx": pa.array([i for i, _ in pending], pa.int64()),
        **{name: pa.array([getattr(r, name) for _, r in pending], pa.string()) for name in (*ID_COLUMNS, "decision")},
    }))
    conn.execute("begin transaction")
    try:
        base = conn.execute(f"select coalesce(max(decision_id), 0) from {DECISIONS}").fetchone()[0]
        # A pair applies only if it is still what the person saw: both records in the leads they were in,
        # those leads still apart, and nobody has decided on them since the export.
        conn.execute(f"""
            create or replace temp table review_verdicts as
            with checked as (
                select w.*, case
                    when w.review_id is null or w.lead_id_l is null or w.lead_id_r is null or w.record_id_l is null
                         or w.record_id_r is null or w.lead_id_l = w.lead_id_r
                         or w.lead_id_l not in (select lead_id from {LEAD_REGISTRY})
                         or w.lead_id_r not in (select lead_id from {LEAD_REGISTRY}) then 'unknown_pair'
                    when ml.lead_id is null or mr.lead_id is null then 'record_gone'
                    when ml.lead_id = mr.lead_id then 'merged_since'
                    when ml.lead_id <> w.lead_id_l or mr.lead_id <> w.lead_id_r then 'record_moved'
                    when exists (select 1 from {DECISIONS} d
                                 where d.decision_id > $since
                                   and least(d.lead_a, d.lead_b) = least(w.lead_id_l, w.lead_id_r)
                                   and greatest(d.lead_a, d.lead_b) = greatest(w.lead_id_l, w.lead_id_r)) then 'decided_since'
                    when row_number() over (partition by least(w.lead_id_l, w.lead_id_r), greatest(w.lead_id_l, w.lead_id_r)
                                            order by w.idx) > 1 then 'duplicate'
                end as skip
                from review_rows w
                left join {LEAD_MEMBERS} ml on ml.record_id = w.record_id_l
                left join {LEAD_MEMBERS} mr on mr.record_id = w.record_id_r
            )
            select *, case when skip is null
                           then $base + row_number() over (partition by skip is null order by idx) end as decision_id
            from checked
        """, {"since": book.last_decision_id, "base": base})
        conn.execute(f"""
            insert into {DECISIONS} (decision_id, lead_a, lead_b, decision, decided_by, origin)
            select decision_id, lead_id_l, lead_id_r, decision, $by, $origin
            from review_verdicts where decision_id is not null order by decision_id
        """, {"by": decided_by, "origin": result.origin})
        # the records of each side now, as record_decision keeps them: the decision follows the records
        conn.execute(f"""
            insert into {DECISION_RECORDS}
            select v.decision_id, 'a', m.record_id from review_verdicts v join {LEAD_MEMBERS} m on m.lead_id = v.lead_id_l
            where v.decision_id is not null
            union all
            select v.decision_id, 'b', m.record_id from review_verdicts v join {LEAD_MEMBERS} m on m.lead_id = v.lead_id_r
            where v.decision_id is not null
        """)
        verdicts = conn.execute("select idx, skip, decision_id from review_verdicts").fetchall()
        conn.execute("drop table review_verdicts")
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("review_rows")
    for idx, skip, decision_id in verdicts:
        row = book.rows[idx]
        if skip:
            row.status, row.reason = "skipped", skip
        else:
            row.status, row.decision_id = "applied", decision_id
    log.info("review workbook %s applied by %s: %d same, %d different, %d undecided, %d skipped %s, %d errors",
             path.name, decided_by, result.same, result.different, result.undecided, sum(result.skipped.values()),
             result.skipped or "", len(result.errors))
    return result


def write_review_result(result: ReviewImport, outbox: Path, when: datetime | None = None) -> Path:
    """A short workbook saying what became of every row (``<outbox>/审核结果_<time>.xlsx``)."""
    path = outbox / f"审核结果_{(when or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}.xlsx"
    outbox.mkdir(parents=True, exist_ok=True)
    summary = [
        ("审核工作簿 (review workbook)", result.workbook.name),
        ("导出时间 (exported, UTC)", result.exported_at),
        ("决定人 (decided by)", result.decided_by),
        ("同一人 (same, applied)", result.same),
        ("不同人 (different, applied)", result.different),
        ("未决定 (undecided)", result.undecided),
        *((f"已跳过 (skipped): {SKIP_REASONS[key]}", n) for key, n in result.skipped.items()),
        ("错误 (errors)", len(result.errors)),
        ("生效时间 (takes effect)", "本次运行即生效，之后每次运行都遵守 (applied to the published leads by this run; "
                                    "every later run honours it)"),
    ]
    rows = pl.DataFrame({
        "工作表 (sheet)": [r.sheet for r in result.rows],
        "行号 (row)": [r.row for r in result.rows],
        "结果 (outcome)": [STATUS_WORDS[r.status] for r in result.rows],
        "决定 (decision)": [DECISION_WORDS.get(r.decision or "") for r in result.rows],
        "整表决定 (from the sheet's A2)": ["是 (yes)" if r.from_sheet else None for r in result.rows],
        "原因 (why)": [SKIP_REASONS.get(r.reason or "", r.reason) for r in result.rows],
        "姓名 A": [r.name_l for r in result.rows], "姓名 B": [r.name_r for r in result.rows],
        "线索 A (lead)": [r.lead_id_l for r in result.rows], "线索 B (lead)": [r.lead_id_r for r in result.rows],
        "决定编号 (decision id)": [r.decision_id for r in result.rows],
    }, schema_overrides={"行号 (row)": pl.Int64, "决定编号 (decision id)": pl.Int64})
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp))
    header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7"})
    sheet = workbook.add_worksheet("汇总 Summary")
    sheet.set_column(0, 0, 60)
    sheet.set_column(1, 1, 60)
    for row, (label, value) in enumerate(summary):
        sheet.write_string(row, 0, label, header)
        if isinstance(value, int):
            sheet.write_number(row, 1, value)
        else:
            sheet.write_string(row, 1, value)
    _write_sheet(workbook, "明细 Rows", rows, header)
    workbook.close()
    tmp.replace(path)
    return path


def write_review_failure(workbook_name: str, reason: str, outbox: Path, when: datetime | None = None) -> Path:
    """The result of a workbook that could not be applied at all: one sheet with the reason, so the person
    who dropped it learns why without reading a run log."""
    path = outbox / f"审核结果_{(when or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}_未生效.xlsx"
    outbox.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.xlsx")
    workbook = xlsxwriter.Workbook(str(tmp))
    header = workbook.add_format({"bold": True, "bg_color": "#F8CBAD"})
    sheet = workbook.add_worksheet("汇总 Summary")
    sheet.set_column(0, 1, 70)
    for row, (label, value) in enumerate([
            ("审核工作簿 (review workbook)", workbook_name),
            ("结果 (outcome)", "未生效，没有记录任何决定 (not applied: no decision was recorded)"),
            ("原因 (reason)", reason),
            ("文件位置 (kept in)", "inbox/failed/")]):
        sheet.write_string(row, 0, label, header)
        sheet.write_string(row, 1, value)
    workbook.close()
    tmp.replace(path)
    return path

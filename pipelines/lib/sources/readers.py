"""Read lead files (CSV/TXT/TSV, Excel, Parquet) into all-text Polars frames, one frame per lead sheet.

Every cell is read as the text the specialist sees: a mobile typed as a number in Excel stays
``13800138000`` (never ``1.38e10``), a leading zero survives, a date cell becomes ISO text. The type of
a file is checked from its content, not only its name. A file that cannot be read as leads raises
:class:`LeadFileError` with a reason a marketing specialist understands (Chinese, then English); a
single bad row is rejected on its own (:attr:`Sheet.rejected`) and the other rows are read.

Row numbers (``_source_row``) are the row numbers Excel shows, for CSV too (one row per record,
blank lines and lines above the header included). For Parquet they are the record numbers, from 1.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import posixpath
import re
import struct
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import fastexcel
import polars as pl

from .field_mapping import FieldMapping, load_field_mapping

ROW_COLUMN = "_source_row"

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
PARQUET_SUFFIXES = {".parquet"}
SUPPORTED_SUFFIXES = CSV_SUFFIXES | EXCEL_SUFFIXES | PARQUET_SUFFIXES

# A header row must name at least one of these, otherwise the sheet holds no leads.
KEY_FIELDS = frozenset({"name", "mobile", "landline", "email", "wechat", "qq", "company"})
HEADER_SEARCH_ROWS = 30  # the header is looked for among this many non-empty rows
DELIMITERS = (",", "\t", ";", "|")
_SNIFF_CHARS = 1 << 18  # the header is looked for in this much text
_MAX_QUOTE_REPAIRS = 100  # lines with a quote that is never closed, before the file is refused
REPLACEMENT = "\ufffd"  # marks undecodable bytes; rows holding it are rejected

# A totals row: its first non-empty cell is one of these words (spaces ignored), maybe with a colon.
_TOTAL_START = r"(?i)^(?:合计|总计|小计|总数|共计|汇总|total|totals|grandtotal|subtotal|sum)(?:[:：].*)?$"
_NOTE_START = r"(?i)^(?:说明|注\s*[:：]|备注|填写说明|填表说明|提示|温馨提示|notes?\b)"
_NOTE_RE = re.compile(_NOTE_START)
_TOTAL_RE = re.compile(_TOTAL_START, re.DOTALL)
_SPACES = r"\s+"
_SPACES_RE = re.compile(_SPACES)

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PARQUET_MAGIC = b"PAR1"
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"


class LeadFileError(ValueError):
    """The whole file cannot be read as leads."""

    KINDS = ("empty", "corrupt", "encrypted", "mislabelled", "unsupported", "no_lead_columns", "unreadable")

    def __init__(self, file: str, kind: str, reason_zh: str, reason_en: str):
        self.file = file
        self.kind = kind
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        super().__init__(f"{file}: {reason_zh} ({reason_en})")

    def __reduce__(self):  # picklable across processes despite the four-argument constructor
        return type(self), (self.file, self.kind, self.reason_zh, self.reason_en)


@dataclass(frozen=True)
class LineNote:
    row: int  # row number as the specialist sees it in Excel
    reason: str  # "中文 (English)"


@dataclass(frozen=True)
class Sheet:
    label: str  # the file label; f"{label}#{sheet}" for a workbook's second and later lead sheets
    frame: pl.DataFrame  # ROW_COLUMN (Int64) first, then every column as Utf8; data rows only
    rejected: tuple[LineNote, ...] = ()  # lead rows that cannot be read (ragged, undecodable bytes)
    skipped: tuple[LineNote, ...] = ()  # lines that are not leads (totals rows, notes after the header)
    header_row: int = 1  # 0 for Parquet (no header row; rows are record numbers)
    encoding: str | None = None  # text files only


# ---------------------------------------------------------------------------------------------- reasons

_EMPTY = ("文件是空的", "the file is empty")
_EMPTY_WORKBOOK = ("工作簿里没有任何内容", "the workbook has no content")
_NO_LEAD_COLUMNS = ("找不到姓名、手机等线索列", "no lead columns such as name or mobile found")
_CORRUPT_EXCEL = ("文件不完整或不是 Excel 工作簿", "the file is incomplete or not an Excel workbook")
_DAMAGED_EXCEL = (
    "工作簿已损坏，无法读取，请用 Excel 打开后另存一份",
    "the workbook is damaged; open it in Excel and save a copy",
)
_CORRUPT_PARQUET = ("Parquet 文件不完整或已损坏", "the Parquet file is incomplete or damaged")
_NOT_TEXT = ("文件内容不是文本，可能已损坏", "the content is not text; the file may be damaged")
_ENCRYPTED = (
    "工作簿有密码保护，请去掉密码后重新放入",
    "the workbook is password-protected; remove the password and drop it again",
)
_UNREADABLE = (
    "无法读取这个文件，请用 Excel 打开检查后重新保存",
    "the file could not be read; open it in Excel, check it and save it again",
)
_CANNOT_OPEN = ("无法打开这个文件", "the file cannot be opened")

# What a file really holds, for "mislabelled" reasons: (Chinese, English).
_CONTENT_NAMES = {
    "text": ("CSV 文本", "CSV text"),
    "xlsx": ("Excel 工作簿", "an Excel workbook"),
    "xls": ("Excel 97-2003 工作簿 (.xls)", "an Excel 97-2003 workbook (.xls)"),
    "parquet": ("Parquet 数据文件", "a Parquet data file"),
    "docx": ("Word 文档", "a Word document"),
    "pptx": ("PowerPoint 演示文稿", "a PowerPoint presentation"),
    "ods": ("OpenDocument 表格 (.ods)", "an OpenDocument spreadsheet (.ods)"),
    "numbers": ("Numbers 表格", "a Numbers spreadsheet"),
    "zip": ("ZIP 压缩包", "a ZIP archive"),
    "ole": ("Office 文档（不是 Excel）", "an Office document that is not Excel"),
    "pdf": ("PDF 文档", "a PDF document"),
    "html": ("网页 (HTML)", "a web page (HTML)"),
    "xml": ("XML 文件", "an XML file"),
    "binary": ("无法识别的二进制数据", "unrecognised binary data"),
}


def _ragged_note(row: int, found: int, expected: int) -> LineNote:
    return LineNote(
        row, f"第 {row} 行字段数为 {found}，表头有 {expected} 列 (row {row} has {found} fields where the header has {expected})"
    )


def _undecodable_note(row: int) -> LineNote:
    return LineNote(row, f"第 {row} 行有无法识别的字符 (row {row} has bytes that are not valid text)")


def _unclosed_quote_note(row: int) -> LineNote:
    return LineNote(row, f"第 {row} 行的引号没有配对，这一行无法读取 (row {row} has a quote that is never closed)")


def _total_note(row: int) -> LineNote:
    return LineNote(row, f"第 {row} 行是合计行，不是线索 (row {row} is a totals row, not a lead)")


def _comment_note(row: int) -> LineNote:
    return LineNote(row, f"第 {row} 行是说明文字，不是线索 (row {row} is a note, not a lead)")


# ---------------------------------------------------------------------------------------------- entry points


def is_lead_file_candidate(path: Path) -> bool:
    """A file worth reading or reporting: not hidden, not an Office lock file ("~$book.xlsx")."""
    name = path.name
    return not name.startswith((".", "~$")) and path.is_file()


def read_lead_file(path: Path, label: str | None = None, mapping: FieldMapping | None = None,
                   content: bytes | None = None) -> list[Sheet]:
    """Read by content-checked type; raise LeadFileError for a file that cannot be read as leads.

    ``content``: the file's bytes when the caller has them already (the bytes it hashed), so what is
    read is exactly what was fingerprinted even if the file changes on disk meanwhile."""
    path = Path(path)
    label = label or path.name
    try:
        return _read(path, label, mapping or load_field_mapping(), content)
    except LeadFileError:
        raise
    except OSError as exc:
        raise LeadFileError(label, "unreadable", *_CANNOT_OPEN) from exc
    except Exception as exc:  # never let a raw library error reach the specialist
        raise LeadFileError(label, "unreadable", *_UNREADABLE) from exc


def _read(path: Path, label: str, mapping: FieldMapping, content: bytes | None = None) -> list[Sheet]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = path.suffix
        if not shown:
            raise LeadFileError(
                label, "unsupported",
                "文件没有扩展名，请另存为 Excel (.xlsx) 或 CSV 后重新放入",
                "the file has no extension; save it as Excel (.xlsx) or CSV and drop it again",
            )
        raise LeadFileError(
            label, "unsupported",
            f"不支持 {shown} 文件，请另存为 Excel (.xlsx) 或 CSV 后重新放入",
            f"{shown} files are not supported; save it as Excel (.xlsx) or CSV and drop it again",
        )
    raw = content if content is not None else path.read_bytes()
    if _is_blank(raw):
        raise LeadFileError(label, "empty", *_EMPTY)
    content = _sniff(raw)
    if content == "encrypted":
        raise LeadFileError(label, "encrypted", *_ENCRYPTED)
    if suffix in EXCEL_SUFFIXES:
        if content in ("xlsx", "xls"):
            return _read_excel(raw, content, label, mapping)
        if content in ("broken_zip", "broken_ole", "binary"):
            raise LeadFileError(label, "corrupt", *_CORRUPT_EXCEL)
    elif suffix in CSV_SUFFIXES:
        if content == "text":
            return [_read_text(raw, suffix, label, mapping)]
        if content == "binary":
            raise LeadFileError(label, "corrupt", *_NOT_TEXT)
    elif content == "parquet":
        return [_read_parquet(raw, label, mapping)]
    elif content in ("broken_parquet", "binary"):
        raise LeadFileError(label, "corrupt", *_CORRUPT_PARQUET)
    content = {"broken_zip": "zip", "broken_ole": "ole", "broken_parquet": "parquet"}.get(content, content)
    zh, en = _CONTENT_NAMES[content]
    shown = path.suffix
    raise LeadFileError(
        label, "mislabelled",
        f"文件名是 {shown}，但内容是{' ' if zh[0].isascii() else ''}{zh}",
        f"named {shown} but the content is {en}",
    )


def _is_blank(raw: bytes) -> bool:
    """0 bytes, or only whitespace (in any of the text encodings read here)."""
    if len(raw) > 4096:
        return not raw[:4096].strip() and not raw.strip()
    if not raw.strip():
        return True
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            if not raw.decode(encoding).strip(" \t\r\n\ufeff\u3000"):
                return True
        except UnicodeDecodeError:
            pass
    return False


# ---------------------------------------------------------------------------------------------- content sniffing


def _sniff(raw: bytes) -> str:
    """What the bytes hold: xlsx, xls, encrypted, parquet, text, docx, pdf, ... or broken_* / binary."""
    if raw.startswith(_ZIP_MAGIC) or raw.startswith(b"PK\x05\x06"):
        return _sniff_zip(raw)
    if raw.startswith(_OLE_MAGIC):
        return _sniff_ole(raw)
    if raw.startswith(_PARQUET_MAGIC):
        return "parquet" if len(raw) >= 12 and raw.endswith(_PARQUET_MAGIC) else "broken_parquet"
    if raw.startswith(b"%PDF"):
        return "pdf"
    head = raw[:65536]
    if _utf16_bom_or_guess(head) is not None:
        return "text"
    if b"\x00" in head:
        return "binary"
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls > len(head) // 50:
        return "binary"
    start = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")[:512].lower()
    if start.startswith("<"):
        if "<html" in start or "<table" in start or "<!doctype html" in start:
            return "html"
        if start.startswith("<?xml") or "<workbook" in start:
            return "xml"
    return "text"


def _sniff_zip(raw: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, KeyError):
        return "broken_zip"
    if _ooxml_workbook_part(names) is not None:
        return "xlsx"
    if any(n.startswith("word/") for n in names):
        return "docx"
    if any(n.startswith("ppt/") for n in names):
        return "pptx"
    if b"opendocument.spreadsheet" in mimetype:
        return "ods"
    if any(n.startswith("Index/") or n == "Index.zip" for n in names):
        return "numbers"
    return "zip"


def _ooxml_workbook_part(names: set[str]) -> str | None:
    for candidate in ("xl/workbook.xml", "xl/workbook.bin"):
        if candidate in names:
            return candidate
    return next((n for n in sorted(names) if n.startswith("xl/") and n.endswith("/workbook.xml")), None)


def _sniff_ole(raw: bytes) -> str:
    try:
        names = set(_Cfb(raw).streams)
    except _CfbError:
        # An OLE file whose directory cannot be walked; the stream names are still UTF-16 in the bytes.
        if "EncryptionInfo".encode("utf-16-le") in raw:
            return "encrypted"
        return "broken_ole"
    if "encryptioninfo" in names or "encryptedpackage" in names:
        return "encrypted"
    if "workbook" in names or "book" in names:
        return "xls"
    return "ole"


# ---------------------------------------------------------------------------------------------- compound files (.xls)


class _CfbError(ValueError):
    pass


class _Cfb:
    """The minimum of an OLE compound file reader: stream names and stream bytes (for .xls merges)."""

    _END = 0xFFFFFFFE
    _FREE = 0xFFFFFFFF

    def __init__(self, data: bytes):
        if len(data) < 512 or not data.startswith(_OLE_MAGIC):
            raise _CfbError("not a compound file")
        self.data = data
        self.sector_size = 1 << struct.unpack_from("<H", data, 0x1E)[0]
        self.mini_size = 1 << struct.unpack_from("<H", data, 0x20)[0]
        if self.sector_size not in (512, 4096) or self.mini_size != 64:
            raise _CfbError("bad sector size")
        n_fat, first_dir = struct.unpack_from("<II", data, 0x2C)
        self.mini_cutoff, first_minifat, _n_minifat, first_difat, n_difat = struct.unpack_from("<IIIII", data, 0x38)
        fat_sectors = [s for s in struct.unpack_from("<109I", data, 0x4C) if s < 0xFFFFFFFA]
        sector, seen = first_difat, 0
        per = self.sector_size // 4 - 1
        while sector < 0xFFFFFFFA and seen < n_difat + 1:
            block = self._sector(sector)
            fat_sectors += [s for s in struct.unpack_from(f"<{per}I", block) if s < 0xFFFFFFFA]
            sector = struct.unpack_from("<I", block, per * 4)[0]
            seen += 1
        fat_sectors = fat_sectors[: max(n_fat, 0)] if n_fat else fat_sectors
        fat = b"".join(self._sector(s) for s in fat_sectors)
        self.fat = struct.unpack(f"<{len(fat) // 4}I", fat[: len(fat) // 4 * 4])
        directory = self._chain(first_dir, self.fat, self._sector)
        self.streams: dict[str, tuple[int, int]] = {}
        root: tuple[int, int] | None = None
        for offset in range(0, len(directory) - 127, 128):
            entry = directory[offset : offset + 128]
            name_len = struct.unpack_from("<H", entry, 64)[0]
            kind = entry[66]
            start, size = struct.unpack_from("<II", entry, 116)
            name = entry[: max(name_len - 2, 0)].decode("utf-16-le", "replace")
            if kind == 5:
                root = (start, size)
            elif kind == 2:
                self.streams.setdefault(name.lower(), (start, size))
        self.root = root or (self._END, 0)
        self.minifat: tuple[int, ...] = ()
        if first_minifat < 0xFFFFFFFA:
            mf = self._chain(first_minifat, self.fat, self._sector)
            self.minifat = struct.unpack(f"<{len(mf) // 4}I", mf[: len(mf) // 4 * 4])

    def _sector(self, sector: int) -> bytes:
        start = (sector + 1) * self.sector_size
        block = self.data[start : start + self.sector_size]
        if len(block) < self.sector_size:
            raise _CfbError("sector outside the file")
        return block

    def _chain(self, start: int, table: Sequence[int], read) -> bytes:
        parts, sector, limit = [], start, len(table) + 1
        while sector not in (self._END, self._FREE):
            if sector >= len(table) or limit == 0:
                raise _CfbError("broken sector chain")
            parts.append(read(sector))
            sector = table[sector]
            limit -= 1
        return b"".join(parts)

    def read(self, name: str) -> bytes:
        start, size = self.streams[name.lower()]
        if size < self.mini_cutoff:
            mini_stream = self._chain(self.root[0], self.fat, self._sector)

            def mini(sector: int) -> bytes:
                return mini_stream[sector * self.mini_size : (sector + 1) * self.mini_size]

            return self._chain(start, self.minifat, mini)[:size]
        return self._chain(start, self.fat, self._sector)[:size]


def _xls_merges(raw: bytes) -> tuple[bool, dict[str, list[tuple[int, int, int, int]]]]:
    """(encrypted?, {sheet name: [(first row, first col, last row, last col), 1-based]}) of a BIFF8 workbook."""
    cfb = _Cfb(raw)
    stream = cfb.read("workbook") if "workbook" in cfb.streams else cfb.read("book")
    sheets: list[tuple[str, int]] = []
    pos, biff8 = 0, False
    while pos + 4 <= len(stream):
        rtype, rlen = struct.unpack_from("<HH", stream, pos)
        body = stream[pos + 4 : pos + 4 + rlen]
        if rtype == 0x0809 and pos == 0:  # BOF
            biff8 = len(body) >= 2 and struct.unpack_from("<H", body)[0] == 0x0600
        elif rtype == 0x002F:  # FILEPASS: the workbook is encrypted
            return True, {}
        elif rtype == 0x0085 and biff8 and len(body) >= 8:  # BOUNDSHEET
            offset, count, flags = struct.unpack_from("<I", body)[0], body[6], body[7]
            if flags & 1:
                text = body[8 : 8 + count * 2].decode("utf-16-le", "replace")
            else:
                text = body[8 : 8 + count].decode("latin-1")
            sheets.append((text, offset))
        elif rtype == 0x000A:  # EOF of the globals
            break
        pos += 4 + rlen
    merges: dict[str, list[tuple[int, int, int, int]]] = {}
    for name, pos in sheets:
        ranges = []
        while pos + 4 <= len(stream):
            rtype, rlen = struct.unpack_from("<HH", stream, pos)
            if rtype == 0x00E5 and rlen >= 2:  # MERGEDCELLS
                count = struct.unpack_from("<H", stream, pos + 4)[0]
                for i in range(min(count, (rlen - 2) // 8)):
                    r1, r2, c1, c2 = struct.unpack_from("<HHHH", stream, pos + 6 + i * 8)
                    ranges.append((r1 + 1, c1 + 1, r2 + 1, c2 + 1))
            elif rtype == 0x000A:
                break
            pos += 4 + rlen
        merges[name] = ranges
    return False, merges


# ---------------------------------------------------------------------------------------------- Excel


_CELL_REF = re.compile(r"^\$?([A-Z]{1,3})\$?(\d+)$")
_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Za-z$]+\d+(?::[A-Za-z$]+\d+)?)\"")


def _cell_position(ref: str) -> tuple[int, int]:
    match = _CELL_REF.match(ref.upper())
    if not match:
        raise ValueError(ref)
    column = 0
    for letter in match.group(1):
        column = column * 26 + ord(letter) - 64
    return int(match.group(2)), column


def _xlsx_merges(raw: bytes) -> dict[str, list[tuple[int, int, int, int]]]:
    """{sheet name: [(first row, first col, last row, last col), 1-based]} from the workbook's XML."""
    merges: dict[str, list[tuple[int, int, int, int]]] = {}
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = set(archive.namelist())
        workbook = _ooxml_workbook_part(names)
        if workbook is None or not workbook.endswith(".xml"):
            return merges
        base = posixpath.dirname(workbook)
        rels_path = posixpath.join(base, "_rels", posixpath.basename(workbook) + ".rels")
        targets: dict[str, str] = {}
        if rels_path in names:
            for element in ElementTree.fromstring(archive.read(rels_path)).iter():
                if element.tag.rsplit("}", 1)[-1] == "Relationship":
                    target = element.get("Target", "")
                    if target.startswith("/"):
                        targets[element.get("Id", "")] = target.lstrip("/")
                    else:
                        targets[element.get("Id", "")] = posixpath.normpath(posixpath.join(base, target))
        for element in ElementTree.fromstring(archive.read(workbook)).iter():
            if element.tag.rsplit("}", 1)[-1] != "sheet":
                continue
            rel_id = next((v for k, v in element.attrib.items() if k.rsplit("}", 1)[-1] == "id"), None)
            part = targets.get(rel_id or "")
            if part not in names:
                continue
            xml = archive.read(part)
            if b"mergeCell" not in xml:
                continue
            ranges = []
            for match in _MERGE_REF.finditer(xml):
                first, _, last = match.group(1).decode().partition(":")
                (r1, c1), (r2, c2) = _cell_position(first), _cell_position(last or first)
                ranges.append((r1, c1, r2, c2))
            merges[element.get("name", "")] = ranges
    return merges


def _read_excel(raw: bytes, content: str, label: str, mapping: FieldMapping) -> list[Sheet]:
    try:
        if content == "xls":
            encrypted, merges = _xls_merges(raw)
            if encrypted:
                raise LeadFileError(label, "encrypted", *_ENCRYPTED)
        else:
            merges = _xlsx_merges(raw)
    except LeadFileError:
        raise
    except Exception:  # merged cells are a nicety; the values are read below anyway
        merges = {}
    try:
        workbook = fastexcel.read_excel(raw)
    except Exception as exc:  # calamine errors are not for specialists
        raise LeadFileError(label, "corrupt", *_DAMAGED_EXCEL) from exc
    sheets: list[Sheet] = []
    any_content = False
    failure: Exception | None = None
    for index, sheet_name in enumerate(workbook.sheet_names):
        try:
            loaded = workbook.load_sheet(index, header_row=None, dtypes="string", skip_rows=0)
            if loaded.visible != "visible":
                continue  # hidden sheets hold drop-down lists and helpers, not leads
            columns = loaded.available_columns()
            first_column = columns[0].absolute_index + 1 if columns else 1
            grid = loaded.to_polars()
        except Exception as exc:  # one damaged sheet (or a chart sheet) does not hide the others
            failure = exc
            continue
        if grid.width == 0 or grid.height == 0:
            continue
        any_content = True
        sheet_label = label if not sheets else f"{label}#{sheet_name}"
        sheet = _sheet_from_grid(grid, first_column, merges.get(sheet_name, []), sheet_label, mapping)
        if sheet is not None:
            sheets.append(sheet)
    if not sheets:
        if failure is not None:
            raise LeadFileError(label, "corrupt", *_DAMAGED_EXCEL) from failure
        if not any_content:
            raise LeadFileError(label, "empty", *_EMPTY_WORKBOOK)
        raise LeadFileError(label, "no_lead_columns", *_NO_LEAD_COLUMNS)
    return sheets


def _excel_text(expr: pl.Expr) -> pl.Expr:
    """Date cells come as "2026-03-05 00:00:00": drop a midnight time; a time-only cell keeps its time."""
    return (
        expr.str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "${1}")
        .str.replace(r"^1899-12-31 (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$", "${1}")
    )


def _apply_merges(grid: pl.DataFrame, merges: list[tuple[int, int, int, int]], first_column: int) -> pl.DataFrame:
    """Fill each merged range with its top-left value (grid row i is sheet row i + 1)."""
    height, width = grid.height, grid.width
    fills: dict[int, list[tuple[int, int, str]]] = {}
    for r1, c1, r2, c2 in merges:
        top, left = r1 - 1, c1 - first_column
        if not (0 <= top < height and 0 <= left < width):
            continue
        value = grid[top, left]
        if value is None:
            continue
        for column in range(max(left, 0), min(c2 - first_column, width - 1) + 1):
            fills.setdefault(column, []).append((top, min(r2, height), value))
    if not fills:
        return grid
    replaced = []
    for column, ranges in fills.items():
        values = grid.to_series(column).to_list()
        for start, stop, value in ranges:
            values[start:stop] = [value] * (stop - start)
        replaced.append(pl.Series(grid.columns[column], values, dtype=pl.Utf8))
    return grid.with_columns(replaced)


def _sheet_from_grid(
    grid: pl.DataFrame, first_column: int, merges: list[tuple[int, int, int, int]], label: str, mapping: FieldMapping
) -> Sheet | None:
    """A sheet's cells (row i of the grid = Excel row i + 1) -> Sheet, or None without a lead header."""
    positions = [f"c{i}" for i in range(grid.width)]
    grid = grid.rename(dict(zip(grid.columns, positions))).select(_excel_text(pl.col(c)).alias(c) for c in positions)
    kinds = grid.select(_row_kind(positions).alias("_kind")).to_series()
    filled = _apply_merges(grid, merges, first_column) if merges else grid
    non_empty = (kinds != "empty").arg_true()
    limit = int(non_empty[HEADER_SEARCH_ROWS - 1]) + 1 if len(non_empty) >= HEADER_SEARCH_ROWS else grid.height
    head_rows = filled.head(limit).rows()
    header_index = _find_header(head_rows, mapping)
    if header_index is None:
        return None
    header_cells = list(head_rows[header_index])
    numbers = [first_column + i for i in range(len(positions))]
    data = filled.slice(header_index + 1).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + (header_index + 2)).alias(ROW_COLUMN),
        kinds.slice(header_index + 1).alias("_kind"),
    )
    return _finish(label, data, positions, header_cells, numbers, header_index + 1, None, ())


# ---------------------------------------------------------------------------------------------- shared


def _row_kind(columns: Sequence[str]) -> pl.Expr:
    """'empty', 'total', 'note' or 'data' for each row of all-text columns."""
    if not columns:
        return pl.lit("empty")
    present = [pl.col(c).str.contains(r"\S").fill_null(False) for c in columns]
    count = pl.sum_horizontal([p.cast(pl.UInt32) for p in present])
    first = pl.coalesce([pl.when(p).then(pl.col(c)) for p, c in zip(present, columns)]).str.strip_chars()
    is_total = first.str.replace_all(_SPACES, "").str.contains("(?s)" + _TOTAL_START)
    is_note = (count == 1) & first.str.contains(_NOTE_START)
    return (
        pl.when(count == 0).then(pl.lit("empty"))
        .when(is_total.fill_null(False)).then(pl.lit("total"))
        .when(is_note.fill_null(False)).then(pl.lit("note"))
        .otherwise(pl.lit("data"))
    )


def _line_kind(cells: Sequence[str | None]) -> str:
    """Python twin of _row_kind, for the few CSV lines that do not fit the header."""
    present = [c.strip() for c in cells if c is not None and c.strip()]
    if not present:
        return "empty"
    if _TOTAL_RE.match(_SPACES_RE.sub("", present[0])):
        return "total"
    if len(present) == 1 and _NOTE_RE.match(present[0]):
        return "note"
    return "data"


def _find_header(rows: Iterable[Sequence[str | None]], mapping: FieldMapping) -> int | None:
    """Index of the row that maps most cells to lead fields (first on ties) and names a key field."""
    best, best_score, seen = None, 0, 0
    for index, row in enumerate(rows):
        cells = [c for c in row if c is not None and c.strip()]
        if not cells:
            continue
        seen += 1
        if seen > HEADER_SEARCH_ROWS:
            break
        fields = [mapping.canonical_for(c) for c in cells]
        score = sum(f is not None for f in fields)
        if score > best_score and KEY_FIELDS.intersection(fields):
            best, best_score = index, score
    return best


def _column_names(cells: Sequence[str | None], numbers: Sequence[int]) -> list[str]:
    """Header text stripped; blank -> 列{n}; repeats -> 手机(2), which still maps like 手机."""
    taken = {ROW_COLUMN}
    names = []
    for cell, number in zip(cells, numbers):
        base = (cell or "").strip() or f"列{number}"
        name, k = base, 2
        while name in taken:
            name, k = f"{base}({k})", k + 1
        taken.add(name)
        names.append(name)
    return names


def _finish(
    label: str,
    data: pl.DataFrame,
    positions: list[str],
    header_cells: Sequence[str | None],
    numbers: Sequence[int],
    header_row: int,
    encoding: str | None,
    rejected: Sequence[LineNote],
) -> Sheet:
    """data: positional text columns plus ROW_COLUMN and "_kind" -> a Sheet with named data rows."""
    skipped = data.filter(pl.col("_kind").is_in(["total", "note"])).select(ROW_COLUMN, "_kind")
    notes = [
        _total_note(row) if kind == "total" else _comment_note(row)
        for row, kind in zip(skipped[ROW_COLUMN].to_list(), skipped["_kind"].to_list())
    ]
    rows = data.filter(pl.col("_kind") == "data")
    names = _column_names(header_cells, numbers)
    frame = rows.select(pl.col(ROW_COLUMN).cast(pl.Int64), *(pl.col(p).alias(n) for p, n in zip(positions, names)))
    # A column with neither a header nor any value is layout, not data.
    blank = [n for n, cell in zip(names, header_cells) if not (cell or "").strip()]
    if blank:
        counts = frame.select(pl.col(blank).is_not_null().sum())
        frame = frame.drop([n for n in blank if counts[n][0] == 0])
    return Sheet(
        label=label,
        frame=frame,
        rejected=tuple(sorted(rejected, key=lambda n: n.row)),
        skipped=tuple(notes),
        header_row=header_row,
        encoding=encoding,
    )


# ---------------------------------------------------------------------------------------------- text (CSV/TXT/TSV)


def _utf16_bom_or_guess(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return None
    nuls = head.count(0)
    if nuls == 0 or len(head) < 4:
        return None
    half = len(head) // 2
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd >= 0.3 * half and even <= 0.1 * odd:
        return "utf-16-le"
    if even >= 0.3 * half and odd <= 0.1 * even:
        return "utf-16-be"
    return None


def _decode(raw: bytes) -> tuple[str, str, bool]:
    """(text, encoding, whether undecodable bytes were replaced by REPLACEMENT)."""
    utf16 = _utf16_bom_or_guess(raw[:65536])
    if utf16 is not None:
        try:
            return raw.decode(utf16), utf16, False
        except UnicodeDecodeError:
            return raw.decode(utf16, "replace"), utf16, True
    if raw.startswith(codecs.BOM_UTF8):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig", False
        except UnicodeDecodeError:
            return raw[3:].decode("utf-8", "replace"), "utf-8-sig", True
    try:
        return raw.decode("utf-8"), "utf-8", False
    except UnicodeDecodeError:
        pass
    # UTF-8 Chinese text often happens to be valid GB18030 too (as mojibake): a file whose non-ASCII
    # text is overwhelmingly valid UTF-8 is UTF-8 with a few bad bytes, even if GB18030 would "work".
    as_utf8 = raw.decode("utf-8", "replace")
    utf8_errors = as_utf8.count(REPLACEMENT)
    utf8_chars = len(as_utf8) - len(as_utf8.encode("ascii", "ignore")) - utf8_errors
    if utf8_chars >= 10 * utf8_errors:
        return as_utf8, "utf-8", True
    try:
        return raw.decode("gb18030"), "gb18030", False
    except UnicodeDecodeError:
        pass
    as_gb = raw.decode("gb18030", "replace")
    if as_gb.count(REPLACEMENT) < utf8_errors:
        return as_gb, "gb18030", True
    return as_utf8, "utf-8", True


def _numbered_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
    """(Excel row number, cells) of every record; cells None for a record whose quote is never closed.

    An opening quote that is never closed would swallow the rest of the file into one cell (that is
    what Excel shows too); here it rejects only its own line and reading goes on with the next line.
    """
    source = io.StringIO(text, newline="")
    number = 0
    for _ in range(_MAX_QUOTE_REPAIRS + 1):
        reader = csv.reader(source, delimiter=delimiter, strict=False)
        held: list[str] | None = None
        held_start = start = source.tell()
        broken_at: int | None = None
        try:
            for record in reader:
                if held is not None:
                    number += 1
                    yield number, held
                held, held_start = record, start
                start = source.tell()
        except csv.Error:  # a field grew past the csv field limit: a quote was never closed
            broken_at = start
        if held is not None:
            if broken_at is None and _quote_runs_to_end(text, held_start, delimiter, held):
                broken_at = held_start
            else:
                number += 1
                yield number, held
        if broken_at is None:
            return
        number += 1
        yield number, None
        source.seek(broken_at)
        source.readline()
    raise csv.Error("too many quotes that are never closed")


def _quote_runs_to_end(text: str, start: int, delimiter: str, record: list[str]) -> bool:
    """Whether the last record is a quoted cell that swallowed the lines after it up to the end."""
    if not any("\n" in cell or "\r" in cell for cell in record):
        return False
    try:
        next(csv.reader(io.StringIO(text[start:], newline=""), delimiter=delimiter, strict=True))
    except csv.Error:
        return True
    return False


def _choose_delimiter(text: str, suffix: str, mapping: FieldMapping) -> tuple[str, int] | None:
    """(delimiter, header record index) that splits a header into the most mapped columns."""
    order = ("\t", ",", ";", "|") if suffix == ".tsv" else DELIMITERS
    best: tuple[str, int] | None = None
    best_score = 0
    sample = text[:_SNIFF_CHARS]  # the header is near the top; do not copy a big file four times
    for delimiter in order:
        head: list[list[str]] = []
        non_empty = 0
        try:
            for _number, record in _numbered_records(sample, delimiter):
                head.append(record or [])
                if any(c.strip() for c in record or ()):
                    non_empty += 1
                    if non_empty >= HEADER_SEARCH_ROWS:
                        break
        except csv.Error:
            continue
        index = _find_header(head, mapping)
        if index is None:
            continue
        score = sum(mapping.canonical_for(c) is not None for c in head[index] if c.strip())
        if score > best_score:
            best, best_score = (delimiter, index), score
    return best


def _read_text(raw: bytes, suffix: str, label: str, mapping: FieldMapping) -> Sheet:
    text, encoding, replaced = _decode(raw)
    if not text.strip(" \t\r\n\ufeff\u3000\x00"):
        raise LeadFileError(label, "empty", *_EMPTY)
    choice = _choose_delimiter(text, suffix, mapping)
    if choice is None:
        raise LeadFileError(label, "no_lead_columns", *_NO_LEAD_COLUMNS)
    delimiter, header_index = choice
    records = _numbered_records(text, delimiter)
    header: list[str] = []
    for number, cells in records:
        if number == header_index + 1:
            header = cells or []
            break
    full_width = len(header)
    width = full_width
    while width > 1 and not header[width - 1].strip():
        width -= 1  # trailing blank header cells: rows may stop before them
    rows: list[list[str]] = []
    row_numbers: list[int] = []
    rejected: list[LineNote] = []
    skipped: list[tuple[int, str]] = []
    number = header_index + 1
    try:
        for number, record in records:
            if record is None:
                rejected.append(_unclosed_quote_note(number))
                continue
            count = len(record)
            if replaced and REPLACEMENT in "".join(record):
                if _line_kind(record) != "empty":
                    rejected.append(_undecodable_note(number))
                continue
            if count != full_width:
                if count > full_width and not "".join(record[full_width:]).strip():
                    record = record[:full_width]
                elif width <= count < full_width:
                    record = record + [""] * (full_width - count)
                else:
                    kind = _line_kind(record)
                    if kind == "data":
                        rejected.append(_ragged_note(number, count, full_width if count > full_width else width))
                    elif kind != "empty":
                        skipped.append((number, kind))
                    continue
            rows.append(record)
            row_numbers.append(number)
    except csv.Error as exc:  # too many quotes that are never closed: this is not a usable CSV
        raise LeadFileError(
            label, "corrupt",
            f"第 {number + 1} 行之后有太多没有配对的引号，无法读取",
            f"after row {number + 1} too many quotes are never closed; the file cannot be read",
        ) from exc
    positions = [f"c{i}" for i in range(full_width)]
    data = pl.DataFrame(rows or None, schema={p: pl.Utf8 for p in positions}, orient="row")
    data = (
        data.lazy()
        .select(pl.when(pl.col(p) != "").then(pl.col(p)).alias(p) for p in positions)  # "" is a blank cell
        .with_columns(pl.Series(ROW_COLUMN, row_numbers, dtype=pl.Int64), _row_kind(positions).alias("_kind"))
        .collect()
    )
    if skipped:  # lines that did not fit the header but are totals or notes
        extra = pl.DataFrame(
            {ROW_COLUMN: [n for n, _ in skipped], "_kind": [k for _, k in skipped]},
            schema={ROW_COLUMN: pl.Int64, "_kind": pl.Utf8},
        )
        data = pl.concat([data, extra], how="diagonal").sort(ROW_COLUMN)
    return _finish(label, data, positions, header, range(1, full_width + 1), header_index + 1, encoding, rejected)


# ---------------------------------------------------------------------------------------------- Parquet


def _read_parquet(raw: bytes, label: str, mapping: FieldMapping) -> Sheet:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(raw))
    except Exception as exc:  # pyarrow errors are not for specialists
        raise LeadFileError(label, "corrupt", *_CORRUPT_PARQUET) from exc
    names = _column_names([str(n) for n in table.column_names], range(1, table.num_columns + 1))
    if not any(mapping.canonical_for(n) in KEY_FIELDS for n in names):
        raise LeadFileError(label, "no_lead_columns", *_NO_LEAD_COLUMNS)
    columns = [_arrow_to_text(table.column(i), name) for i, name in enumerate(names)]
    frame = pl.DataFrame(columns) if columns else pl.DataFrame()
    frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_COLUMN)).select(
        ROW_COLUMN, *names
    )
    present = [(pl.col(n).is_not_null() & (pl.col(n).str.strip_chars() != "")) for n in names]
    frame = frame.filter(pl.any_horizontal(present))
    return Sheet(label=label, frame=frame, header_row=0)


def _arrow_to_text(column, name: str) -> pl.Series:
    try:
        series = pl.from_arrow(column)
        assert isinstance(series, pl.Series)
        return _series_to_text(series.rename(name))
    except Exception:  # an exotic type: fall back to Python values
        return pl.Series(name, [_value_text(v) for v in column.to_pylist()], dtype=pl.Utf8)


def _scalar_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    """Text expression for a non-nested dtype, or None when the dtype needs Python."""
    if dtype == pl.Utf8:
        return expr
    if dtype.is_float():
        whole = expr.is_finite() & (expr == expr.round(0)) & (expr.abs() < 1e15)
        return (
            pl.when(expr.is_nan()).then(None)
            .when(whole).then(expr.cast(pl.Int64).cast(pl.Utf8))
            .otherwise(expr.cast(pl.Utf8))
        )
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            expr = expr.dt.replace_time_zone(None)
        return expr.dt.to_string("%Y-%m-%d %H:%M:%S")
    if dtype == pl.Time:
        return expr.dt.to_string("%H:%M:%S")
    if dtype.is_integer() or dtype.is_decimal() or dtype in (pl.Boolean, pl.Null, pl.Categorical):
        return expr.cast(pl.Utf8)
    if isinstance(dtype, (pl.Enum, pl.Duration)):
        return expr.cast(pl.Utf8)
    return None


def _series_to_text(series: pl.Series) -> pl.Series:
    dtype = series.dtype
    expr = _scalar_text(pl.col(series.name), dtype)
    if expr is not None:
        return series.to_frame().select(expr.alias(series.name)).to_series()
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        element = _scalar_text(pl.element(), inner) if inner is not None else None
        if element is not None:  # several mobiles in one cell -> "138...;139..."
            column = pl.col(series.name)
            if isinstance(dtype, pl.Array):
                column = column.cast(pl.List(inner))
            joined = column.list.eval(element).list.drop_nulls().list.join(";")
            return series.to_frame().select(pl.when(joined != "").then(joined).alias(series.name)).to_series()
    return pl.Series(series.name, [_value_text(v) for v in series.to_list()], dtype=pl.Utf8)


def _value_text(value) -> str | None:
    """Python fallback: structs and lists of structs as JSON text, bytes as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)

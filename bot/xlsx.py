"""A minimal, fast XLSX writer for the reports' row lists.

A busy week at a million cases puts ~24,000 cases behind the figures, 300,000 cells.
openpyxl (even write-only) spends ~100 µs a cell building an element tree per cell, and
XlsxWriter about half that; the report had a 2 s budget for everything. The sheets here
need four kinds of cell — text, number, boolean, date — and no formulas, styles beyond a
date format, merged cells or shared strings, so the SpreadsheetML is written directly:
one XML string per sheet, zipped by the standard library. openpyxl reads the result back
in the tests, cell by cell.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

Cell = str | int | float | bool | datetime | date | None

DATE_FORMAT = "yyyy-mm-dd hh:mm"
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 0 in the 1900 date system
_DAY = timedelta(days=1)
# Characters XML 1.0 does not allow (openpyxl refuses them too): dropped.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def _column(index: int) -> str:
    """The letters of a 0-based column index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text(value: str) -> str:
    cleaned = escape(_ILLEGAL.sub("", value))
    if cleaned != cleaned.strip():
        return f'<is><t xml:space="preserve">{cleaned}</t></is>'
    return f"<is><t>{cleaned}</t></is>"


def _sheet_xml(rows: Iterable[Sequence[Cell]]) -> bytes:
    parts = [_HEAD, f'<worksheet xmlns="{_MAIN}"><sheetData>']
    letters: list[str] = []
    # Report columns repeat a few values (units, tracks, states, outcomes) row after row.
    texts: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        while len(letters) < len(row):
            letters.append(_column(len(letters)))
        cells = []
        for letter, value in zip(letters, row, strict=False):
            if value is None or value == "":
                continue
            ref = f"{letter}{number}"
            if isinstance(value, str):
                text = texts.get(value)
                if text is None:
                    text = texts[value] = _text(value)
                cells.append(f'<c r="{ref}" t="inlineStr">{text}</c>')
            elif isinstance(value, bool):
                cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, datetime):
                if value.tzinfo is not None:
                    raise ValueError("XLSX has no time zones: pass local naive datetimes")
                serial = (value - _EXCEL_EPOCH) / _DAY
                cells.append(f'<c r="{ref}" s="1"><v>{serial!r}</v></c>')
            elif isinstance(value, date):
                serial = (datetime.combine(value, datetime.min.time()) - _EXCEL_EPOCH) / _DAY
                cells.append(f'<c r="{ref}" s="1"><v>{serial!r}</v></c>')
            elif isinstance(value, int) or math.isfinite(value):
                cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
        parts.append(f'<row r="{number}">{"".join(cells)}</row>')
    parts.append("</sheetData></worksheet>")
    return "".join(parts).encode("utf-8")


def workbook_bytes(sheets: Sequence[tuple[str, Iterable[Sequence[Cell]]]]) -> bytes:
    """An XLSX file with one sheet per (name, rows); dates shown as DATE_FORMAT."""
    names = [name for name, _ in sheets]
    if len(set(names)) != len(names) or any(not 0 < len(n) <= 31 for n in names):
        raise ValueError("sheet names must be unique and 1-31 characters long")
    content_types = (
        f"{_HEAD}<Types xmlns="
        '"http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, len(sheets) + 1)
        )
        + "</Types>"
    )
    package_rels = (
        f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )
    workbook = (
        f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}"><sheets>'
        + "".join(
            f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(names, start=1)
        )
        + "</sheets></workbook>"
    )
    workbook_rels = (
        f'{_HEAD}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships">'
        + "".join(
            f'<Relationship Id="rId{i}" Type="{_RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(sheets) + 1)
        )
        + f'<Relationship Id="rId{len(sheets) + 1}" Type="{_RELS}/styles" '
        'Target="styles.xml"/></Relationships>'
    )
    styles = (
        f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
        f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{DATE_FORMAT}"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
        "</borders>"
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        "</cellStyleXfs>"
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" '
        'applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )
    buffer = io.BytesIO()
    # Level 1: most of the size gain of deflate at a fraction of its time.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", package_rels)
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        archive.writestr("xl/styles.xml", styles)
        for i, (_, rows) in enumerate(sheets, start=1):
            archive.writestr(f"xl/worksheets/sheet{i}.xml", _sheet_xml(rows))
    return buffer.getvalue()

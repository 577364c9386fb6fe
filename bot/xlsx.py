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
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from xml.sax.saxutils import escape, quoteattr

Cell = str | int | float | bool | datetime | date | None

DATE_FORMAT = "yyyy-mm-dd hh:mm"
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 0 in the 1900 date system
_DAY = timedelta(days=1)
_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIX_SERIAL_US = 25_569 * _DAY_US  # 1970-01-01 as an Excel serial, in microseconds
_MICROSECOND = timedelta(microseconds=1)
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


class _LocalSerials:
    """Excel serials of aware moments as wall-clock times in one zone.

    The same number `(moment.astimezone(zone).replace(tzinfo=None) - 1899-12-30) / 1 day`
    gives, for a fraction of its cost: a report's sheet has tens of thousands of dates,
    and the zone's offset is looked up once per hour of them. An hour with a change of
    offset inside it is converted moment by moment.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int | None] = {}  # UTC hour -> offset (µs), None: it changes

    def _offset(self, moment: datetime) -> int:
        local = moment.astimezone(self.zone)
        offset = local.utcoffset()
        assert offset is not None
        return offset // _MICROSECOND

    def serial(self, moment: datetime) -> float:
        """The serial of `moment` (aware) as a wall-clock time in the zone."""
        return self.stored_serial((moment - _UTC_EPOCH) // _MICROSECOND, moment)

    def stored_serial(self, us: int, moment: datetime | None = None) -> float:
        """The serial of a moment given as µs since the Unix epoch (UTC)."""
        hour = us // _HOUR_US
        if hour in self._offsets:
            offset = self._offsets[hour]
        else:
            first = _UTC_EPOCH + timedelta(microseconds=hour * _HOUR_US)
            offset = self._offset(first)
            if offset != self._offset(first + timedelta(microseconds=_HOUR_US - 1)):
                offset = None
            self._offsets[hour] = offset
        if offset is None:
            offset = self._offset(moment or _UTC_EPOCH + timedelta(microseconds=us))
        # Integer microseconds, one true division: exactly the timedelta division's float.
        return (us + offset + _UNIX_SERIAL_US) / _DAY_US


def _body(value: Cell, serials: _LocalSerials | None) -> str | None:
    """A cell's XML after its `<c` and reference; None for a cell left empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return f' t="inlineStr">{_text(value)}</c>'
    if isinstance(value, bool):
        return f' t="b"><v>{int(value)}</v></c>'
    if isinstance(value, datetime):
        if value.tzinfo is None:
            serial = (value - _EXCEL_EPOCH) / _DAY
        elif serials is not None:
            serial = serials.serial(value)
        else:
            raise ValueError("XLSX has no time zones: pass local naive datetimes or a zone")
        return f' s="1"><v>{serial!r}</v></c>'
    if isinstance(value, date):
        serial = (datetime.combine(value, datetime.min.time()) - _EXCEL_EPOCH) / _DAY
        return f' s="1"><v>{serial!r}</v></c>'
    if isinstance(value, int) or math.isfinite(value):
        return f"><v>{value!r}</v></c>"
    return None


def _sheet_xml(
    rows: Iterable[Sequence[Cell]], zone: tzinfo | None = None, stored: Collection[int] = ()
) -> bytes:
    parts = [_HEAD, f'<worksheet xmlns="{_MAIN}"><sheetData>']
    letters: list[str] = []
    serials = _LocalSerials(zone) if zone is not None else None
    if stored and serials is None:
        raise ValueError("XLSX has no time zones: stored moments need a zone")
    moment_column = [False] * (max(stored) + 1 if stored else 0)
    for index in stored:
        moment_column[index] = True
    # Report columns repeat a few values (units, tracks, states, outcomes) row after row:
    # their cells' XML is made once.
    texts: dict[str, str | None] = {}
    for number, row in enumerate(rows, start=1):
        while len(letters) < len(row):
            letters.append(_column(len(letters)))
        cells = [f'<row r="{number}">']
        # A cell names its place only after an empty one: without a reference, a cell is
        # the one after the cell before it (SpreadsheetML's rule, which openpyxl follows),
        # and most rows have no gaps — a third of the sheet's bytes and formatting saved.
        gap = True
        for index, (letter, value) in enumerate(zip(letters, row, strict=False)):
            if type(value) is int and index < len(moment_column) and moment_column[index]:
                body = f' s="1"><v>{serials.stored_serial(value)!r}</v></c>'  # type: ignore[union-attr]
            elif type(value) is str:
                body = texts.get(value)
                if body is None and value not in texts:
                    body = texts[value] = _body(value, None)
            elif serials is not None and type(value) is datetime and value.tzinfo is not None:
                body = f' s="1"><v>{serials.serial(value)!r}</v></c>'
            else:
                body = _body(value, serials)
            if body is None:
                gap = True
                continue
            cells.append(f'<c r="{letter}{number}"{body}' if gap else f"<c{body}")
            gap = False
        cells.append("</row>")
        parts.append("".join(cells))
    parts.append("</sheetData></worksheet>")
    return "".join(parts).encode("utf-8")


def workbook_bytes(
    sheets: Sequence[tuple[str, Iterable[Sequence[Cell]]]],
    zone: tzinfo | None = None,
    *,
    stored_moments: Mapping[str, Collection[int]] | None = None,
) -> bytes:
    """An XLSX file with one sheet per (name, rows); dates shown as DATE_FORMAT.

    Naive datetimes are written as they are; aware ones as wall-clock times in `zone`
    (refused without one: a spreadsheet has no time zones). `stored_moments` names, by
    sheet, the (0-based) columns whose integers are moments as storage keeps them (µs
    since the Unix epoch, UTC), shown as dates in `zone` like aware datetimes — a
    report's rows have ~100,000 of them, not worth a datetime each.
    """
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
            stored = (stored_moments or {}).get(names[i - 1], ())
            archive.writestr(f"xl/worksheets/sheet{i}.xml", _sheet_xml(rows, zone, stored))
    return buffer.getvalue()

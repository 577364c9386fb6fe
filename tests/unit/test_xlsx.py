"""The reports' XLSX writer: what openpyxl reads back is what was written, cell by cell."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from bot.xlsx import DATE_FORMAT, workbook_bytes


def test_every_kind_of_cell_reads_back_as_written() -> None:
    rows = [
        ("number", "unit", "filed", "count", "share", "flag", "note"),
        ("CZ2026-000001", "ZJJ", datetime(2026, 11, 23, 9, 30, 15), 3, 0.75, True, "住房 & <水>"),
        ("CZ2026-000002", None, datetime(2026, 11, 24, 17, 30), 0, -1.5, False, "  spaced "),
        ("CZ2026-000003", "", date(2026, 11, 25), 10**12, 1e-05, None, "bell\x07 gone"),
    ]
    data = workbook_bytes([("cases", rows), ("单位 units", [("place",), (1,), (None,)])])
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["cases", "单位 units"]
    back = list(book["cases"].iter_rows(values_only=True))
    assert back[0] == rows[0]
    assert back[1] == rows[1]
    assert back[2] == ("CZ2026-000002", None, datetime(2026, 11, 24, 17, 30), 0, -1.5, False,
                       "  spaced ")
    assert back[3] == ("CZ2026-000003", None, datetime(2026, 11, 25), 10**12, 1e-05, None,
                       "bell gone")
    assert book["cases"]["C2"].number_format == DATE_FORMAT
    assert list(book["单位 units"].iter_rows(values_only=True)) == [("place",), (1,)]


def test_columns_past_z_keep_their_places() -> None:
    row = tuple(f"c{i}" for i in range(60))
    book = load_workbook(io.BytesIO(workbook_bytes([("wide", [row, (None,) * 59 + ("last",)])])))
    sheet = book["wide"]
    assert sheet["AA1"].value == "c26" and sheet["BH1"].value == "c59"
    assert sheet["BH2"].value == "last" and sheet["A2"].value is None


def test_the_package_holds_the_parts_a_spreadsheet_needs() -> None:
    archive = zipfile.ZipFile(io.BytesIO(workbook_bytes([("cases", [("x",)])])))
    assert set(archive.namelist()) == {
        "[Content_Types].xml",
        "_rels/.rels",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
        "xl/worksheets/sheet1.xml",
    }


def test_aware_datetimes_and_bad_sheet_names_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        workbook_bytes([("cases", [(datetime(2026, 1, 1).astimezone(),)])])
    with pytest.raises(ValueError, match="sheet names"):
        workbook_bytes([("a", []), ("a", [])])

"""The reports' XLSX writer: what openpyxl reads back is what was written, cell by cell."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

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


def test_aware_moments_are_written_as_wall_clock_times_in_the_given_zone() -> None:
    # Lord Howe Island moves its clocks by half an hour at 15:30 UTC: a change of offset
    # inside an hour, besides Berlin's on the hour and Shanghai's none.
    cases = {
        "Australia/Lord_Howe": datetime(2026, 10, 3, 15, 10, tzinfo=UTC),
        "Europe/Berlin": datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        "Asia/Shanghai": datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
    }
    steps = [timedelta(minutes=m, microseconds=u) for m in (0, 19, 20, 40, 50, 61)
             for u in (0, 999_999)]
    for name, first in cases.items():
        zone = ZoneInfo(name)
        moments = [first + step for step in steps]
        sheet = zipfile.ZipFile(io.BytesIO(workbook_bytes([("s", [(m,) for m in moments])], zone)))
        written = re.findall(r"<v>([^<]+)</v>", sheet.read("xl/worksheets/sheet1.xml").decode())
        expected = [
            repr((m.astimezone(zone).replace(tzinfo=None) - datetime(1899, 12, 30))
                 / timedelta(days=1))
            for m in moments
        ]
        assert written == expected, name


def test_stored_moments_are_written_as_the_aware_datetimes_they_stand_for() -> None:
    zone = ZoneInfo("Europe/Berlin")  # a change of offset among the moments
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    moments = [datetime(2026, 3, 28, 23, 0, tzinfo=UTC) + timedelta(minutes=47 * i, microseconds=i)
               for i in range(6)]
    stored = [(m - epoch) // timedelta(microseconds=1) for m in moments]
    rows = [("when", "count", "stored")] + [(m, 7, s) for m, s in zip(moments, stored, strict=True)]
    data = workbook_bytes([("s", rows)], zone, stored_moments={"s": [2]})
    back = list(load_workbook(io.BytesIO(data))["s"].iter_rows(values_only=True))
    assert back[0] == rows[0]
    for (when, count, written) in back[1:]:
        assert (written, count) == (when, 7)  # a date like the datetime's; other ints stay
    with pytest.raises(ValueError, match="zone"):
        workbook_bytes([("s", rows)], stored_moments={"s": [2]})

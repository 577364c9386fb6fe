"""The intake benchmark's quick version: a burst of first-time citizens, each filed once.

Timings are the benchmark's business (bench/intake.py); this checks only what must hold
however fast or slow the machine is.
"""

from __future__ import annotations

from pathlib import Path

from bench.intake import QUICK_CITIZENS, measure
from bot.app import DEFAULT_HTTP_BACKEND


async def test_a_burst_of_first_time_citizens_files_every_case_exactly_once(tmp_path: Path):
    rows, data = await measure(QUICK_CITIZENS, [DEFAULT_HTTP_BACKEND], tmp_path, None)
    check = data["runs"][DEFAULT_HTTP_BACKEND]["check"]
    assert check["cases"] == QUICK_CITIZENS
    assert check["citizens_with_one_case"] == QUICK_CITIZENS
    assert check["distinct_numbers"] == QUICK_CITIZENS
    assert check["numbers_told"] == QUICK_CITIZENS  # each citizen was told a stored number
    wenzheng = data["runs"][DEFAULT_HTTP_BACKEND]["wenzheng"]
    assert wenzheng["bot"]["updates"] == 4 * QUICK_CITIZENS  # text, category, district, submit
    assert {row.name for row in rows} >= {"updates/s", "bot CPU ms/update", "cases/s"}

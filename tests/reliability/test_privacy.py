"""Privacy (DESIGN §7, STYLE 11): the checker every Harness scenario runs, and proof it bites.

The checker itself lives in tests/privacy.py; tests/e2e/conftest.py's `harness` fixture runs
it at the end of every scenario that uses the Harness (all of tests/e2e but the process
tests, and the reliability suites here), so a leak anywhere fails that scenario.
"""

from __future__ import annotations

import logging

from bot import services
from tests.conftest import PEOPLE
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Harness
from tests.privacy import Citizen, Recorder, log_leaks, unit_group_leaks
from tests.reliability._support import build_city, file_case

harness = e2e.harness

ZHANG = Citizen(3001, "张", "三", "zhangsan", "+86 139 1234 5678",
                consented_cases=frozenset({"CZ2026-000002"}))
UNIT_CHAT = -100


def test_the_checker_catches_each_kind_of_identity_in_a_unit_group():
    transcript = [
        (UNIT_CHAT, "CZ2026-000001 来自 张 三，请处理"),
        (UNIT_CHAT, "CZ2026-000001 @ZhangSan 反映"),
        (UNIT_CHAT, "CZ2026-000001 id 3001"),
        (UNIT_CHAT, "CZ2026-000001 联系电话 13912345678"),
        (UNIT_CHAT, "CZ2026-000001 联系电话 139-1234-5678"),
    ]
    leaks = unit_group_leaks(transcript, {UNIT_CHAT}, [ZHANG])
    assert [leak.what for leak in leaks] == [
        "citizen 3001's name", "citizen 3001's username", "citizen 3001's Telegram id",
        "citizen 3001's phone", "citizen 3001's phone"]


def test_the_checker_allows_consent_staff_chats_and_look_alike_numbers():
    transcript = [
        (UNIT_CHAT, "CZ2026-000002 张三 13912345678"),  # the citizen agreed for this case
        (-200, "CZ2026-000001 张三 @zhangsan id 3001"),  # the desk sees identities
        (UNIT_CHAT, "CZ2026-000001 3号楼 30011 户"),  # 3001 inside a longer number
        (UNIT_CHAT, "CZ2026-000001 张先生家门口"),  # a one-letter name is not a name match
    ]
    assert unit_group_leaks(transcript, {UNIT_CHAT}, [ZHANG]) == []


def test_the_checker_catches_phones_and_names_in_info_logs_only():
    def record(level: int, message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("bot.x", level, __file__, 1, message, args, None)

    records = [
        record(logging.INFO, "case %s: filed by %s", "CZ2026-000001", "张三"),
        record(logging.WARNING, "could not reach %s", "13912345678"),
        record(logging.INFO, "contact +86 139 1234 5678 saved"),
        record(logging.DEBUG, "debug may say 张三 13912345678"),
        record(logging.INFO, "case CZ2026-000001: filed (update 77)"),
    ]
    leaks = log_leaks(records, ["张三", "张"], ["13912345678"])
    assert [(leak.where, leak.what) for leak in leaks] == [
        ("log INFO bot.x", "the name '张三'"),
        ("log WARNING bot.x", "a phone number"),
        ("log INFO bot.x", "a phone number"),
    ]


async def test_the_harness_check_finds_a_leak_the_bot_would_make(harness: Harness):
    """The teardown hook reads the real transcript and log: a leak there is found."""
    city = await build_city(harness)
    citizen = city.people["citizen"]
    number = await file_case(city)
    await services.assign_case(city.svc, PEOPLE.dispatcher, number, "ZJJ", track="routine")
    await harness.drained()
    assert await harness.privacy_leaks() == []
    # What a careless renderer might post, and a careless log line.
    await harness.app.bot.send_message(
        city.units["ZJJ"].id, f"{number}: {citizen.full_name} @{citizen.username}")
    logging.getLogger("bot.services").info("case %s: phone %s", number, "13912345678")
    leaks = await harness.privacy_leaks()
    assert {leak.what for leak in leaks} == {
        f"citizen {citizen.id}'s name", f"citizen {citizen.id}'s username", "a phone number"}
    harness.check_privacy = False  # this scenario leaks on purpose


async def test_a_citizen_who_agreed_is_shown_to_the_unit_and_that_is_no_leak(harness: Harness):
    city = await build_city(harness)
    number = await file_case(city, contact=True)
    await services.assign_case(city.svc, PEOPLE.dispatcher, number, "ZJJ", track="routine")
    await harness.drained()
    card = await harness.sim.wait_for(city.units["ZJJ"], number, since=0)
    assert "13912345678" in card.text
    assert await harness.privacy_leaks() == []


async def test_without_consent_the_unit_card_carries_no_identity(harness: Harness):
    city = await build_city(harness)
    citizen = city.people["citizen"]
    number = await file_case(city)
    await services.assign_case(city.svc, PEOPLE.dispatcher, number, "ZJJ", track="routine")
    card = await harness.sim.wait_for(city.units["ZJJ"], number, since=0)
    desk = await harness.sim.wait_for(city.desk, lambda m: "resident_0" in m.text, since=0)
    assert citizen.username not in card.text and str(citizen.id) not in card.text
    assert number in desk.text  # the desk (staff) does see who wrote


def test_the_recorder_keeps_records_for_the_checker():
    recorder = Recorder()
    logger = logging.getLogger("tests.privacy.demo")
    logger.addHandler(recorder)
    logger.setLevel(logging.INFO)
    try:
        logger.info("a line with 13912345678")
    finally:
        logger.removeHandler(recorder)
    assert len(log_leaks(recorder.records, [])) == 1

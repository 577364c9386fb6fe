"""Abuse and bad input (issue 7 §3), through the real application and the simulator.

A flood from one citizen is throttled without touching anyone else; the same message sent
again is linked to the first case; and hypothesis throws every kind of update at the bot
from every role: nothing reaches the error handler, nothing changes that the sender may
not change, and every bad input gets a translated answer or is ignored by design.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.i18n import translator
from bot.throttle import Throttle
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Harness
from tests.e2e.test_citizen import file_guided
from tests.reliability._support import unhandled_errors

harness = e2e.harness

THROTTLED = ("You are sending messages faster than I can take them. I will ignore new ones "
             "for a minute or two; what you sent before is safe.")
LANGUAGE_CODES = {"zh_Hans": "zh-hans", "zh_Hant": "zh-hant", "en": "en"}


class FakeSeconds:
    """A monotonic clock the test moves by hand (the throttle's time source)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- a flood from one citizen ------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant", "en"])
async def test_a_flood_is_throttled_with_one_notice_and_others_file_normally(
    harness: Harness, language: str
):
    sim, g = harness.sim, translator(language).gettext
    seconds = FakeSeconds()
    harness.app.bot_data.throttle = Throttle(clock=seconds)
    burst = harness.policy.limits.updates_burst
    flooder = sim.user("刷屏", language_code=LANGUAGE_CODES[language], started=True)
    neighbour = sim.user("邻居", language_code="en", started=True)
    # 200 messages within the same second, then a neighbour files a case in the middle.
    for i in range(100):
        await flooder.send(f"flood {i}: 楼下噪音太大了！！")
    number = await file_guided(harness, neighbour)
    for i in range(100, 200):
        await flooder.send(f"flood {i}: 楼下噪音太大了！！")
    await sim.idle()
    to_flooder = sim.sent(flooder)
    notices = [m for m in to_flooder if m.text == g(THROTTLED)]
    assert len(notices) == 1, "told once, then ignored"
    # Each admitted message got one answer (and the notice); the rest none.
    assert len(to_flooder) == burst + 1
    assert number == "CZ2026-000001"
    assert await harness.count("SELECT count(*) FROM cases WHERE citizen_id = ?",
                               neighbour.id) == 1
    # Still ignored a little later; heard again once the allowance has refilled.
    seconds.now += 0.5
    await flooder.send("/help")
    await sim.idle()
    assert len(sim.sent(flooder)) == burst + 1
    seconds.now += 120
    await flooder.send("/help")
    assert "/new" in (await sim.wait_for(flooder)).text
    assert unhandled_errors(harness) == []


async def test_button_presses_count_too_and_are_answered_once_with_the_notice(harness: Harness):
    sim = harness.sim
    harness.app.bot_data.throttle = Throttle(clock=FakeSeconds())
    person = sim.user("按钮", language_code="en", started=True)
    await person.send("/language")
    menu = await sim.wait_for(person, lambda m: bool(m.buttons))
    answers = []
    for _ in range(harness.policy.limits.updates_burst + 5):
        try:
            answers.append((await person.press_data(menu, "lang:en", timeout=0.5)).text)
        except Exception:  # an ignored press is never answered: the client's spinner stops
            answers.append(None)
    assert answers.count(translator("en").gettext(THROTTLED)) == 1
    assert answers[-1] is None


# -- the same message again --------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant", "en"])
async def test_the_same_message_again_is_linked_to_the_first_case(harness: Harness, language: str):
    sim, g = harness.sim, translator(language).gettext
    person = sim.user("重复", language_code=LANGUAGE_CODES[language], started=True)
    text = "幸福小区3号楼停水两天了，老人做饭都困难，请尽快处理。"
    first = await file_guided(harness, person, language, text=text)
    again = await file_guided(harness, person, language, text="  " + text + "\n")
    assert again == first
    told = sim.last(person).text
    expected = g("This is the same as <b>{number}</b>, which you filed on {date}; we added it "
                 "there instead of filing it again. Use /case {number} to follow it.")
    pattern = re.escape("🔁 " + expected.replace("<b>", "").replace("</b>", ""))
    pattern = pattern.replace(re.escape("{number}"), first).replace(re.escape("{date}"), ".+")
    assert re.fullmatch(pattern, told), told
    assert await harness.count("SELECT count(*) FROM cases") == 1
    assert await harness.count(
        "SELECT count(*) FROM events e JOIN cases c ON c.id = e.case_id"
        " WHERE c.number = ? AND e.kind = 'RepeatFiled'", first) == 1
    # The citizen's own timeline shows it.
    await person.send(f"/case {first}")
    assert g("You sent the same message again") in (await sim.wait_for(person)).text


async def test_a_different_text_or_a_day_later_is_a_new_case(harness: Harness):
    sim = harness.sim
    person = sim.user("新事", language_code="en", started=True)
    text = "The street lamp at gate 2 has been dark for a week."
    first = await file_guided(harness, person, text=text)
    second = await file_guided(harness, person, text=text + " Still dark.")
    harness.clock.advance(timedelta(hours=harness.policy.limits.repeat_window_hours, minutes=1))
    third = await file_guided(harness, person, text=text)
    assert len({first, second, third}) == 3
    assert await harness.count("SELECT count(*) FROM events WHERE kind = 'RepeatFiled'") == 0


async def test_a_repeat_is_not_counted_against_the_hourly_limit(harness: Harness):
    sim = harness.sim
    person = sim.user("反复", language_code="en", started=True)
    text = "Rubbish has not been collected on Lane 5 since Friday."
    numbers = {await file_guided(harness, person, text=text)
               for _ in range(harness.policy.limits.filings_per_hour + 2)}
    assert len(numbers) == 1
    assert await harness.count("SELECT count(*) FROM events WHERE kind = 'RepeatFiled'") == \
        harness.policy.limits.filings_per_hour + 1

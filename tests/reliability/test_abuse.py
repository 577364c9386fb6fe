"""Abuse and bad input (issue 7 §3), through the real application and the simulator.

A flood from one citizen is throttled without touching anyone else; the same message sent
again is linked to the first case; and hypothesis throws every kind of update at the bot
from every role: nothing reaches the error handler, nothing changes that the sender may
not change, and every bad input gets a translated answer or is ignored by design.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FrozenClock
from bot.domain.policy import Policy
from bot.i18n import translator
from bot.throttle import Throttle
from sandbox import NoCallbackAnswer, SimChat, SimUser
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Harness, running_harness
from tests.e2e.test_citizen import choose, file_guided
from tests.reliability._support import (
    CONFIG_TABLES,
    ROLES,
    City,
    arrange_cases,
    build_city,
    case_rows,
    config_rows,
    unhandled_errors,
)

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


# -- hypothesis: every kind of update from every role ---------------------------------------

COMMANDS = (
    "start", "help", "language", "my", "new", "case", "cancel", "skip", "search", "todo",
    "report", "stats", "bind", "join", "joincode", "liaison", "staff", "unit", "units",
    "assign", "reassign", "track", "extend", "escalate", "close", "reopen", "note", "contact",
    "instruct", "export", "delete", "admin", "sql",
)
# Shapes of the bot's own callback data (handlers/*), to forge with random parts.
CALLBACK_SHAPES = (
    "f:c:{w}", "f:d:{w}", "f:e:{w}", "f:p:{w}", "f:ok", "f:x", "f:done", "lang:{w}",
    "q:{n}", "r:{n}:{w}", "r:{n}:u:skip", "d:a:{n}:{w}", "d:t:{n}:{w}", "d:u:{n}:{n}",
    "d:cp:{n}:{n}", "d:rj:{n}", "d:rr:{n}:{w}", "d:pub:{n}", "d:sb:{n}", "d:w:{n}",
    "d:uf:{n}:{w}", "d:ru:{n}:{w}:{n}", "d:ea:{n}", "d:ed:{n}", "d:tt:{n}", "d:dp:{n}",
    "s:aa:{n}", "s:ar:{n}", "u:e:{n}", "u:f:{n}", "u:i:{n}", "u:n:{n}", "u:q:{n}", "u:r:{n}",
    "u:ap:{n}", "u:pf:{n}", "u:pi:{n}",
)
MEDIA = ("photo", "document", "location", "contact", "sticker", "video", "voice", "animation",
         "album")
CJK = re.compile(r"[\u3400-\u9fff]")

any_text = st.text(min_size=1, max_size=300) | st.text(min_size=1, max_size=4096).filter(
    lambda s: len(s.encode("utf-16-le")) // 2 <= 4096)
scripts = st.sampled_from([
    "小区电梯坏了三天", "樓道漏水", "Ле́сная 5, нет воды", "شارع الملك", "🚰💧🔥" * 30,
    "' OR 1=1; DROP TABLE cases; --", "<b>bold</b><script>x</script>", "\u202eevil", "\x00\x01",
    "CZ2026-000001", "CZ2026-999999", " x ", "\n\nx", "a" * 4096,
])
# Telegram clients send no message that is only whitespace.
texts = (scripts | any_text).filter(lambda s: s.strip() != "")
words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), max_size=20)
numbers = st.one_of(st.integers(-5, 12), st.integers(-(2**63), 2**63 - 1),
                    st.sampled_from(["0", "-1", "1e9", "NaN", "", "x"]))
case_refs = st.sampled_from(["CZ2026-000001", "CZ2026-000002", "CZ2026-000003",
                             "CZ2026-000004", "CZ2026-000005", "CZ2026-999999", "cz2026-000001",
                             "CZ2026-1", "ZJJ", "housing"])


@st.composite
def callback_data(draw: st.DrawFn) -> str:
    """Random bytes, random text, or the bot's own shapes with random parts."""
    kind = draw(st.sampled_from(["bytes", "text", "shape", "shape"]))
    if kind == "bytes":
        data = draw(st.binary(min_size=1, max_size=64)).decode("utf-8", "replace")
    elif kind == "text":
        data = draw(st.text(min_size=1, max_size=64))
    else:
        shape = draw(st.sampled_from(CALLBACK_SHAPES))
        while "{n}" in shape or "{w}" in shape:
            if "{n}" in shape:
                shape = shape.replace("{n}", str(draw(numbers)), 1)
            else:
                shape = shape.replace("{w}", draw(words | st.sampled_from(
                    ["housing", "langya", "r", "s", "u", "b", "ZJJ", "CGJ", "invalid"])), 1)
        data = shape
    while len(data.encode()) > 64:
        data = data[:-1]
    return data or "x"


@st.composite
def commands(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(COMMANDS) | words.filter(bool))
    args = draw(st.lists(case_refs | words | texts.map(lambda s: s[:100]), max_size=4))
    mention = draw(st.sampled_from(["", "", "@wenzheng_bot", "@other_bot"]))
    return f"/{name}{mention} " + " ".join(args)


@dataclass(frozen=True)
class Input:
    """One thing a person does (or one raw update), drawn by hypothesis."""

    role: str
    in_group: bool
    kind: str
    payload: str | tuple[str, str | None]


inputs = st.builds(
    Input,
    role=st.sampled_from(ROLES),
    in_group=st.booleans(),
    kind=st.sampled_from(["text", "command", "command", "callback", "callback", "media",
                          "edited", "channel_post", "unknown_chat"]),
    payload=st.just(""),
).flatmap(lambda i: st.builds(
    Input, st.just(i.role), st.just(i.in_group), st.just(i.kind),
    {"text": texts, "command": commands(), "callback": callback_data(),
     "media": st.tuples(st.sampled_from(MEDIA), st.none() | texts.map(lambda s: s[:1024])),
     "edited": texts, "channel_post": texts | commands(),
     "unknown_chat": commands() | texts}[i.kind]))


@dataclass
class Tally:
    """What the run did, for the report."""

    inputs: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_role: Counter[str] = field(default_factory=Counter)
    replies: int = 0
    state_changes: int = 0


async def play(city: City, step: Input, tally: Tally) -> None:
    """Send one input and check: no error handler, no unauthorized change, an answer."""
    h, sim = city.h, city.h.sim
    person = city.people[step.role]
    chat = city.chat_of(step.role) if step.in_group else person.private
    if step.in_group and chat.id == person.private.id:
        chat = city.chats["stray"]
    private = chat.id == person.private.id
    cases_before, config_before = await case_rows(h), await config_rows(h)
    mark = sim.mark()
    expect_answer = private and step.kind in ("text", "command", "media", "edited")
    text = step.payload if isinstance(step.payload, str) else ""
    if step.kind == "text":
        await person.send(text, chat)
    elif step.kind == "command":
        await person.send(text.strip(), chat)
    elif step.kind == "callback":
        target = chat if sim.sent(chat) else person.private
        message = sim.sent(target)[-1]
        try:
            await person.press_data(message, text, target, timeout=5)
        except NoCallbackAnswer as error:
            raise AssertionError(f"{step}: {error}") from None
    elif step.kind == "media":
        await send_media(person, chat, step.payload)
    elif step.kind == "edited":
        sent = await person.send("原来的话：楼下太吵了", chat)
        await sim.idle()
        mark = sim.mark()
        await person.edit(sent, text)
    elif step.kind == "channel_post":
        sim.inject({"channel_post": {
            "message_id": 1, "date": 0, "text": text,
            "chat": {"id": -1009999999, "type": "channel", "title": "频道"}}})
    else:
        sim.inject({"message": {
            "message_id": 1, "date": 0, "text": text,
            "from": person.to_dict(),
            "chat": {"id": -4242, "type": "group", "title": "陌生群"}}})
    await sim.idle()
    await asyncio.sleep(0.05)  # the outbox sender's sends after a commit
    await sim.idle()
    tally.inputs += 1
    tally.by_kind[step.kind] += 1
    tally.by_role[step.role] += 1

    errors = unhandled_errors(h)
    assert errors == [], f"{step} reached the error handler: {errors}"
    # Who may change what: staff by the permission table; others only their own cases.
    cases_after, config_after = await case_rows(h), await config_rows(h)
    touched = {row[0] for _table, row in cases_after ^ cases_before}
    if touched:
        tally.state_changes += 1
    if step.role in ("citizen", "outsider", "liaison"):
        own = {r[0] for r in await h.db.fetch_all(
            "SELECT id FROM cases WHERE citizen_id = ?", (person.id,))}
        units = {r[0] for r in await h.db.fetch_all(
            "SELECT case_id FROM assignments WHERE unit_code = 'ZJJ'", ())}
        allowed = own | (units if step.role == "liaison" else set())
        assert touched <= allowed, f"{step} changed cases {touched - allowed}"
    changed = [t for t in CONFIG_TABLES if config_before[t] != config_after[t]]
    permitted = {"admin": set(CONFIG_TABLES), "dispatcher": {"join_codes"}}.get(step.role, set())
    assert set(changed) <= permitted, f"{step} changed {changed}"
    # Every input in a private chat is answered, in the person's language.
    new = [m for m in sim.sent(person.private) if m.updated_seq > mark]
    if new:
        tally.replies += 1
    if expect_answer:
        assert new, f"{step} got no answer"
        if person.language_code and person.language_code.startswith("zh"):
            assert any(CJK.search(m.text) for m in new), f"{step}: {[m.text for m in new]}"


async def send_media(person: SimUser, chat: SimChat,
                     payload: str | tuple[str, str | None]) -> None:
    assert isinstance(payload, tuple)
    kind, caption = payload
    if kind == "photo":
        await person.send_photo(caption, chat)
    elif kind == "document":
        await person.send_document("x.pdf", caption=caption, chat=chat)
    elif kind == "location":
        await person.send_location(32.3, 118.3, chat)
    elif kind == "contact":
        await person.send_contact("+8613900000000", chat, own=caption is None)
    elif kind == "sticker":
        await person.send_sticker("🔥", chat)
    elif kind == "video":
        await person.send_video(caption, chat)
    elif kind == "voice":
        await person.send_voice(chat)
    elif kind == "animation":
        await person.send_animation(caption, chat)
    else:
        await person.send_media_group(3, caption=caption, chat=chat)


def test_random_updates_from_every_role_break_nothing(
    tmp_path: Path, policy: Policy, clock: FrozenClock, full_run: bool
):
    """Hypothesis plays batches of inputs against one running bot (see play for the checks)."""
    tally = Tally()
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        h = runner.run(stack.enter_async_context(running_harness(tmp_path, policy, clock)))
        try:
            city = runner.run(build_city(h))
            runner.run(arrange_cases(city))
            city.chats["stray"] = h.sim.group("闲聊群", members=list(city.people.values()))
            # Staff and citizens alike get private chats the bot has written to.
            for person in city.people.values():
                runner.run(person.send("/start"))
            runner.run(h.sim.idle())
            seconds = FakeSeconds()
            h.app.bot_data.throttle = Throttle(clock=seconds)  # never the reason for silence

            @settings(max_examples=300 if full_run else 25, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), derandomize=not full_run)
            @given(st.lists(inputs, min_size=1, max_size=6))
            def batch(steps: list[Input]) -> None:
                for step in steps:
                    seconds.now += 10
                    runner.run(play(city, step, tally))

            batch()
        finally:
            runner.run(stack.aclose())
    print(f"\nabuse: {tally.inputs} inputs, by kind {dict(tally.by_kind)}, "
          f"by role {dict(tally.by_role)}, {tally.replies} answered in private, "
          f"{tally.state_changes} authorized state changes, 0 unhandled errors")
    assert tally.inputs >= 25


# -- what these suites found ---------------------------------------------------------------


async def test_a_photo_sent_while_buttons_are_expected_is_kept_and_answered(harness: Harness):
    """Found by hypothesis: a photo while choosing the category got no answer at all."""
    sim, g = harness.sim, translator("en").gettext
    person = sim.user("图", language_code="en", started=True)
    await person.send("The lift in building 3 is broken again.")
    await sim.wait_for(person, lambda m: bool(m.buttons))
    await person.send_photo()
    assert g("I kept this with your message. Please choose with the buttons above.") in (
        await sim.wait_for(person)).text
    await person.send_contact()
    assert "can't accept" in (await sim.wait_for(person)).text
    for button in (harness.policy.categories["water"].name_in("en"),
                   harness.policy.districts["langya"].name_in("en"), "✅ " + g("Submit")):
        await choose(harness, person, button)
    await sim.wait_for(person, "CZ2026-000001")
    assert await harness.count("SELECT count(*) FROM attachments") == 1


async def test_rows_stuck_behind_an_unbound_group_do_not_starve_other_chats(harness: Harness):
    """Found by the injection suite: 200 rows waiting for an unbound group filled every batch
    of the outbox sender, and no citizen heard anything any more."""
    from bot import services

    svc = harness.svc
    await services.grant_role(svc, None, 1001, "dispatcher", system=True)
    person = harness.sim.user("等", language_code="en", started=True)
    numbers = []
    for i in range(60):  # each assignment queues desk and unit cards: nobody bound
        numbers.append((await services.file_case(
            svc, services.Profile(person.id + i, "x", None, None, "en"), category="housing",
            district="langya", text=f"Case {i}: the lift is broken.")).number)
        await services.assign_case(svc, 1001, numbers[-1], "ZJJ", track="routine")
    await harness.drained()
    assert await harness.count("SELECT count(*) FROM outbox WHERE state = 'pending'") > 200
    last = await services.file_case(
        svc, services.Profile(person.id, "x", None, None, "en"), category="housing",
        district="langya", text="One more: is anyone there?")
    await harness.sim.wait_for(person, last.number, since=0)

"""Citizens through the real application and the simulator."""

from __future__ import annotations

import pytest

from bot import services
from bot.i18n import translator
from sandbox import SimUser
from tests.conftest import PEOPLE
from tests.e2e.conftest import Harness, label

LANGUAGE_CODES = {"zh_Hans": "zh-hans", "zh_Hant": "zh-hant", "en": "en"}


async def choose(h: Harness, person: SimUser, button: str) -> None:
    """Wait until the bot shows a button, then press it (as a person would)."""
    await h.sim.wait_for(person, lambda m: any(button in row for row in m.buttons), since=0)
    await person.press(button)


async def file_guided(h: Harness, person: SimUser, language: str = "en",
                      text: str = "No water in building 3 since this morning, please help.") -> str:
    """Walk through /new as a person would; return the case number from the bot's reply."""
    sim, g = h.sim, translator(language).gettext
    policy = h.policy
    await person.send("/new")
    await sim.wait_for(person, lambda m: bool(m.buttons))
    await person.press(policy.categories["water"].name_in(language))
    await sim.wait_for(person, lambda m: bool(m.buttons))
    await person.press(policy.districts["langya"].name_in(language))
    await sim.wait_for(person, g("Please describe the problem: what, where exactly, since when. "
                                 "The more precise, the faster it can be handled."))
    await person.send(text)
    await sim.wait_for(person, lambda m: bool(m.buttons))
    await person.press(g("Done"))
    await sim.wait_for(person, lambda m: bool(m.buttons))
    await person.press(g("No, stay anonymous"))
    await sim.wait_for(person, g("Please check your message"))
    await person.press("✅ " + g("Submit"))
    filed = await sim.wait_for(person, lambda m: "CZ2026-" in m.text)
    # The card loses its buttons beside the outbox's "filed as": wait for both, so the
    # caller's next wait_for sees only what its own next step caused.
    await sim.wait_for(person, lambda m: g("Please check your message") in m.text
                       and not m.buttons)
    return next(w for w in filed.text.split() if w.startswith("CZ2026-"))[:13]


async def test_start_welcomes_in_the_users_language(harness: Harness):
    for language, code in LANGUAGE_CODES.items():
        person = harness.sim.user("李", language_code=code)
        await person.send("/start")
        welcome = await harness.sim.wait_for(person)
        assert translator(language).gettext("Your privacy") in welcome.text


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant", "en"])
async def test_the_whole_filing_flow_in_each_language(harness: Harness, language: str):
    person = harness.sim.user("王", language_code=LANGUAGE_CODES[language])
    number = await file_guided(harness, person, language)
    assert number == "CZ2026-000001"
    row = await harness.db.fetch_one("SELECT category, district, state FROM cases")
    assert row is not None and tuple(row) == ("water", "langya", "new")


async def test_the_citizen_hears_filed_only_with_a_committed_number(harness: Harness):
    person = harness.sim.user("张", last_name="三", username="zhangsan", language_code="en")
    number = await file_guided(harness, person)
    row = await harness.db.fetch_one("SELECT number FROM cases")
    assert row is not None and row[0] == number
    await harness.drained()
    sent = await harness.db.fetch_one(
        "SELECT state FROM outbox WHERE message_key = 'citizen.case_filed'")
    assert sent is not None and sent[0] == "sent"


async def test_guided_filing_keeps_photos_location_and_consented_contact(harness: Harness):
    sim = harness.sim
    zhang = sim.user("张", last_name="三", language_code="en")
    await zhang.send("/new")
    await sim.wait_for(zhang, "category")
    await choose(harness, zhang, "Water supply")
    await sim.wait_for(zhang, "district")
    await choose(harness, zhang, "Langya District")
    await sim.wait_for(zhang, "describe")
    await zhang.send("No water in building 3 since this morning, please help.")
    await sim.wait_for(zhang, "Done")
    await zhang.send_photo()
    await sim.wait_for(zhang, "1 file received")
    await zhang.send_document("notice.pdf")
    await sim.wait_for(zhang, "2 files received")
    await zhang.send_location(32.30, 118.31)
    await sim.wait_for(zhang, "Location received")
    await choose(harness, zhang, "Done")
    await sim.wait_for(zhang, "phone")
    await choose(harness, zhang, "Yes, share my phone number")
    await sim.wait_for(zhang, "/skip")
    await zhang.send_contact("+8613900001111")
    summary = await sim.wait_for(zhang, "Please check your message")
    assert "Attachments: 2" in summary.text and "Contact shared with the unit: yes" in summary.text
    await choose(harness, zhang, "✅ Submit")
    await sim.wait_for(zhang, "filed as")
    row = await harness.db.fetch_one(
        "SELECT c.contact_shared, c.latitude, u.phone FROM cases c JOIN users u"
        " ON u.id = c.citizen_id")
    assert row is not None and tuple(row) == (1, 32.30, "+8613900001111")
    kinds = await harness.db.fetch_all("SELECT kind, file_name FROM attachments ORDER BY id")
    assert [tuple(r) for r in kinds] == [("photo", None), ("document", "notice.pdf")]


async def test_someone_elses_phone_number_is_not_accepted(harness: Harness):
    sim = harness.sim
    zhang = sim.user("张", language_code="en")
    await zhang.send("The street lamp at Fengle road has been dark for a week.")
    await choose(harness, zhang, "City appearance and street order")
    await sim.wait_for(zhang, "district")
    await choose(harness, zhang, "Langya District")
    await sim.wait_for(zhang, "Please check your message")
    await choose(harness, zhang, "✏️ Edit")
    await choose(harness, zhang, "Contact")
    await sim.wait_for(zhang, "phone")
    await choose(harness, zhang, "Yes, share my phone number")
    await sim.wait_for(zhang, "/skip")
    await zhang.send_contact("+8613700000000", own=False, first_name="Neighbour")
    await sim.wait_for(zhang, "your own number")
    await zhang.send("/skip")
    await sim.wait_for(zhang, "Please check your message")


async def test_quick_filing_keeps_the_text_and_asks_only_what_is_missing(harness: Harness):
    sim = harness.sim
    li = sim.user("李", language_code="en")
    await li.send("The street lamp at Fengle road has been dark for a week.")
    await sim.wait_for(li, "category")
    await choose(harness, li, "City appearance and street order")
    await sim.wait_for(li, "district")
    await choose(harness, li, "Langya District")
    summary = await sim.wait_for(li, "Please check your message")
    assert "Fengle road" in summary.text
    await choose(harness, li, "✅ Submit")
    await sim.wait_for(li, "filed as")
    row = await harness.db.fetch_one("SELECT text, category FROM cases")
    assert row is not None
    assert tuple(row) == ("The street lamp at Fengle road has been dark for a week.",
                          "city_management")


async def test_a_photo_with_a_caption_starts_a_quick_filing(harness: Harness):
    sim = harness.sim
    li = sim.user("李", language_code="en")
    await li.send_photo(caption="Garbage piled at the east gate for three days.")
    await sim.wait_for(li, "category")
    await choose(harness, li, "City appearance and street order")
    await choose(harness, li, "Langya District")
    await sim.wait_for(li, "Please check your message")
    await choose(harness, li, "✅ Submit")
    await sim.wait_for(li, "filed as")
    assert await harness.count("SELECT count(*) FROM attachments") == 1


async def test_my_and_case_show_only_ones_own_cases(harness: Harness):
    sim = harness.sim
    owner = sim.user("王", language_code="en")
    number = await file_guided(harness, owner)
    await owner.send("/my")
    listing = await sim.wait_for(owner, "Your cases")
    assert number in listing.text and "waiting for the dispatch desk" in listing.text
    await owner.send(f"/case {number}")
    details = await sim.wait_for(owner, "History")
    assert "No water" in details.text and "Filed" in details.text
    other = sim.user("赵", language_code="en")
    await other.send(f"/case {number}")
    refused = await sim.wait_for(other)
    assert "No case with that number" in refused.text and "No water" not in refused.text
    await other.send("/case nonsense")
    assert "Usage" in (await sim.wait_for(other)).text


async def test_a_restart_mid_conversation_keeps_the_draft(harness: Harness):
    sim = harness.sim
    person = sim.user("周", language_code="en")
    await person.send("/new")
    await sim.wait_for(person, "category")
    await choose(harness, person, "Water supply")
    await sim.wait_for(person, "district")
    await harness.restart()
    await choose(harness, person, "Langya District")
    await sim.wait_for(person, "describe")
    await person.send("Water pressure is too low on the sixth floor every evening.")
    await sim.wait_for(person, "Done")
    await choose(harness, person, "Done")
    await choose(harness, person, "No, stay anonymous")
    await sim.wait_for(person, "Please check your message")
    await choose(harness, person, "✅ Submit")
    await sim.wait_for(person, "filed as")
    row = await harness.db.fetch_one("SELECT category, district FROM cases")
    assert row is not None and tuple(row) == ("water", "langya")


async def test_text_limits_are_explained(harness: Harness):
    sim = harness.sim
    person = sim.user("吴", language_code="en")
    await person.send("hi")
    assert "at least 5 characters" in (await sim.wait_for(person)).text
    await person.send("长" * 3000)
    assert "too long (3000 characters; the limit is 2000)" in (await sim.wait_for(person)).text
    assert await harness.count("SELECT count(*) FROM cases") == 0


async def test_a_10000_character_message_is_refused_without_a_crash(harness: Harness):
    sim = harness.sim
    person = sim.user("吴", language_code="en", started=True)
    person_chat = person.private
    sim.inject({"message": {"message_id": 9001, "date": 0, "chat": person_chat.to_dict(),
                            "from": person.to_dict(), "text": "x" * 10000}})
    assert "too long" in (await sim.wait_for(person, since=0)).text


async def test_attachment_count_is_limited(harness: Harness):
    sim = harness.sim
    person = sim.user("郑", language_code="en")
    await person.send("/new")
    await choose(harness, person, "Water supply")
    await choose(harness, person, "Langya District")
    await sim.wait_for(person, "describe")
    await person.send("The water meter in the corridor is leaking badly.")
    await sim.wait_for(person, "Done")
    for n in range(1, 10):
        await person.send_photo()
        await sim.wait_for(person, f"{n} file")
    await person.send_photo()
    assert "at most 9 files" in (await sim.wait_for(person)).text


async def test_filings_per_hour_are_limited(harness: Harness):
    sim = harness.sim
    person = sim.user("冯", language_code="en")
    for i in range(5):
        await file_guided(harness, person, text=f"Complaint number {i}: the pipes are noisy.")
    await person.send("A sixth complaint about the noisy pipes at night.")
    await choose(harness, person, "Water supply")
    await choose(harness, person, "Langya District")
    await sim.wait_for(person, "Please check your message")
    await choose(harness, person, "✅ Submit")
    assert "5 messages in the last hour" in (await sim.wait_for(person, "hour")).text
    assert await harness.count("SELECT count(*) FROM cases") == 5


async def test_unsupported_media_gets_a_clear_answer(harness: Harness):
    sim = harness.sim
    person = sim.user("陈", language_code="en")
    await person.send_sticker()
    assert "can't accept" in (await sim.wait_for(person)).text
    await person.send("/new")
    await choose(harness, person, "Water supply")
    await choose(harness, person, "Langya District")
    await sim.wait_for(person, "describe")
    await person.send_video()
    assert "can't accept" in (await sim.wait_for(person)).text
    await person.send("The tap water smells of chlorine since Monday.")
    await sim.wait_for(person, "Done")


async def test_old_and_forged_buttons_change_nothing(harness: Harness):
    sim = harness.sim
    person = sim.user("褚", language_code="en")
    await person.send("/new")
    categories = await sim.wait_for(person, "category")
    await choose(harness, person, "Water supply")
    await sim.wait_for(person, "district")
    answer = await person.press_data(categories, "f:c:housing")
    assert "no longer valid" in (answer.text or "")
    forged = await person.press_data(categories, b"\xff\xfe' OR 1=1 --")
    assert "no longer valid" in (forged.text or "")
    answer = await person.press_data(categories, "r:999999:s")
    assert "no longer valid" in (answer.text or "")
    draft = await harness.db.fetch_one("SELECT data FROM user_sessions")
    assert draft is None or '"housing"' not in draft[0]


async def test_an_update_delivered_twice_files_one_case(harness: Harness):
    sim = harness.sim
    person = sim.user("卫", language_code="en")
    await person.send("Bus 12 skipped the Nanqiao stop three times this week.")
    await choose(harness, person, "Public transport and roads")
    await choose(harness, person, "Nanqiao District")
    await sim.wait_for(person, "Please check your message")
    answer = await person.press("✅ Submit")
    await sim.wait_for(person, "filed as")
    assert answer.update is not None
    await sim.redeliver(answer.update)
    await sim.idle()
    assert await harness.count("SELECT count(*) FROM cases") == 1


async def test_a_citizen_who_blocked_the_bot_still_has_the_case_filed(harness: Harness):
    sim = harness.sim
    person = sim.user("蒋", language_code="en")
    await person.send("Bus 12 skipped the Nanqiao stop three times this week.")
    await choose(harness, person, "Public transport and roads")
    await choose(harness, person, "Nanqiao District")
    await sim.wait_for(person, "Please check your message")
    sim.block(person)
    await choose(harness, person, "✅ Submit")
    await harness.drained()
    row = await harness.db.fetch_one(
        "SELECT state, error FROM outbox WHERE message_key = 'citizen.case_filed'")
    assert row is not None and row[0] == "failed" and "403" in row[1]
    assert await harness.count("SELECT count(*) FROM cases") == 1
    assert await harness.count("SELECT is_blocked FROM users WHERE id = ?", person.id) == 1


async def test_question_from_the_unit_is_answered_through_the_bot(harness: Harness):
    sim = harness.sim
    person = sim.user("沈", language_code="en", user_id=PEOPLE.citizen)
    number = await file_guided(harness, person)
    svc = harness.svc
    await services.grant_role(svc, None, PEOPLE.dispatcher, "dispatcher", system=True)
    await services.add_liaison(svc, None, "ZLSGS", PEOPLE.water, system=True)
    await services.assign_case(svc, PEOPLE.dispatcher, number, "ZLSGS", track="routine")
    await services.sign_assignment(svc, PEOPLE.water, number)
    await services.ask_citizen(svc, PEOPLE.water, number, "Which unit of building 3?")
    question = await sim.wait_for(person, "Which unit of building 3?")
    await person.press("✍️ Reply", message=question)
    await sim.wait_for(person, "type your answer")
    await person.send("Unit 2, 6th floor")
    await sim.wait_for(person, "passed on")
    row = await harness.db.fetch_one("SELECT answer FROM questions")
    assert row is not None and row[0] == "Unit 2, 6th floor"


async def test_rating_unsatisfied_asks_why_and_reopens(harness: Harness):
    sim = harness.sim
    person = sim.user("韩", language_code="en", user_id=PEOPLE.citizen)
    number = await file_guided(harness, person)
    svc = harness.svc
    await services.grant_role(svc, None, PEOPLE.dispatcher, "dispatcher", system=True)
    await services.add_liaison(svc, None, "ZLSGS", PEOPLE.water, system=True)
    await services.assign_case(svc, PEOPLE.dispatcher, number, "ZLSGS", track="routine")
    await services.sign_assignment(svc, PEOPLE.water, number)
    await services.post_answer(svc, PEOPLE.water, number, "final", "Water restored at 14:00.")
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    answer = await sim.wait_for(person, "Water restored")
    assert ["😊 Satisfied"] in answer.buttons
    await person.press("☹️ Unsatisfied", message=answer)
    await sim.wait_for(person, "what is still not resolved")
    await person.send("The pressure is still too low.")
    await sim.wait_for(person, "Thank you for your rating")
    row = await harness.db.fetch_one("SELECT state, round FROM cases")
    assert row is not None and tuple(row) == ("in_progress", 2)
    comment = await harness.db.fetch_one("SELECT comment FROM ratings")
    assert comment is not None and comment[0] == "The pressure is still too low."


async def test_language_can_be_changed_and_is_remembered(harness: Harness):
    sim = harness.sim
    person = sim.user("杨", language_code="zh-hans")
    await person.send("/language")
    await sim.wait_for(person, lambda m: bool(m.buttons))
    await choose(harness, person, "English")
    await sim.wait_for(person, "English")
    await harness.restart()
    await person.send("/help")
    assert "/new — file a new message" in (await sim.wait_for(person)).text
    row = await harness.db.fetch_one("SELECT language, language_chosen FROM users WHERE id = ?",
                                     (person.id,))
    assert row is not None and tuple(row) == ("en", 1)


async def test_commands_are_registered_per_language(harness: Harness):
    english = dict(harness.sim.commands({"type": "all_private_chats"}, "en"))
    chinese = dict(harness.sim.commands({"type": "all_private_chats"}, "zh"))
    assert english["new"] == "File a new message"
    assert chinese["new"] == label("zh_Hans", "File a new message")


async def test_unknown_commands_and_edits_are_answered(harness: Harness):
    sim = harness.sim
    person = sim.user("朱", language_code="en")
    await person.send("/frobnicate now")
    assert "don't know that command" in (await sim.wait_for(person)).text
    sent = await person.send("hello there, this is a note")
    await sim.wait_for(person, "category")
    await person.edit(sent, "edited text")
    assert "Edits to sent messages" in (await sim.wait_for(person, "Edits")).text

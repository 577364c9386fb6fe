"""The chain between the desk and the units, acted out through Telegram (DESIGN §1–§3, §7)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot import services
from sandbox import NoCallbackAnswer, SentMessage, SimChat, SimUser
from tests.conftest import PEOPLE
from tests.e2e.conftest import Harness, label

ZH = "zh_Hans"


def z(text: str) -> str:
    """A label as the (Chinese-speaking) groups see it."""
    return label(ZH, text)


@dataclass
class World:
    """A city with its groups, staff and liaisons, all set up through the services."""

    h: Harness
    citizen: SimUser
    dispatcher: SimUser
    supervisor: SimUser
    leader: SimUser
    liaisons: dict[str, SimUser]
    outsider: SimUser
    desk: SimChat
    supervision: SimChat
    leaders: SimChat
    units: dict[str, SimChat]
    last_press: int = 0

    async def card(self, chat: SimChat, number: str, *needles: str) -> SentMessage:
        """Wait for the card of a case in a group (showing every needle)."""
        return await self.h.sim.wait_for(
            chat, lambda m: number in m.text and all(n in m.text for n in needles), since=0)

    async def press(self, person: SimUser, chat: SimChat, message: SentMessage,
                    button: str) -> str | None:
        """Press a button on a given message; return the alert/toast text."""
        await self.h.sim.wait_for(
            chat, lambda m: m.message_id == message.message_id
            and any(button in row for row in m.buttons), since=0)
        self.last_press = self.h.sim.mark()
        answer = await person.press(button, chat, message=message.message_id)
        return answer.text

    async def pick_unit(self, person: SimUser, chat: SimChat, picker: SentMessage,
                        unit: str) -> None:
        """Page through a unit picker until the unit shows, then press it."""
        name = self.h.policy.units[unit].name
        while not any(name in row for row in picker.buttons):
            await self.press(person, chat, picker, "▶")
            picker = await self.h.sim.wait_for(
                chat, lambda m, p=picker: m.message_id == p.message_id, since=self.last_press)
        await self.press(person, chat, picker, name)

    async def reply_to_prompt(self, person: SimUser, chat: SimChat, text: str) -> SentMessage:
        """Answer the ForceReply prompt the bot just gave this person."""
        prompt = await self.h.sim.wait_for(chat, lambda m: "✍️" in m.text,
                                           since=self.last_press)
        await person.reply(prompt, text, chat)
        return await self.h.sim.wait_for(chat, lambda m: m.text.startswith("✓"))


@pytest.fixture
async def world(harness: Harness) -> World:
    sim, svc = harness.sim, harness.svc
    people = {name: sim.user(name, user_id=uid, started=True, language_code="zh-hans")
              for name, uid in [("分办员", PEOPLE.dispatcher), ("督查员", PEOPLE.supervisor),
                                ("领导", PEOPLE.leader), ("路人", PEOPLE.outsider)]}
    citizen = sim.user("张", last_name="三", username="zhangsan_citizen", user_id=PEOPLE.citizen,
                       started=True, language_code="zh-hans")
    liaisons = {unit: sim.user(f"{unit}联络员", user_id=uid, started=True)
                for unit, uid in [("ZJJ", PEOPLE.housing), ("CGJ", PEOPLE.city),
                                  ("LYQ", PEOPLE.langya), ("ZLSGS", PEOPLE.water)]}
    for user, role in [(PEOPLE.dispatcher, "dispatcher"), (PEOPLE.supervisor, "supervisor"),
                       (PEOPLE.leader, "leader")]:
        await services.grant_role(svc, None, user, role, system=True)
    desk = sim.group("分办中心", members=[people["分办员"], people["路人"]])
    supervision = sim.group("督查组", members=[people["督查员"]])
    leaders = sim.group("领导群", members=[people["领导"]])
    for chat, purpose in [(desk, "dispatch"), (supervision, "supervision"),
                          (leaders, "leaders")]:
        await services.bind_chat(svc, None, chat.id, purpose, system=True)
    units = {}
    for unit, person in liaisons.items():
        units[unit] = sim.group(f"{unit}办件群", members=[person, people["路人"]])
        await services.bind_chat(svc, None, units[unit].id, "unit", unit_code=unit, system=True)
        await services.add_liaison(svc, None, unit, person.id, system=True)
    return World(harness, citizen, people["分办员"], people["督查员"], people["领导"], liaisons,
                 people["路人"], desk, supervision, leaders, units)


async def file(world: World, text: str = "幸福小区3号楼停水两天了，老人做饭都困难，请尽快处理。",
               category: str = "water", district: str = "langya") -> str:
    number = (await services.file_case(
        world.h.svc, services.Profile(PEOPLE.citizen, "张", "三", "zhangsan_citizen", ZH),
        category=category, district=district, text=text)).number
    await world.card(world.desk, number)
    return number


async def triage(world: World, number: str, track: str, unit: str) -> SentMessage:
    card = await world.card(world.desk, number)
    await world.press(world.dispatcher, world.desk, card, z(track))
    card = await world.card(world.desk, number, z("Track"))
    unit_name = world.h.policy.units[unit].name
    await world.press(world.dispatcher, world.desk, card, "→ " + unit_name)
    return await world.card(world.units[unit], number)


async def test_routine_case_from_filing_to_a_satisfied_citizen(world: World):
    number = await file(world)
    unit_card = await triage(world, number, "Routine", "ZLSGS")
    assert "✅ " + z("Sign") in unit_card.buttons[0]
    assert await world.press(world.outsider, world.units["ZLSGS"], unit_card, "✅ " + z("Sign"))
    assert (await world.h.db.fetch_one("SELECT state FROM cases"))[0] == "assigned"
    water = world.liaisons["ZLSGS"]
    await world.press(water, world.units["ZLSGS"], unit_card, "✅ " + z("Sign"))
    unit_card = await world.card(world.units["ZLSGS"], number, z("being handled"))
    await world.press(water, world.units["ZLSGS"], unit_card, z("Final answer"))
    await world.reply_to_prompt(water, world.units["ZLSGS"], "管道已抢修完毕，今日14时恢复供水。")
    review = await world.h.sim.wait_for(world.desk, "恢复供水", since=0)
    await world.press(world.dispatcher, world.desk, review, "✅ " + z("Publish"))
    answer = await world.h.sim.wait_for(world.citizen, "恢复供水", since=0)
    await world.citizen.press("😊 " + label(ZH, "Satisfied"), message=answer.message_id)
    await world.h.drained()
    row = await world.h.db.fetch_one("SELECT state, close_reason FROM cases")
    assert tuple(row) == ("closed", "rated")


async def test_a_press_goes_through_when_telegram_fails_to_take_its_answer(world: World):
    # The answer only stops the button's spinner: the sign and the prompt must not depend
    # on it, nor may the person be told "something went wrong" about a step that was taken.
    number = await file(world)
    unit_card = await triage(world, number, "Routine", "ZLSGS")
    water, chat = world.liaisons["ZLSGS"], world.units["ZLSGS"]
    world.h.sim.set_faults(error_rate=1.0, methods=["answerCallbackQuery"])
    with pytest.raises(NoCallbackAnswer):
        await water.press("✅ " + z("Sign"), chat, message=unit_card.message_id, timeout=1.0)
    unit_card = await world.card(chat, number, z("being handled"))
    mark = world.h.sim.mark()
    with pytest.raises(NoCallbackAnswer):
        await water.press(z("Final answer"), chat, message=unit_card.message_id, timeout=1.0)
    prompt = await world.h.sim.wait_for(chat, lambda m: "✍️" in m.text, since=mark)
    world.h.sim.clear_faults()
    await water.reply(prompt, "管道已抢修完毕，今日14时恢复供水。", chat)
    await world.h.sim.wait_for(world.desk, "恢复供水", since=0)
    await world.h.drained()
    assert (await world.h.db.fetch_one("SELECT state FROM cases"))[0] == "answered"
    errors_told = await world.h.db.fetch_one(
        "SELECT count(*) FROM outbox WHERE message_key = 'desk.error'")
    assert errors_told[0] == 0


async def test_coordinated_case_with_two_co_units(world: World):
    number = await file(world, "南门口道路积水严重，井盖缺失，夜间非常危险，请多部门处理。",
                        "city_management")
    await triage(world, number, "Coordinated", "LYQ")
    for unit in ("CGJ", "ZJJ"):
        card = await world.h.sim.wait_for(
            world.desk, lambda m: number in m.text
            and any(z("＋ Co-unit") in r for r in m.buttons), since=0)
        await world.press(world.dispatcher, world.desk, card, z("＋ Co-unit"))
        picker = await world.h.sim.wait_for(
            world.desk, lambda m: any("▶" in r for r in m.buttons), since=world.last_press)
        await world.pick_unit(world.dispatcher, world.desk, picker, unit)
        await world.card(world.units[unit], number)
    for unit in ("LYQ", "CGJ", "ZJJ"):
        card = await world.card(world.units[unit], number)
        await world.press(world.liaisons[unit], world.units[unit], card, "✅ " + z("Sign"))
    lead_card = await world.card(world.units["LYQ"], number, z("being handled"))
    await world.press(world.liaisons["LYQ"], world.units["LYQ"], lead_card, z("Final answer"))
    prompt = await world.h.sim.wait_for(world.units["LYQ"], lambda m: "✍️" in m.text, since=0)
    await world.liaisons["LYQ"].reply(prompt, "已完成井盖补装。", world.units["LYQ"])
    refusal = label(ZH, "Every co-unit must report before the final answer.")
    assert await world.h.sim.wait_for(world.units["LYQ"], refusal)
    for unit in ("CGJ", "ZJJ"):
        card = await world.card(world.units[unit], number, z("being handled"))
        await world.press(world.liaisons[unit], world.units[unit], card,
                          z("Send input to the lead"))
        await world.reply_to_prompt(world.liaisons[unit], world.units[unit], f"{unit}已处理完毕。")
    await world.h.sim.wait_for(world.units["LYQ"], "CGJ已处理完毕", since=0)
    lead_card = await world.card(world.units["LYQ"], number, z("being handled"))
    await world.press(world.liaisons["LYQ"], world.units["LYQ"], lead_card, z("Final answer"))
    await world.reply_to_prompt(world.liaisons["LYQ"], world.units["LYQ"], "三部门已联合处理完毕。")
    review = await world.h.sim.wait_for(world.desk, "三部门已联合处理完毕", since=0)
    await world.press(world.dispatcher, world.desk, review, "✅ " + z("Publish"))
    await world.h.sim.wait_for(world.citizen, "三部门已联合处理完毕", since=0)


async def test_high_level_case_with_a_leaders_instruction(world: World):
    number = await file(world, "化工厂夜间偷排废气，周边居民头晕恶心，请领导高度重视。",
                        "environment")
    await triage(world, number, "High-level", "LYQ")
    await world.h.sim.wait_for(world.leaders, number, since=0)
    await world.leader.send(f"/instruct {number} 请生态环境局和属地政府今日内现场核查。",
                            world.leaders)
    await world.h.sim.wait_for(world.leaders, "✓", since=0)
    instruction = await world.h.sim.wait_for(world.units["LYQ"], "今日内现场核查", since=0)
    assert instruction
    await world.dispatcher.send(f"/instruct {number} 我也想批示", world.desk)
    refusal = await world.h.sim.wait_for(world.desk, label(ZH, "You are not allowed to do this."),
                                         since=0)
    assert refusal


async def test_return_then_unfounded_then_no_second_return(world: World):
    number = await file(world)
    card = await triage(world, number, "Routine", "ZLSGS")
    water = world.liaisons["ZLSGS"]
    await world.press(water, world.units["ZLSGS"], card, "↩️ " + z("Return"))
    reasons = await world.h.sim.wait_for(
        world.units["ZLSGS"], lambda m: any(z("Not our duty (职能交叉)") in r for r in m.buttons),
        since=0)
    await world.press(water, world.units["ZLSGS"], reasons, z("Not our duty (职能交叉)"))
    await world.reply_to_prompt(water, world.units["ZLSGS"], "属于小区物业自建管网。")
    notice = await world.h.sim.wait_for(world.desk, "属于小区物业自建管网", since=0)
    await world.press(world.dispatcher, world.desk, notice, z("Unfounded (审定)"))
    waiting = z("assigned, waiting for the unit to sign for it")
    card = await world.card(world.units["ZLSGS"], number, waiting)
    assert not any("↩️ " + z("Return") in row for row in card.buttons)


async def test_return_and_reassign_to_another_unit(world: World):
    number = await file(world)
    card = await triage(world, number, "Routine", "ZLSGS")
    water = world.liaisons["ZLSGS"]
    await world.press(water, world.units["ZLSGS"], card, "↩️ " + z("Return"))
    reasons = await world.h.sim.wait_for(
        world.units["ZLSGS"], lambda m: len(m.buttons) == 3, since=0)
    await world.press(water, world.units["ZLSGS"], reasons, z("Not our district (属地不符)"))
    await world.reply_to_prompt(water, world.units["ZLSGS"], "该小区由区供水站负责。")
    notice = await world.h.sim.wait_for(world.desk, "区供水站", since=0)
    await world.press(world.dispatcher, world.desk, notice, z("Reassign…"))
    picker = await world.h.sim.wait_for(world.desk, lambda m: m.message_id == notice.message_id
                                        and len(m.buttons) > 2, since=0)
    await world.pick_unit(world.dispatcher, world.desk, picker, "LYQ")
    card = await world.card(world.units["LYQ"], number)
    assert "✅ " + z("Sign") in card.buttons[0]


async def test_extension_approved_and_denied(world: World):
    number = await file(world)
    card = await triage(world, number, "Routine", "ZLSGS")
    water = world.liaisons["ZLSGS"]
    await world.press(water, world.units["ZLSGS"], card, "✅ " + z("Sign"))
    for round_, decision in enumerate(("❌ " + z("Deny"), "✅ " + z("Approve")), start=1):
        card = await world.card(world.units["ZLSGS"], number, z("being handled"))
        await world.press(water, world.units["ZLSGS"], card, z("Request extension"))
        await world.reply_to_prompt(water, world.units["ZLSGS"], "2026-12-15 需更换主管道")
        request = await world.h.sim.wait_for(world.desk, "需更换主管道", since=0, count=round_)
        await world.press(world.dispatcher, world.desk, request, decision)
        await world.h.drained()
    told = await world.h.sim.wait_for(world.citizen, "需更换主管道", since=0)
    assert told
    rows = await world.h.db.fetch_all("SELECT decision FROM extensions ORDER BY id")
    assert [r[0] for r in rows] == ["denied", "approved"]


async def test_review_send_back_then_publish(world: World):
    number = await file(world)
    card = await triage(world, number, "High-level", "ZLSGS")
    water = world.liaisons["ZLSGS"]
    await world.press(water, world.units["ZLSGS"], card, "✅ " + z("Sign"))
    card = await world.card(world.units["ZLSGS"], number, z("being handled"))
    await world.press(water, world.units["ZLSGS"], card, z("Final answer"))
    await world.reply_to_prompt(water, world.units["ZLSGS"], "已处理。")
    review = await world.h.sim.wait_for(world.desk, "已处理。", since=0)
    await world.press(world.dispatcher, world.desk, review, "↩️ " + z("Send back"))
    await world.reply_to_prompt(world.dispatcher, world.desk, "请写明恢复供水的时间。")
    await world.h.sim.wait_for(world.units["ZLSGS"], "请写明恢复供水的时间", since=0)
    row = await world.h.db.fetch_one("SELECT state FROM cases")
    assert row[0] == "in_progress"


async def test_unsatisfied_reopens_for_a_second_round(world: World):
    number = await file(world)
    card = await triage(world, number, "Routine", "ZLSGS")
    water = world.liaisons["ZLSGS"]
    await world.press(water, world.units["ZLSGS"], card, "✅ " + z("Sign"))
    card = await world.card(world.units["ZLSGS"], number, z("being handled"))
    await world.press(water, world.units["ZLSGS"], card, z("Final answer"))
    await world.reply_to_prompt(water, world.units["ZLSGS"], "已恢复供水。")
    review = await world.h.sim.wait_for(world.desk, "已恢复供水", since=0)
    await world.press(world.dispatcher, world.desk, review, "✅ " + z("Publish"))
    answer = await world.h.sim.wait_for(world.citizen, "已恢复供水", since=0)
    await world.citizen.press("☹️ " + label(ZH, "Unsatisfied"), message=answer.message_id)
    await world.h.sim.wait_for(world.citizen, lambda m: bool(m.buttons) and "Skip" not in m.text)
    await world.citizen.send("水压还是很低，六楼用不上水。")
    reopened = await world.h.sim.wait_for(world.units["ZLSGS"], "水压还是很低", since=0)
    assert reopened
    row = await world.h.db.fetch_one("SELECT state, round FROM cases")
    assert tuple(row) == ("in_progress", 2)


async def test_unit_groups_never_see_the_citizens_identity(world: World):
    await test_routine_case_from_filing_to_a_satisfied_citizen(world)
    secrets = ["张 三", "zhangsan_citizen", str(PEOPLE.citizen)]
    for chat in world.units.values():
        for message in world.h.sim.sent(chat, include_deleted=True):
            for secret in secrets:
                assert secret not in message.text, (chat, message.text)
    desk_texts = " ".join(m.text for m in world.h.sim.sent(world.desk))
    assert "zhangsan_citizen" in desk_texts  # staff do see who wrote


async def test_todo_search_and_the_staff_case_view(world: World):
    number = await file(world)
    await triage(world, number, "Routine", "ZLSGS")
    water = world.liaisons["ZLSGS"]
    await water.send("/todo", world.units["ZLSGS"])
    todo = await world.h.sim.wait_for(world.units["ZLSGS"], number)
    assert z("sign-for by the unit") in todo.text
    await world.dispatcher.send(f"/case {number}", world.desk)
    view = await world.h.sim.wait_for(world.desk, "zhangsan_citizen")
    assert "CaseAssigned" in view.text
    await world.dispatcher.send("/search 停水 district:langya", world.desk)
    found = await world.h.sim.wait_for(world.desk, lambda m: number in m.text
                                       and "zhangsan" not in m.text)
    assert found
    await world.outsider.send(f"/case {number}", world.desk)
    await world.h.sim.idle()
    assert not [m for m in world.h.sim.sent(world.desk)
                if "zhangsan_citizen" in m.text and m.message_id > view.message_id]


async def test_the_unit_picker_offers_units_added_at_run_time_and_not_disabled_ones(world):
    svc = world.h.svc
    await services.save_unit(svc, None, "XFJ", "市信访局", create=True, system=True)
    await services.set_unit_active(svc, None, "ZJJ", False, system=True)
    number = await file(world)
    card = await world.card(world.desk, number)
    await world.press(world.dispatcher, world.desk, card, z("Routine"))
    card = await world.card(world.desk, number, z("Track"))
    await world.press(world.dispatcher, world.desk, card, z("Other unit…"))
    picker = await world.h.sim.wait_for(
        world.desk, lambda m: any("▶" in r for r in m.buttons), since=world.last_press)
    offered: list[str] = []
    while True:
        offered += [button for row in picker.buttons for button in row if button not in "◀▶"]
        if not any("▶" in row for row in picker.buttons):
            break
        await world.press(world.dispatcher, world.desk, picker, "▶")
        picker = await world.h.sim.wait_for(
            world.desk, lambda m, p=picker: m.message_id == p.message_id, since=world.last_press)
    policy = world.h.policy
    assert "市信访局" in offered
    assert policy.units["ZJJ"].name not in offered
    assert len(offered) == len(policy.units)  # every other policy unit, and the new one
    await world.press(world.dispatcher, world.desk, picker, "市信访局")
    assert await world.h.count(
        "SELECT count(*) FROM assignments a JOIN cases c ON c.id = a.case_id"
        " WHERE c.number = ? AND a.unit_code = 'XFJ'", number) == 1

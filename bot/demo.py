"""`wenzheng demo`: the real bot against the Bot API simulator, acting out three cases.

No token, no network: the simulator and the bot run in this process, on a temporary
database and the example policy, through the same code paths real people use — every
step is a message or a button press. Exits 0 only if every step happened.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import app as bot_app
from bot.clock import ShiftedClock
from bot.config import EXAMPLE_POLICY, Settings, load_policy
from bot.domain.case import CaseState
from bot.domain.policy import Policy, Track
from bot.i18n import translator
from sandbox import BotApiSimulator, SentMessage, SimChat, SimUser
from storage.db import Database

logger = logging.getLogger(__name__)
g = translator("zh_Hans").gettext

ADMIN = 90001


@dataclass
class Stage:
    """The simulator, the bot, and the people and groups of the story."""

    sim: BotApiSimulator
    policy: Policy
    db: Database
    people: dict[str, SimUser] = field(default_factory=dict)
    groups: dict[str, SimChat] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    mark: int = 0

    def step(self, text: str) -> None:
        """Record a step of the story (printed at the end)."""
        self.steps.append(text)

    async def press(
        self,
        who: str,
        chat: SimChat | SimUser,
        button: str,
        where: SentMessage | None = None,
        needle: str | None = None,
    ) -> None:
        """Wait for a message with this button (and text), then press it as `who`."""

        def has(message: SentMessage) -> bool:
            return any(button in row for row in message.buttons) and (
                needle is None or needle in message.text
            )

        target = where or await self.sim.wait_for(chat, has, since=0, timeout=10)
        self.mark = self.sim.mark()
        await self.people[who].press(button, chat, message=target.message_id, timeout=10)

    async def reply_to_prompt(self, who: str, chat: SimChat, text: str) -> None:
        """Answer the ForceReply prompt the bot just gave `who`."""
        prompt = await self.sim.wait_for(chat, lambda m: "✍️" in m.text, since=self.mark, timeout=10)
        await self.people[who].reply(prompt, text, chat)
        await self.sim.wait_for(chat, lambda m: m.text.startswith("✓"), timeout=10)

    async def pick_unit(self, who: str, chat: SimChat, picker: SentMessage, unit: str) -> None:
        """Page through a unit picker to a unit and press it."""
        name = self.policy.units[unit].name
        while not any(name in row for row in picker.buttons):
            await self.press(who, chat, "▶", picker)
            picker = await self.sim.wait_for(
                chat, lambda m, p=picker: m.message_id == p.message_id, since=self.mark
            )
        await self.press(who, chat, name, picker)

    async def expect(self, chat: SimChat | SimUser, needle: str) -> SentMessage:
        """Wait for the bot to say something in a chat."""
        return await self.sim.wait_for(chat, needle, since=0, timeout=10)


async def set_up(stage: Stage) -> None:
    """The admin binds the groups and names the staff and liaisons, with commands."""
    sim, p = stage.sim, stage.people
    for name, uid in [
        ("管理员", ADMIN),
        ("分办员小陈", 90002),
        ("督查员老周", 90003),
        ("刘局长", 90004),
        ("自来水公司联络员", 90011),
        ("城管局联络员", 90012),
        ("南谯区联络员", 90013),
        ("生态环境局联络员", 90014),
    ]:
        p[name] = sim.user(name, user_id=uid, started=True)
    for name, uid in [("王女士", 90101), ("李先生", 90102), ("赵大爷", 90103)]:
        p[name] = sim.user(name, user_id=uid, started=True, username=f"citizen{uid}")
    groups = {
        "dispatch": ("市民留言分办中心", ["管理员", "分办员小陈"]),
        "supervision": ("督查督办组", ["管理员", "督查员老周"]),
        "leaders": ("领导批示群", ["管理员", "刘局长"]),
        "ZLSGS": ("自来水公司办件群", ["管理员", "自来水公司联络员"]),
        "CGJ": ("城管局办件群", ["管理员", "城管局联络员"]),
        "NQQ": ("南谯区办件群", ["管理员", "南谯区联络员"]),
        "STHJJ": ("生态环境局办件群", ["管理员", "生态环境局联络员"]),
    }
    admin = p["管理员"]
    for part, (title, members) in groups.items():
        stage.groups[part] = sim.group(title, members=[p[m] for m in members])
        await admin.send(f"/bind {part}", stage.groups[part])
        await sim.wait_for(stage.groups[part], timeout=10)
    for name, role in [
        ("分办员小陈", "dispatcher"),
        ("督查员老周", "supervisor"),
        ("刘局长", "leader"),
    ]:
        await admin.send(f"/staff add {p[name].id} {role}")
        await sim.wait_for(admin, timeout=10)
    for name, unit in [
        ("自来水公司联络员", "ZLSGS"),
        ("城管局联络员", "CGJ"),
        ("南谯区联络员", "NQQ"),
        ("生态环境局联络员", "STHJJ"),
    ]:
        await admin.send(f"/liaison add {unit} {p[name].id}")
        await sim.wait_for(admin, timeout=10)
    stage.step("管理员绑定了分办、督查、领导和四个单位的群，并设置了工作人员和联络员")


async def file_message(
    stage: Stage, who: str, text: str, category: str, district: str, photo: bool = False
) -> str:
    """A citizen writes to the bot and files the message; returns the case number."""
    citizen = stage.people[who]
    if photo:
        await citizen.send_photo(caption=text)
    else:
        await citizen.send(text)
    await stage.press(who, citizen, stage.policy.categories[category].name)
    await stage.press(who, citizen, stage.policy.districts[district].name)
    await stage.press(who, citizen, "✅ " + g("Submit"))
    filed = await stage.expect(citizen, "CZ")
    number = next(word for word in filed.text.replace("。", " ").split() if word.startswith("CZ"))
    return number[:13]


async def triage(stage: Stage, number: str, unit: str) -> None:
    """The desk puts the case on the routine track and assigns the unit."""
    desk = stage.groups["dispatch"]
    await stage.press("分办员小陈", desk, g("Routine"), needle=number)
    await stage.expect(desk, g("Routine"))
    name = stage.policy.units[unit].name
    await stage.press("分办员小陈", desk, "→ " + name, needle=number)
    await stage.expect(stage.groups[unit], number)


async def answer_and_publish(stage: Stage, number: str, unit: str, liaison: str, text: str) -> None:
    """The unit posts its final answer; the desk reviews and publishes it."""
    group = stage.groups[unit]
    await stage.press(liaison, group, g("Final answer"), needle=number)
    await stage.reply_to_prompt(liaison, group, text)
    await stage.press("分办员小陈", stage.groups["dispatch"], "✅ " + g("Publish"), needle=text[:8])


async def story(stage: Stage) -> None:
    """Three cases, from filing to the citizen's verdict."""
    await set_up(stage)
    # Case 1: a photo, a question to the citizen, a satisfied citizen.
    first = await file_message(
        stage,
        "王女士",
        "幸福小区3号楼从昨晚开始停水，家里有老人，请尽快处理。",
        "water",
        "langya",
        photo=True,
    )
    stage.step(f"王女士发来带照片的留言，受理为 {first}")
    await triage(stage, first, "ZLSGS")
    stage.step(f"分办中心将 {first} 列入“及时办”，交自来水公司办理")
    water = stage.groups["ZLSGS"]
    await stage.press("自来水公司联络员", water, "✅ " + g("Sign"), needle=first)
    await stage.press("自来水公司联络员", water, g("Ask the citizen"), needle=first)
    await stage.reply_to_prompt("自来水公司联络员", water, "请问是几单元？是否整栋楼都停水？")
    await stage.press("王女士", stage.people["王女士"], "✍️ " + g("Reply"))
    await stage.people["王女士"].send("2单元，整栋楼都没有水。")
    await stage.expect(water, "2单元，整栋楼都没有水")
    stage.step("自来水公司签收并通过机器人询问网民，网民作答（双方互不可见身份）")
    await answer_and_publish(
        stage,
        first,
        "ZLSGS",
        "自来水公司联络员",
        "经查为3号楼进水阀门故障，已于今日14时更换阀门，恢复供水。",
    )
    await stage.press("王女士", stage.people["王女士"], "😊 " + g("Satisfied"))
    await stage.expect(stage.people["王女士"], first)
    stage.step(f"{first} 办结答复经分办中心审核公开，网民评价“满意”，办结")
    # Case 2: returned, reassigned, answered.
    second = await file_message(
        stage,
        "李先生",
        "丰乐路中段路灯已经一周不亮了，晚上走路很危险。",
        "city_management",
        "nanqiao",
    )
    await triage(stage, second, "CGJ")
    city = stage.groups["CGJ"]
    await stage.press("城管局联络员", city, "↩️ " + g("Return"), needle=second)
    await stage.press("城管局联络员", city, g("Not our district (属地不符)"))
    await stage.reply_to_prompt("城管局联络员", city, "该路段路灯由南谯区负责维护。")
    desk = stage.groups["dispatch"]
    notice = await stage.expect(desk, "该路段路灯由南谯区负责维护")
    await stage.press("分办员小陈", desk, g("Reassign…"), notice)
    picker = await stage.sim.wait_for(
        desk,
        lambda m: m.message_id == notice.message_id and any("▶" in r for r in m.buttons),
        since=stage.mark,
    )
    await stage.pick_unit("分办员小陈", desk, picker, "NQQ")
    await stage.press("南谯区联络员", stage.groups["NQQ"], "✅ " + g("Sign"), needle=second)
    await answer_and_publish(
        stage, second, "NQQ", "南谯区联络员", "已安排维修人员更换损坏的灯具和线路，路灯已恢复照明。"
    )
    await stage.press("李先生", stage.people["李先生"], "🙂 " + g("Basically satisfied"))
    stage.step(f"{second} 被城管局以“属地不符”退回，分办中心改派南谯区，办结后网民评价“基本满意”")
    # Case 3: unsatisfied, reopened, answered again.
    third = await file_message(
        stage,
        "赵大爷",
        "小区旁边的工地每天夜里施工到凌晨，噪音太大睡不着觉。",
        "environment",
        "langya",
    )
    await triage(stage, third, "STHJJ")
    env = stage.groups["STHJJ"]
    await stage.press("生态环境局联络员", env, "✅ " + g("Sign"), needle=third)
    await answer_and_publish(
        stage, third, "STHJJ", "生态环境局联络员", "已责令施工单位夜间停止高噪声作业。"
    )
    await stage.press("赵大爷", stage.people["赵大爷"], "☹️ " + g("Unsatisfied"))
    await stage.expect(stage.people["赵大爷"], g("Skip"))
    await stage.people["赵大爷"].send("昨晚十二点还在施工，问题没有解决。")
    await stage.expect(env, "昨晚十二点还在施工")
    stage.step(f"{third} 网民不满意，案件重新交办生态环境局（第2轮）")
    await answer_and_publish(
        stage,
        third,
        "STHJJ",
        "生态环境局联络员",
        "已对施工单位立案处罚，并安排夜间巡查，连续三晚未再发现夜间施工。",
    )
    await stage.press("赵大爷", stage.people["赵大爷"], "😊 " + g("Satisfied"))
    await stage.expect(stage.people["赵大爷"], third)
    stage.step(f"{third} 第2轮办结后网民评价“满意”")


async def summary(stage: Stage) -> str:
    """One screen: every case, its track, unit, state, rounds and rating, in Chinese."""
    from handlers.render import RATINGS, STATE_NAMES, TRACK_NAMES

    rows = await stage.db.fetch_all(
        "SELECT c.number, c.track, c.lead_unit, c.state, c.round,"
        " (SELECT rating FROM ratings r WHERE r.case_id = c.id ORDER BY r.id DESC LIMIT 1)"
        " FROM cases c ORDER BY c.id"
    )
    widths = (14, 10, 18, 8, 4, 8)
    lines = [_columns(("编号", "办理方式", "承办单位", "状态", "轮次", "评价"), widths)]
    for number, track, unit, state, round_, rating in rows:
        cells = (
            number,
            g(TRACK_NAMES[Track(track)]) if track else "—",
            stage.policy.units[unit].name if unit in stage.policy.units else "—",
            g(STATE_NAMES[CaseState(state)]),
            str(round_),
            g(RATINGS[rating]) if rating in RATINGS else "—",
        )
        lines.append(_columns(cells, widths))
    return "\n".join(lines)


def _columns(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    # Chinese characters take two columns in a terminal, so pad by display width.
    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    padded = (c + " " * max(1, w - width(c)) for c, w in zip(cells, widths, strict=True))
    return " ".join(padded).rstrip()


async def run_demo(out: object = sys.stdout, *, quiet: bool = False) -> bool:
    """Play the story; print transcripts and a summary; True if every step happened."""
    started = time.monotonic()
    policy = load_policy(EXAMPLE_POLICY)
    clock = ShiftedClock(datetime(2026, 11, 30, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")))
    ok = False
    with tempfile.TemporaryDirectory(prefix="wenzheng-demo-") as folder:
        async with BotApiSimulator(seed=2026) as sim:
            settings = Settings(
                token=sim.token,
                api_base_url=sim.base_url,
                file_base_url=sim.file_base_url,
                admins=(ADMIN,),
                database=Path(folder) / "demo.db",
            )
            db = Database(settings.database)
            await db.connect()
            # Telegram's 20 messages a minute per group would stretch the story to a minute;
            # the simulator does not enforce it, so the demo runs without the limiter.
            app = bot_app.create_application(
                settings,
                policy=policy,
                clock=clock,
                db=db,
                persistence_interval=0.2,
                rate_limiter=False,
            )
            await bot_app.start(app, poll_timeout=1)
            stage = Stage(sim, policy, db)
            try:
                await story(stage)
                await sim.idle()
                ok = True
            except Exception:
                logger.exception("the demo stopped at step %d", len(stage.steps) + 1)
            finally:
                table = await summary(stage)
                await bot_app.stop(app)
                await db.close()
            if not quiet:
                write = out.write  # type: ignore[attr-defined]
                for part in ["ZLSGS", "NQQ", "CGJ", "STHJJ", "dispatch"]:
                    if part in stage.groups:
                        write(sim.transcript(stage.groups[part]) + "\n\n")
                for name in ("王女士", "李先生", "赵大爷"):
                    if name in stage.people:
                        write(sim.transcript(stage.people[name]) + "\n\n")
                write("════ 演示步骤 ════\n" + "\n".join(f"✔ {s}" for s in stage.steps) + "\n\n")
                write("════ 案件汇总 ════\n" + table + "\n\n")
                verdict = "全部步骤完成" if ok else "演示未完成（见上方日志）"
                write(f"{verdict}，用时 {time.monotonic() - started:.1f} 秒。\n")
    return ok


def main() -> int:
    """Entry point of `wenzheng demo`."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return 0 if asyncio.run(run_demo()) else 1

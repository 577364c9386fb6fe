"""A real PTB Application polling the simulator, driven by simulated people."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from sandbox import NoCallbackAnswer, SimulatorError, WaitTimeout

SEEN: list[Update] = []


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    SEEN.append(update)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("签收", callback_data="sign"),
                InlineKeyboardButton("退回", callback_data="back"),
            ]
        ]
    )
    assert update.effective_message is not None
    await update.effective_message.reply_html("<b>新工单</b> #1", reply_markup=keyboard)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    SEEN.append(update)
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"收到：{update.effective_message.text}")


async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.edited_message is not None
    await update.edited_message.reply_text(f"已更正：{update.edited_message.text}")


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    if query.data == "sign":
        await query.answer("已签收")
        await query.edit_message_text(
            f"<b>新工单</b> #1 — {query.from_user.first_name}已签收", parse_mode=ParseMode.HTML
        )
    elif query.data == "back":
        await query.answer("请填写退回理由", show_alert=True)
    else:
        await query.answer("按钮已失效")


async def silent(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A callback handler that forgets to answer."""


HANDLERS = (
    CommandHandler("start", start),
    CallbackQueryHandler(button),
    MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.TEXT, edited),
    MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, echo),
)


@pytest.fixture(autouse=True)
def _clear_seen():
    SEEN.clear()


async def test_echo_and_buttons(sim, run_app):
    alice = sim.user("张三", username="zhangsan")
    async with run_app(*HANDLERS):
        await alice.send("/start")
        card = await sim.wait_for(alice)
        assert card.text == "新工单 #1"
        assert card.buttons == [["签收", "退回"]]

        answer = await alice.press("签收")
        assert (answer.text, answer.show_alert) == ("已签收", False)
        updated = await sim.wait_for(alice, lambda m: "已签收" in m.text)
        assert updated.message_id == card.message_id
        assert sim.last(alice).text == "新工单 #1 — 张三已签收"
        assert sim.last(alice).edits[0].text == "新工单 #1"
        assert sim.last(alice).buttons == []

        with pytest.raises(SimulatorError, match=r"no bot message .* has a button '退回'"):
            await alice.press("退回")

        await alice.send("/start")
        await sim.wait_for(alice, "新工单")
        alert = await alice.press("退回")
        assert (alert.text, alert.show_alert) == ("请填写退回理由", True)
        forged = await alice.press_data(sim.last(alice), b"\xff\xfeforged")
        assert forged.text == "按钮已失效"

        message = await alice.send("路灯不亮")
        assert (await sim.wait_for(alice)).text == "收到：路灯不亮"
        await alice.edit(message, "路灯不亮，在人民路")
        assert (await sim.wait_for(alice)).text == "已更正：路灯不亮，在人民路"
        await sim.idle()

    first = SEEN[0].message
    assert first is not None and first.entities[0].type == "bot_command"
    assert first.from_user is not None and first.from_user.language_code == "zh-hans"


async def test_press_without_answer_raises(sim, run_app):
    alice = sim.user("张三")
    async with run_app(CommandHandler("start", start), CallbackQueryHandler(silent)):
        await alice.send("/start")
        await sim.wait_for(alice)
        with pytest.raises(NoCallbackAnswer, match="did not call answerCallbackQuery"):
            await alice.press("签收", timeout=0.3)


async def test_wait_for_times_out_with_context(sim, run_app):
    alice = sim.user("张三")
    async with run_app(*HANDLERS):
        await alice.send("/start")
        await sim.wait_for(alice)
        with pytest.raises(WaitTimeout, match="新工单"):
            await sim.wait_for(alice, "不存在的回复", timeout=0.2)


async def test_group_privacy_mode(sim, run_app):
    alice = sim.user("张三")
    bob = sim.user("李四")
    group = sim.group("住建局办件群", members=[alice, bob])
    async with run_app(*HANDLERS):
        chatter = await alice.send("大家好", chat=group)
        assert not chatter.delivered
        other_bot = await alice.send("/start@some_other_bot", chat=group)
        assert not other_bot.delivered
        await alice.send("/start@wenzheng_bot", chat=group)
        card = await sim.wait_for(group)
        assert card.text == "新工单 #1"
        mention = await bob.send("@wenzheng_bot 请处理", chat=group)
        assert mention.delivered
        assert (await sim.wait_for(group)).text == "收到：@wenzheng_bot 请处理"
        reply = await bob.reply(card, "我来")
        assert reply.delivered and reply["reply_to_message"]["message_id"] == card.message_id
        assert (await sim.wait_for(group)).text == "收到：我来"
        answer = await bob.press("签收", chat=group)
        assert answer.text == "已签收"
        await sim.wait_for(group, "李四已签收")
        await sim.idle()
    group_updates = [u.effective_message for u in SEEN]
    assert all(m is not None and m.from_user is not None for m in group_updates)


async def test_redelivered_update_has_the_same_id(sim, run_app):
    alice = sim.user("张三")
    async with run_app(*HANDLERS):
        message = await alice.send("重复")
        await sim.wait_for(alice)
        await sim.redeliver(message)
        await sim.wait_for(alice, count=2)
        await sim.idle()
    assert [u.update_id for u in SEEN] == [message.update_id, message.update_id]
    assert [m.text for m in sim.sent(alice)] == ["收到：重复", "收到：重复"]


async def test_injected_raw_updates(sim, run_app):
    async with run_app(*HANDLERS):
        sim.inject(
            {
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 42, "type": "private", "first_name": "陌生人"},
                    "from": {"id": 42, "is_bot": False, "first_name": "陌生人"},
                    "text": "hello",
                }
            }
        )
        sim.inject(
            {
                "channel_post": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": -1001, "type": "channel", "title": "频道"},
                    "text": "公告",
                }
            }
        )
        await sim.idle()
    # The bot tried to answer a chat Telegram does not know here.
    assert sim.calls("sendMessage")[-1].description == "Bad Request: chat not found"
    assert SEEN[0].effective_chat is not None and SEEN[0].effective_chat.id == 42


async def test_transcript_is_readable(sim, run_app):
    alice = sim.user("张三")
    group = sim.group("住建局办件群", members=[alice])
    async with run_app(*HANDLERS):
        await alice.send("/start")
        await sim.wait_for(alice)
        await alice.press("签收")
        await sim.wait_for(alice, "已签收")
        await alice.send_photo(caption="现场照片")
        await alice.send("闲聊", chat=group)
        await sim.idle()
    text = sim.transcript(alice)
    assert text.splitlines() == [
        f"── 张三 (private chat {alice.id}) ──",
        "张三: /start",
        "🤖 问政 (edited): 新工单 #1 — 张三已签收",
        f"张三 ▸ pressed [签收] on #{sim.sent(alice)[0].message_id}",
        "   ↳ 已签收",
        "张三: [photo] 现场照片",
    ]
    assert "闲聊   (not delivered to the bot)" in sim.transcript(group)
    assert "住建局办件群" in sim.transcript()

"""Bot commands stored per scope and language, readable by tests."""

from __future__ import annotations

import pytest
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeChatAdministrators,
)
from telegram.error import BadRequest


async def test_commands_per_scope_and_language(sim, bot):
    alice = sim.user("张三", started=True)
    group = sim.group("住建局办件群", members=[alice])
    assert await bot.set_my_commands([BotCommand("start", "开始"), BotCommand("help", "帮助")])
    assert await bot.set_my_commands([BotCommand("start", "Start")], language_code="en")
    assert await bot.set_my_commands(
        [BotCommand("todo", "待办工单")], scope=BotCommandScopeAllGroupChats()
    )
    assert await bot.set_my_commands(
        [BotCommand("stats", "统计")], scope=BotCommandScopeChatAdministrators(group.id)
    )
    assert await bot.set_my_commands(
        [BotCommand("me", "我的")], scope=BotCommandScopeChat(alice.id), language_code="zh"
    )

    assert sim.commands() == [("start", "开始"), ("help", "帮助")]
    assert sim.commands(language_code="en") == [("start", "Start")]
    assert sim.commands("all_group_chats") == [("todo", "待办工单")]
    assert sim.commands(BotCommandScopeChatAdministrators(group.id)) == [("stats", "统计")]
    assert sim.commands({"type": "chat", "chat_id": alice.id}, "zh") == [("me", "我的")]
    assert sim.commands(BotCommandScopeAllPrivateChats()) == []

    fetched = await bot.get_my_commands(scope=BotCommandScopeAllGroupChats())
    assert [(c.command, c.description) for c in fetched] == [("todo", "待办工单")]
    # No fallback between scopes or languages: each is its own list.
    assert await bot.get_my_commands(language_code="fr") == ()

    assert await bot.delete_my_commands(scope=BotCommandScopeAllGroupChats())
    assert sim.commands("all_group_chats") == []
    assert sim.commands() == [("start", "开始"), ("help", "帮助")]


@pytest.mark.parametrize(
    ("commands", "kwargs", "message"),
    [
        ([BotCommand("Start", "大写")], {}, "Bot_command_invalid"),
        ([BotCommand("/start", "斜杠")], {}, "Bot_command_invalid"),
        (
            [BotCommand("start", "x")],
            {"language_code": "zh-hans"},
            "Invalid language code specified",
        ),
    ],
)
async def test_invalid_commands(bot, commands, kwargs, message):
    with pytest.raises(BadRequest) as caught:
        await bot.set_my_commands(commands, **kwargs)
    assert caught.value.message == message


async def test_command_entities_like_telegram(sim, bot):
    alice = sim.user("张三")
    await alice.send("/start@wenzheng_bot 12345")
    await alice.send("请 /help")
    first, second = await bot.get_updates()
    assert first.message.entities[0].type == "bot_command"
    assert first.message.entities[0].offset == 0
    assert first.message.parse_entity(first.message.entities[0]) == "/start@wenzheng_bot"
    assert second.message.entities[0].offset == 2

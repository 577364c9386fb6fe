"""getUpdates, webhooks and the HTTP surface (tokens, methods, parameter encodings)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from telegram import Bot
from telegram.error import Conflict

from sandbox import BotApiSimulator


async def test_offset_confirms_and_drops_older_updates(sim, bot):
    alice = sim.user("张三", username="zhangsan")
    first = await alice.send("一")
    second = await alice.send("二")
    third = await alice.send("三")
    ids = [first.update_id, second.update_id, third.update_id]
    assert ids == sorted(ids) and len(set(ids)) == 3

    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == ids
    # Without a new offset nothing is confirmed: the same updates come again.
    assert [u.update_id for u in await bot.get_updates()] == ids

    updates = await bot.get_updates(offset=ids[1])
    assert [u.message.text for u in updates] == ["二", "三"]
    assert [u.update_id for u in await bot.get_updates()] == ids[1:]

    assert await bot.get_updates(offset=ids[2] + 1) == ()
    assert sim.pending_updates() == []


async def test_negative_offset_keeps_only_the_newest(sim, bot):
    alice = sim.user("张三")
    for text in ("一", "二", "三"):
        await alice.send(text)
    updates = await bot.get_updates(offset=-1)
    assert [u.message.text for u in updates] == ["三"]
    assert len(sim.pending_updates()) == 1


async def test_limit(sim, bot):
    alice = sim.user("张三")
    for n in range(5):
        await alice.send(f"第{n}条")
    assert len(await bot.get_updates(limit=2)) == 2


async def test_long_poll_returns_as_soon_as_an_update_arrives(sim, bot):
    alice = sim.user("张三")
    loop = asyncio.get_running_loop()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done()
    sent_at = loop.time()
    await alice.send("在吗")
    updates = await asyncio.wait_for(poll, 2)
    assert loop.time() - sent_at < 0.5
    assert updates[0].message.text == "在吗"


async def test_long_poll_times_out_empty(sim, bot):
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= loop.time() - started < 2


async def test_second_poller_terminates_the_first(sim, bot):
    # Two bot instances with one token, as when a second copy of the bot is started.
    other = Bot(sim.token, base_url=sim.base_url)
    await other.initialize()
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(other.get_updates(timeout=5))
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)
    await sim.user("张三").send("hi")
    assert len(await asyncio.wait_for(second, 2)) == 1
    await other.shutdown()


async def test_allowed_updates_filters_new_updates(sim, bot):
    alice = sim.user("张三")
    await bot.get_updates(allowed_updates=["callback_query"])
    dropped = await alice.send("不会送达")
    assert not dropped.delivered
    # The setting sticks until changed; an empty list restores the default set.
    await bot.get_updates(allowed_updates=[])
    kept = await alice.send("送达")
    assert [u.message.text for u in await bot.get_updates()] == ["送达"]
    assert kept.delivered


async def test_webhook_blocks_polling_until_deleted(sim, bot):
    alice = sim.user("张三")
    await alice.send("一")
    assert await bot.set_webhook("https://example.org/hook")
    info = await bot.get_webhook_info()
    assert info.url == "https://example.org/hook"
    assert info.pending_update_count == 1
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == ()
    assert (await bot.get_webhook_info()).url == ""


async def test_get_me_describes_the_bot(sim, bot):
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "wenzheng_bot"
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False
    assert me.id == int(sim.token.split(":")[0])


async def _raw(sim, path, **kwargs):
    url = f"http://{sim.host}:{sim.port}{path}"
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as resp:
        return resp.status, json.loads(await resp.text())


async def test_http_surface_tokens_methods_and_encodings(sim):
    status, body = await _raw(sim, "/botnot-a-token/getMe")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})

    status, body = await _raw(sim, f"/bot{sim.token}/getSomethingElse")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})

    # Method names are case-insensitive; any well-formed token is accepted.
    status, body = await _raw(sim, "/bot123456:ABCdef/GETME")
    assert status == 200 and body["result"]["username"] == "wenzheng_bot"

    alice = sim.user("张三", started=True)
    markup = {"inline_keyboard": [[{"text": "签收", "callback_data": "sign"}]]}
    status, body = await _raw(
        sim,
        f"/bot{sim.token}/sendMessage",
        json={"chat_id": alice.id, "text": "json", "reply_markup": markup},
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    status, body = await _raw(
        sim,
        f"/bot{sim.token}/sendMessage",
        data={"chat_id": str(alice.id), "text": "form", "reply_markup": json.dumps(markup)},
    )
    assert status == 200 and body["result"]["text"] == "form"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(alice.id))
    form.add_field("document", b"%PDF-1.4 x", filename="a.pdf", content_type="application/pdf")
    status, body = await _raw(sim, f"/bot{sim.token}/sendDocument", data=form)
    assert status == 200 and body["result"]["document"]["file_name"] == "a.pdf"
    assert [m.text for m in sim.sent(alice)] == ["json", "form", ""]
    assert sim.stats.calls["sendMessage"] == 2
    assert sim.calls("sendmessage")[0].params["text"] == "json"


async def test_simulator_works_as_context_manager_and_restarts():
    sim = BotApiSimulator()
    async with sim:
        port = sim.port
        assert port > 0
        assert sim.base_url == f"http://127.0.0.1:{port}/bot"
        assert sim.file_base_url == f"http://127.0.0.1:{port}/file/bot"
        async with Bot(sim.token, base_url=sim.base_url) as bot:
            assert (await bot.get_me()).username == "wenzheng_bot"
    assert not sim.running

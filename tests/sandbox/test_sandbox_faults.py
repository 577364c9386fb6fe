"""Flood limits, forced 429s and injected network faults, as PTB sees them."""

from __future__ import annotations

import datetime as dtm

import pytest
from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TimedOut

from sandbox import BotApiSimulator, RateLimits


async def test_rate_limits_are_off_by_default(sim, bot):
    alice = sim.user("张三", started=True)
    for n in range(10):
        await bot.send_message(alice.id, f"第{n}条")
    assert sim.stats.too_many_requests == 0


async def test_private_chat_flood_gives_retry_after(sim, bot):
    # One message per 5 s after the burst: a busy machine cannot refill it mid-test.
    sim.enable_rate_limits(RateLimits(private_per_second=0.2, private_burst=3))
    alice = sim.user("张三", started=True)
    bob = sim.user("李四", started=True)
    for n in range(3):  # the burst allowance
        await bot.send_message(alice.id, f"第{n}条")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(alice.id, "太快了")
    assert caught.value.retry_after == dtm.timedelta(seconds=5)
    assert sim.requests[-1].description == "Too Many Requests: retry after 5"
    # Other chats have their own budget; edits in private chats are not limited.
    await bot.send_message(bob.id, "另一个人")
    await bot.edit_message_text("改", chat_id=alice.id, message_id=sim.last(alice).message_id)
    assert sim.stats.too_many_requests == 1
    assert [m.text for m in sim.sent(alice)] == ["第0条", "第1条", "改"]


async def test_group_flood_counts_edits(bot):
    limits = RateLimits(group_per_minute=20, group_burst=3)
    async with BotApiSimulator(rate_limits=limits) as sim:
        alice = sim.user("张三")
        group = sim.group("住建局办件群", members=[alice])
        async with Bot(sim.token, base_url=sim.base_url) as other:
            first = await other.send_message(group.id, "一")
            await other.edit_message_text("一（改）", chat_id=group.id, message_id=first.message_id)
            await other.send_message(group.id, "二")
            with pytest.raises(RetryAfter) as caught:
                await other.send_message(group.id, "三")
        # 20 per minute refills one message every three seconds.
        assert caught.value.retry_after == dtm.timedelta(seconds=3)
        assert sim.stats.too_many_requests == 1


async def test_overall_limit(bot):
    # A slow refill, so a busy machine cannot refill the bucket between the six sends.
    limits = RateLimits(overall_per_second=0.5, overall_burst=5, private_burst=100)
    async with BotApiSimulator(rate_limits=limits) as sim:
        people = [sim.user(f"用户{n}", started=True) for n in range(6)]
        async with Bot(sim.token, base_url=sim.base_url) as other:
            for person in people[:5]:
                await other.send_message(person.id, "通知")
            with pytest.raises(RetryAfter):
                await other.send_message(people[5].id, "通知")


async def test_forced_429(sim, bot):
    alice = sim.user("张三", started=True)
    sim.force_429(count=2, retry_after=7, methods=["sendMessage"])
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(alice.id, "x")
        assert caught.value.retry_after == dtm.timedelta(seconds=7)
    await bot.send_message(alice.id, "好了")
    assert sim.stats.faults["forced_429"] == 2
    assert sim.stats.too_many_requests == 2


async def test_injected_server_errors(sim, bot):
    alice = sim.user("张三", started=True)
    sim.set_faults(error_rate=1.0, error_status=500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(alice.id, "x")
    sim.set_faults(error_rate=1.0, error_status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(alice.id, "x")
    # getUpdates is spared unless named, so polling keeps working.
    assert await bot.get_updates() == ()
    sim.clear_faults()
    await bot.send_message(alice.id, "恢复")
    assert sim.stats.faults["error_500"] == 1 and sim.stats.faults["error_502"] == 1
    assert [m.text for m in sim.sent(alice)] == ["恢复"]


async def test_dropped_connection_after_the_message_went_out(sim, bot):
    alice = sim.user("张三", started=True)
    sim.set_faults(drop_rate=1.0, methods=["sendMessage"])
    with pytest.raises(NetworkError):
        await bot.send_message(alice.id, "到底发出去没有")
    # Like a real network failure, the bot cannot know the message was delivered.
    assert [m.text for m in sim.sent(alice)] == ["到底发出去没有"]
    assert sim.stats.faults["drop"] == 1


async def test_delay_past_the_client_timeout(sim, bot):
    alice = sim.user("张三", started=True)
    sim.set_faults(delay_rate=1.0, delay_seconds=3.0, methods=["sendMessage"])
    with pytest.raises(TimedOut):
        await bot.send_message(alice.id, "慢", read_timeout=0.3)
    assert [m.text for m in sim.sent(alice)] == ["慢"]
    assert sim.stats.faults["delay"] == 1


async def test_connection_reset_before_the_call_took_effect(sim, bot):
    alice = sim.user("张三", started=True)
    sim.set_faults(reset_rate=1.0, methods=["sendMessage"])
    with pytest.raises(NetworkError):
        await bot.send_message(alice.id, "没发出去")
    # Unlike a drop, the call never reached Telegram: nothing was sent.
    assert sim.sent(alice) == []
    assert sim.stats.faults["reset"] == 1
    assert sim.stats.fault_methods[("reset", "sendMessage")] == 1


async def test_a_share_of_calls_answered_429_with_retry_after(sim, bot):
    alice = sim.user("张三", started=True)
    sim.set_faults(throttle_rate=1.0, throttle_retry_after=4, methods=["sendMessage"])
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(alice.id, "x")
    assert caught.value.retry_after == dtm.timedelta(seconds=4)
    assert sim.sent(alice) == []
    assert sim.stats.faults["throttle"] == 1 and sim.stats.too_many_requests == 1
    assert sim.stats.fault_methods[("throttle", "sendMessage")] == 1


async def _failures(seed: int) -> list[bool]:
    async with BotApiSimulator(seed=seed) as sim:
        alice = sim.user("张三", started=True)
        sim.set_faults(error_rate=0.5, error_status=500)
        outcome = []
        async with Bot(sim.token, base_url=sim.base_url) as other:
            for _ in range(12):
                try:
                    await other.send_message(alice.id, "x")
                    outcome.append(True)
                except NetworkError:
                    outcome.append(False)
        return outcome


async def test_faults_are_reproducible_with_a_seed():
    first, second = await _failures(3), await _failures(3)
    assert first == second
    assert True in first and False in first

"""PTB's transport: our aiohttp request class keeps HTTPXRequest's contract (bot/http.py).

Every test runs with both backends against the Bot API simulator, so a difference between
them shows as one failing parameter.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from telegram import Bot, InputFile
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.request import BaseRequest, HTTPXRequest

from bot.http import BACKENDS, AiohttpRequest
from sandbox import BotApiSimulator


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter without a deprecation warning


def request_for(backend: str, **options: Any) -> BaseRequest:
    """The backend's request class with the given HTTPXRequest-style options."""
    return AiohttpRequest(**options) if backend == "aiohttp" else HTTPXRequest(**options)


@pytest.fixture
async def sim() -> AsyncIterator[BotApiSimulator]:
    async with BotApiSimulator(seed=5) as simulator:
        yield simulator


def bot_for(sim: BotApiSimulator, backend: str, base_url: str | None = None, **options: Any) -> Bot:
    return Bot(
        sim.token,
        base_url=base_url or sim.base_url,
        base_file_url=sim.file_base_url,
        request=request_for(backend, **options),
        get_updates_request=request_for(backend, connection_pool_size=1),
    )


backends = pytest.mark.parametrize("backend", BACKENDS)


@backends
async def test_an_upload_arrives_with_its_name_and_bytes_and_downloads_again(sim, backend):
    person = sim.user("王", started=True)
    data = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    async with bot_for(sim, backend) as bot:
        message = await bot.send_document(
            person.id, InputFile(data, filename="交办函 CZ2026-000001.pdf"),
            caption="<b>交办函</b>", parse_mode="HTML",
        )
        assert message.document is not None
        assert message.document.file_name == "交办函 CZ2026-000001.pdf"
        assert message.caption == "交办函"
        file = await bot.get_file(message.document.file_id)
        assert bytes(await file.download_as_bytearray()) == data


@backends
async def test_a_photo_a_person_sent_downloads(sim, backend):
    person = sim.user("李", started=True)
    incoming = await person.send_photo(caption="门口的垃圾")
    largest = incoming.raw["photo"][-1]
    async with bot_for(sim, backend) as bot:
        file = await bot.get_file(largest["file_id"])
        content = bytes(await file.download_as_bytearray())
    assert content.startswith(b"\xff\xd8") and len(content) == largest["file_size"]


@backends
async def test_non_ascii_text_and_keyboards_survive_the_round_trip(sim, backend):
    person = sim.user("张", started=True)
    async with bot_for(sim, backend) as bot:
        sent = await bot.send_message(person.id, "已受理 & <转办> 😊", reply_markup=None)
    assert sent.text == "已受理 & <转办> 😊"
    assert sim.last(person).text == "已受理 & <转办> 😊"


@backends
async def test_a_slow_answer_times_out_and_a_longer_read_timeout_waits_for_it(sim, backend):
    person = sim.user("赵", started=True)
    sim.set_faults(delay_rate=1.0, delay_seconds=1.0, methods=["sendMessage"])
    async with bot_for(sim, backend, read_timeout=0.2) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(person.id, "slow")
        sent = await bot.send_message(person.id, "patient", read_timeout=5)
    assert sent.text == "patient"


@backends
async def test_a_full_pool_times_out_without_sending(sim, backend):
    person = sim.user("钱", started=True)
    sim.set_faults(delay_rate=1.0, delay_seconds=1.0, methods=["sendMessage"])
    async with bot_for(sim, backend, connection_pool_size=1, pool_timeout=0.2) as bot:
        results = await asyncio.gather(
            bot.send_message(person.id, "first"),
            bot.send_message(person.id, "second"),
            return_exceptions=True,
        )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], TimedOut)
    assert "Pool timeout" in errors[0].message
    assert [m.text for m in sim.sent(person)] in (["first"], ["second"])


@backends
async def test_a_refused_connection_is_a_network_error_with_its_cause(sim, backend):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot = bot_for(sim, backend, base_url=f"http://127.0.0.1:{port}/bot")
    await bot.request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(1, "nobody there")
    finally:
        await bot.request.shutdown()
    assert not isinstance(raised.value, TimedOut)
    assert raised.value.__cause__ is not None  # the outbox tells network from 5xx by this


@backends
async def test_server_errors_and_flood_control_reach_the_caller_as_ptb_errors(sim, backend):
    person = sim.user("孙", started=True)
    async with bot_for(sim, backend) as bot:
        sim.force_429(1, retry_after=3)
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(person.id, "too fast")
        assert flood.value.retry_after.total_seconds() == 3
        sim.set_faults(error_rate=1.0, error_status=502)
        with pytest.raises(NetworkError) as bad_gateway:
            await bot.send_message(person.id, "gateway")
        assert not isinstance(bad_gateway.value, TimedOut)
        sim.set_faults(drop_rate=1.0)
        with pytest.raises(NetworkError) as dropped:
            await bot.send_message(person.id, "dropped")
        assert dropped.value.__cause__ is not None
        sim.clear_faults()
        assert (await bot.send_message(person.id, "fine")).text == "fine"


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A forward HTTP proxy on 127.0.0.1 that records the URLs it was asked for."""
    seen: list[str] = []
    session = ClientSession()

    async def forward(request: web.Request) -> web.Response:
        # A forward proxy is asked for the absolute URL; the Host header names the target.
        target = f"http://{request.headers['Host']}{request.path_qs}"
        seen.append(target)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        async with session.request(request.method, target, data=body, headers=headers) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(),
                content_type=answer.content_type,
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()
        await session.close()


@backends
async def test_calls_go_through_the_configured_proxy(sim, backend, proxy):
    url, seen = proxy
    person = sim.user("周", started=True)
    async with bot_for(sim, backend, proxy=url) as bot:
        await bot.send_message(person.id, "via proxy")
    assert sim.last(person).text == "via proxy"
    assert any(target.endswith("/sendMessage") for target in seen)


@backends
async def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(
    sim, backend, proxy, monkeypatch
):
    url, seen = proxy
    person = sim.user("吴", started=True)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    async with bot_for(sim, backend) as bot:
        await bot.send_message(person.id, "via the environment's proxy")
        await bot.send_message(person.id, "and again")
    assert sum(target.endswith("/sendMessage") for target in seen) == 2
    seen.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with bot_for(sim, backend) as bot:
        await bot.send_message(person.id, "straight to the host")
    assert sim.last(person).text == "straight to the host"
    assert seen == []


async def test_a_socks_proxy_is_refused_up_front():
    with pytest.raises(ValueError, match="socks5"):
        AiohttpRequest(proxy="socks5://127.0.0.1:1080")


async def test_the_aiohttp_request_opens_closes_and_reopens(sim):
    request = AiohttpRequest()
    # Like HTTPXRequest, it works before initialize() (PTB's Bot may call it so).
    assert (await request.do_request(f"{sim.base_url}{sim.token}/getMe", "POST"))[0] == 200
    await request.shutdown()
    async with request:
        code, body = await request.do_request(f"{sim.base_url}{sim.token}/getMe", "POST")
        assert code == 200 and b'"ok": true' in body
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{sim.base_url}{sim.token}/getMe", "POST")
    await request.shutdown()  # twice is harmless
    await request.initialize()
    try:
        assert (await request.do_request(f"{sim.base_url}{sim.token}/getMe", "POST"))[0] == 200
    finally:
        await request.shutdown()
    assert request.read_timeout == 5.0

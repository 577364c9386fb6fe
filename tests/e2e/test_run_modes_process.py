"""`wenzheng run --webhook` and `wenzheng run` with a metrics port, as real processes that
stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import aiohttp

from bot.web import SECRET_HEADER
from sandbox import BotApiSimulator
from tests.e2e.test_webhook import free_port


async def wait_for_health(http: aiohttp.ClientSession, url: str,
                          process: asyncio.subprocess.Process) -> dict:
    for _ in range(400):
        assert process.returncode is None, "the bot process ended early"
        with contextlib.suppress(aiohttp.ClientConnectionError):  # not listening yet
            async with http.get(url) as response:
                if response.status == 200:
                    return await response.json()
        await asyncio.sleep(0.05)
    raise AssertionError("the bot never became healthy")


async def run_bot(tmp_path, sim, extra_env, *args):
    env = {**os.environ, "WENZHENG_TOKEN": sim.token, "WENZHENG_API_BASE_URL": sim.base_url,
           "WENZHENG_FILE_BASE_URL": sim.file_base_url,
           "WENZHENG_DATABASE": str(tmp_path / "bot.db"), "WENZHENG_LOG_LEVEL": "WARNING",
           **extra_env}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", *args, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def stop_cleanly(process: asyncio.subprocess.Process) -> None:
    try:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr


async def test_the_webhook_process_answers_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    async with BotApiSimulator(seed=9) as sim, aiohttp.ClientSession() as http:
        process = await run_bot(tmp_path, sim, {
            "WENZHENG_WEBHOOK_URL": "https://bot.example.org/hook",
            "WENZHENG_WEBHOOK_SECRET": "process-secret",
            "WENZHENG_LISTEN": f"127.0.0.1:{port}"}, "--webhook")
        try:
            await wait_for_health(http, f"http://127.0.0.1:{port}/healthz", process)
            person = sim.user("孙", language_code="en")
            sent = await person.send("/start")
            async with http.post(f"http://127.0.0.1:{port}/hook", json=sent.update,
                                 headers={SECRET_HEADER: "process-secret"}) as response:
                assert response.status == 200
            assert await sim.wait_for(person, "Welcome", timeout=20)
        finally:
            await stop_cleanly(process)


async def test_the_polling_process_serves_health_on_the_metrics_port(tmp_path):
    port = free_port()
    async with BotApiSimulator(seed=10) as sim, aiohttp.ClientSession() as http:
        process = await run_bot(tmp_path, sim, {"WENZHENG_METRICS_PORT": str(port)})
        try:
            body = await wait_for_health(http, f"http://127.0.0.1:{port}/healthz", process)
            assert body["status"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert "wenzheng_outbox_depth" in await response.text()
        finally:
            await stop_cleanly(process)


async def test_webhook_mode_without_a_secret_exits_2_and_says_what_is_missing(tmp_path):
    async with BotApiSimulator(seed=12) as sim:
        process = await run_bot(tmp_path, sim,
                                {"WENZHENG_WEBHOOK_URL": "https://bot.example.org/hook"},
                                "--webhook")
        code = await asyncio.wait_for(process.wait(), timeout=20)
        stderr = (await process.stderr.read()).decode()
    assert code == 2
    assert "WENZHENG_WEBHOOK_SECRET" in stderr

"""`wenzheng run` as a real process: polls the simulator, answers, and stops cleanly on
SIGTERM with nothing half-written."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sandbox import BotApiSimulator


async def test_the_bot_process_answers_and_stops_cleanly_on_sigterm(tmp_path):
    async with BotApiSimulator(seed=5) as sim:
        env = {**os.environ, "WENZHENG_TOKEN": sim.token, "WENZHENG_API_BASE_URL": sim.base_url,
               "WENZHENG_FILE_BASE_URL": sim.file_base_url,
               "WENZHENG_DATABASE": str(tmp_path / "bot.db"), "WENZHENG_LOG_LEVEL": "WARNING"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            person = sim.user("孙", language_code="en", started=True)
            await person.send("/start")
            welcome = await sim.wait_for(person, "Welcome", timeout=20)
            assert welcome
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
        assert code == 0, stderr
        assert "Traceback" not in stderr

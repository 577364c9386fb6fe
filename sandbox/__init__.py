"""A local Bot API simulator for tests and the offline demo.

Start one, point PTB at it, and drive it with simulated people::

    async with BotApiSimulator() as sim:
        app = (ApplicationBuilder().token(sim.token).base_url(sim.base_url)
               .base_file_url(sim.file_base_url).build())
        alice = sim.user("张三", username="zhangsan")
        await alice.send("/start")
        reply = await sim.wait_for(alice)
"""

from sandbox.errors import ApiError, NoCallbackAnswer, SimulatorError, WaitTimeout
from sandbox.limits import FaultConfig, RateLimits
from sandbox.media import make_jpeg
from sandbox.people import SimChat, SimUser
from sandbox.records import CallbackAnswer, EditRecord, Incoming, RequestRecord, SentMessage, Stats
from sandbox.server import BotApiSimulator
from sandbox.textparse import parse_html, utf16_len

__all__ = [
    "ApiError",
    "BotApiSimulator",
    "CallbackAnswer",
    "EditRecord",
    "FaultConfig",
    "Incoming",
    "NoCallbackAnswer",
    "RateLimits",
    "RequestRecord",
    "SentMessage",
    "SimChat",
    "SimUser",
    "SimulatorError",
    "Stats",
    "WaitTimeout",
    "make_jpeg",
    "parse_html",
    "utf16_len",
]

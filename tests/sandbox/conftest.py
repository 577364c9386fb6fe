"""Fixtures for the simulator's own tests: a running simulator, a Bot, a polling Application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from telegram import Bot
from telegram.ext import Application, ApplicationBuilder, BaseHandler

from sandbox import BotApiSimulator


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (PTBDeprecationWarning) whenever RetryAfter or another time period is
    # built as an int; with filterwarnings=error that warning would replace the real error.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def sim() -> AsyncIterator[BotApiSimulator]:
    async with BotApiSimulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
async def bot(sim: BotApiSimulator) -> AsyncIterator[Bot]:
    async with Bot(sim.token, base_url=sim.base_url, base_file_url=sim.file_base_url) as b:
        yield b


@contextlib.asynccontextmanager
async def _running_app(
    sim: BotApiSimulator, *handlers: BaseHandler[Any, Any, Any], **polling: Any
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = (
        ApplicationBuilder()
        .token(sim.token)
        .base_url(sim.base_url)
        .base_file_url(sim.file_base_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=polling.pop("timeout", 2), **polling)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@pytest.fixture
def run_app(sim: BotApiSimulator) -> Callable[..., Any]:
    """``async with run_app(handler, ...) as app:`` runs a polling PTB Application."""

    def factory(*handlers: BaseHandler[Any, Any, Any], **polling: Any) -> Any:
        return _running_app(sim, *handlers, **polling)

    return factory

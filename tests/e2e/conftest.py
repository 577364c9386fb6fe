"""The real application, polling the Bot API simulator over HTTP, on a real SQLite file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import app as bot_app
from bot import services
from bot.clock import FrozenClock
from bot.config import Settings
from bot.domain.policy import Policy
from sandbox import BotApiSimulator
from storage.db import Database, to_db
from tests.privacy import Citizen, Leak, Recorder, log_leaks, unit_group_leaks


@dataclass
class Harness:
    """Everything a scenario needs: the simulator, the running bot and its database."""

    sim: BotApiSimulator
    app: bot_app.WenzhengApp
    db: Database
    clock: FrozenClock
    path: Path
    settings: Settings
    policy: Policy
    log: Recorder = field(default_factory=Recorder)
    check_privacy: bool = True  # off only for a scenario that leaks on purpose

    @property
    def svc(self) -> services.Services:
        """The bot's services (for arranging state the scenario does not act out)."""
        assert self.app.bot_data.services is not None
        return self.app.bot_data.services

    async def restart(self) -> None:
        """Stop the bot cleanly and start a new one on the same database."""
        await bot_app.stop(self.app)
        await self.db.close()
        self.db = Database(self.path)
        await self.db.connect()
        self.app = bot_app.create_application(
            self.settings, policy=self.policy, clock=self.clock, db=self.db,
            persistence_interval=0.1,
        )
        await bot_app.start(self.app, poll_timeout=1)

    async def drained(self, within: float = 5.0) -> None:
        """Wait until the outbox has nothing due (rows for unbound groups may wait on)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.sim.idle()
            # Due rows the sender could send now: not waiting behind an earlier row.
            due = await self.count(
                "SELECT count(*) FROM outbox o WHERE state = 'pending' AND next_attempt_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending'"
                " AND p.recipient_kind = o.recipient_kind AND p.recipient_ref IS o.recipient_ref"
                " AND p.id < o.id)",
                to_db(self.clock.now()),
            )
            if due == 0:
                return
            if loop.time() > deadline:
                raise AssertionError(f"{due} outbox rows still due after {within}s")
            await asyncio.sleep(0.02)

    async def privacy_leaks(self) -> list[Leak]:
        """What the unit groups saw and the logs said that they must not (tests/privacy.py)."""
        consent: dict[int, set[str]] = {}
        for citizen_id, number, shared in await self.db.fetch_all(
            "SELECT citizen_id, number, contact_shared FROM cases", ()
        ):
            consent.setdefault(citizen_id, set()).update([number] if shared else [])
        users = {row[0]: row for row in await self.db.fetch_all(
            "SELECT id, first_name, last_name, username, phone FROM users", ())}
        citizens = [
            Citizen(uid, *(users.get(uid, (uid, None, None, None, None))[1:]),
                    consented_cases=frozenset(numbers))
            for uid, numbers in consent.items()
        ]
        unit_chats = {row[0] for row in await self.db.fetch_all(
            "SELECT chat_id FROM chat_bindings WHERE purpose = 'unit'", ())}
        messages = [(m.chat_id, m.text) for chat in self.sim.chats()
                    for m in self.sim.sent(chat, include_deleted=True)]
        messages += [(m.chat_id, e.text) for chat in self.sim.chats()
                     for m in self.sim.sent(chat, include_deleted=True) for e in m.edits]
        names = [n for u in self.sim.users() for n in (
            u.full_name, f"{u.first_name}{u.last_name or ''}", u.username or "")]
        names += [n for row in users.values() for n in row[1:4] if n]
        phones = [row[4] for row in users.values() if row[4]]
        return (unit_group_leaks(messages, unit_chats, citizens)
                + log_leaks(self.log.records, names, phones))

    async def count(self, sql: str, *params: object) -> int:
        """A count from the bot's database."""
        row = await self.db.fetch_one(sql, params)
        assert row is not None
        return int(row[0])


@pytest.fixture
async def harness(tmp_path: Path, policy: Policy, clock: FrozenClock) -> AsyncIterator[Harness]:
    """A running bot against a fresh simulator and database."""
    async with running_harness(tmp_path, policy, clock) as h:
        yield h


@asynccontextmanager
async def running_harness(tmp_path: Path, policy: Policy, clock: FrozenClock,
                          *, rate_limit: bool = True) -> AsyncIterator[Harness]:
    """The `harness` fixture's bot, for tests that keep one bot across many examples, or
    stop and start it themselves (`rate_limit=False`: no client flood limits, for suites
    that send hundreds of notices to a simulator that has none).

    On leaving, the scenario's privacy check runs (tests/privacy.py) and fails it on a leak.
    """
    async with BotApiSimulator(seed=11) as sim:
        settings = Settings(token=sim.token, api_base_url=sim.base_url,
                            file_base_url=sim.file_base_url, admins=(1000,),
                            database=tmp_path / "bot.db", rate_limit=rate_limit)
        db = Database(settings.database)
        await db.connect()
        app = bot_app.create_application(settings, policy=policy, clock=clock, db=db,
                                         persistence_interval=0.1)
        await bot_app.start(app, poll_timeout=1)
        h = Harness(sim, app, db, clock, settings.database, settings, policy)
        root = logging.getLogger()
        level = root.level
        root.addHandler(h.log)
        root.setLevel(min(level, logging.INFO))
        leaks: list[Leak] = []
        try:
            yield h
        finally:
            root.removeHandler(h.log)
            root.setLevel(level)
            if h.app.running:  # a test may have stopped it itself
                await bot_app.stop(h.app)
            if h.check_privacy:
                leaks = await h.privacy_leaks()
            await h.db.close()
        # Every scenario is also a privacy check (DESIGN §7): see tests/privacy.py.
        assert not leaks, "privacy leaks:\n" + "\n".join(map(str, leaks))


def label(language: str, text: str) -> str:
    """A button label or message fragment as the bot shows it in a language."""
    from bot.i18n import translator

    return translator(language).gettext(text)

"""Shared pieces of the reliability suites: the bot as a real process (`wenzheng run`), a
city set up in its database, people driving it through the simulator with the patience of
real users (they try again when the bot does not answer), and the checks every suite ends
with: each delivery accounted for, duplicates counted, `wenzheng doctor` clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from bot import app as bot_app
from bot import services
from bot.clock import Clock, FrozenClock
from bot.config import EXAMPLE_POLICY, load_policy
from bot.domain.policy import Policy
from bot.i18n import translator
from sandbox import BotApiSimulator, NoCallbackAnswer, SentMessage, SimChat, SimUser
from sandbox.errors import SimulatorError, WaitTimeout
from storage.db import Database
from tests.conftest import PEOPLE
from tests.e2e.conftest import Harness, running_harness

ROOT = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"[A-Z]{1,6}\d{4}-\d{6}")
UNITS = ("ZJJ", "CGJ", "LYQ", "ZLSGS")
LIAISON_IDS = {"ZJJ": PEOPLE.housing, "CGJ": PEOPLE.city, "LYQ": PEOPLE.langya,
               "ZLSGS": PEOPLE.water}
# The unit each category goes to in the drivers (any active unit would do).
CATEGORY_UNIT = {"housing": "ZJJ", "city_management": "CGJ", "water": "ZLSGS",
                 "environment": "LYQ"}


def filed_pattern(language: str = "zh_Hans") -> re.Pattern[str]:
    """The citizen's "filed as …" notice as it reads in a chat (tags gone)."""
    template = translator(language).gettext("Your message has been filed as <b>{number}</b>.")
    plain = re.sub(r"<[^>]+>", "", template)
    before, after = plain.split("{number}")
    return re.compile(re.escape(before) + r"(?P<number>[A-Z]{1,6}\d{4}-\d{6})" + re.escape(after))


# -- the bot as a process ------------------------------------------------------------------


class BotProcess:
    """`wenzheng run` polling the simulator, on one database file, started again and again.

    Output of every run goes to one log file (a pipe nobody reads could fill and stall
    the bot)."""

    def __init__(self, sim: BotApiSimulator, database: Path, log: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.sim = sim
        self.database = database
        self.log_path = log
        self.env = {
            **os.environ,
            "WENZHENG_TOKEN": sim.token,
            "WENZHENG_API_BASE_URL": sim.base_url,
            "WENZHENG_FILE_BASE_URL": sim.file_base_url,
            "WENZHENG_DATABASE": str(database),
            "WENZHENG_ADMINS": str(PEOPLE.admin),
            "WENZHENG_LOG_LEVEL": "WARNING",
            # The simulator has no flood limits; ours would hold 300 desk cards for 15 min.
            "WENZHENG_RATE_LIMIT": "off",
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.kill_times: list[float] = []  # epoch seconds, as the simulator dates messages

    @property
    def running(self) -> bool:
        """Whether a bot process is alive."""
        return self.process is not None and self.process.returncode is None

    async def start(self, ready_within: float = 30.0) -> None:
        """Start the bot and wait until it polls the simulator."""
        assert not self.running, "one bot at a time"
        polls = self.sim.stats.calls["getUpdates"]
        self._log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", env=self.env, cwd=self.database.parent,
            stdout=self._log, stderr=subprocess.STDOUT)
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_within
        while self.sim.stats.calls["getUpdates"] <= polls:
            if self.process.returncode is not None:
                raise AssertionError(f"the bot exited with {self.process.returncode}:\n"
                                     + self.log_tail())
            if loop.time() > deadline:
                raise AssertionError("the bot never polled:\n" + self.log_tail())
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a power cut or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.kill_times.append(time.time())
        await self.process.wait()
        self.kills += 1
        self._close_log()

    async def stop(self) -> int:
        """SIGTERM and wait for the clean shutdown; returns the exit code."""
        assert self.process is not None
        try:
            self.process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(self.process.wait(), timeout=30)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the bot's output."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        """Everything the bot wrote."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def doctor(database: Path) -> tuple[int, str]:
    """`wenzheng doctor` on the file: (exit code, output)."""
    env = {**os.environ, "WENZHENG_DATABASE": str(database), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "doctor"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=database.parent)
    return done.returncode, done.stdout + done.stderr


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the bot's database, read beside the running bot (WAL allows it)."""
    connection = sqlite3.connect(database, timeout=30)
    try:
        return list(connection.execute(sql, params).fetchall())
    finally:
        connection.close()


# -- the city --------------------------------------------------------------------------------


@dataclass
class City:
    """Groups and staff in the simulator, bound in the database as the bot will find them."""

    sim: BotApiSimulator
    dispatcher: SimUser
    desk: SimChat
    supervision: SimChat
    leaders: SimChat
    liaisons: dict[str, SimUser]
    units: dict[str, SimChat]

    def group_chats(self) -> list[SimChat]:
        """Every group the bot writes to."""
        return [self.desk, self.supervision, self.leaders, *self.units.values()]


def make_city(sim: BotApiSimulator) -> City:
    """The groups, staff and liaisons in the simulator (not yet known to the bot)."""
    dispatcher = sim.user("分办员", user_id=PEOPLE.dispatcher, started=True)
    supervisor = sim.user("督查员", user_id=PEOPLE.supervisor, started=True)
    leader = sim.user("领导", user_id=PEOPLE.leader, started=True)
    liaisons = {unit: sim.user(f"{unit}联络员", user_id=uid, started=True)
                for unit, uid in LIAISON_IDS.items()}
    desk = sim.group("分办中心", members=[dispatcher])
    supervision = sim.group("督查督办", members=[supervisor])
    leaders = sim.group("领导群", members=[leader])
    units = {unit: sim.group(f"{unit}办件群", members=[person])
             for unit, person in liaisons.items()}
    return City(sim, dispatcher, desk, supervision, leaders, liaisons, units)


async def bind_city(city: City, svc: services.Services) -> None:
    """Roles, liaisons and chat bindings in the database, as /bind and the admin would."""
    await services.setup_policy_units(svc)
    for user, role in [(PEOPLE.dispatcher, "dispatcher"), (PEOPLE.supervisor, "supervisor"),
                       (PEOPLE.leader, "leader")]:
        await services.grant_role(svc, None, user, role, system=True)
    for chat, purpose in [(city.desk, "dispatch"), (city.supervision, "supervision"),
                          (city.leaders, "leaders")]:
        await services.bind_chat(svc, None, chat.id, purpose, system=True)
    for unit, person in city.liaisons.items():
        await services.add_liaison(svc, None, unit, person.id, system=True)
        await services.bind_chat(svc, None, city.units[unit].id, "unit", unit_code=unit,
                                 system=True)


async def build_city(sim: BotApiSimulator, database: Path) -> City:
    """A city in the simulator and in the database file a bot process will open."""
    city = make_city(sim)
    db = Database(database)
    await db.connect()
    try:
        await bind_city(city, services.Services(db=db, policy=load_policy(EXAMPLE_POLICY),
                                                clock=Clock(), admins=(PEOPLE.admin,)))
    finally:
        await db.close()
    return city


@pytest.fixture
async def clock_harness(tmp_path: Path, policy: Policy,
                        clock: FrozenClock) -> AsyncIterator[Harness]:
    """The bot in this process (as tests/e2e's `harness`) on a frozen clock, without client
    flood limits (the simulator has none): for suites that move time or stop and start the
    bot themselves, and send hundreds of notices."""
    async with running_harness(tmp_path, policy, clock, rate_limit=False) as h:
        yield h


async def stop_bot(h: Harness) -> None:
    """Stop the in-process bot cleanly and close its database."""
    await bot_app.stop(h.app)
    await h.db.close()


async def start_bot(h: Harness) -> None:
    """Start a new bot on the same database (and clock) and wait for its start-up sweeps."""
    h.db = Database(h.path)
    await h.db.connect()
    h.app = bot_app.create_application(h.settings, policy=h.policy, clock=h.clock, db=h.db,
                                       persistence_interval=0.1)
    await bot_app.start(h.app, poll_timeout=1)
    await wait_until(lambda: sweeps_done(h, "deadline") >= 1 and sweeps_done(h, "callback") >= 1,
                     30, "the start-up sweeps ran", interval=0.02)
    await drain(h)


async def drain(h: Harness, within: float = 120.0) -> None:
    """Wait until the outbox has nothing due and the simulator is quiet (longer than
    `Harness.drained`, for hundreds of notices)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        with contextlib.suppress(WaitTimeout, AssertionError):  # still busy: look again
            await h.drained(within=5.0)
            return
        if loop.time() > deadline:
            raise AssertionError(f"the outbox did not drain in {within}s")


def sweeps_done(h: Harness, sweep: str) -> int:
    """How many sweeps of a kind this bot finished (its /metrics histogram count)."""
    telemetry = h.app.bot_data.telemetry
    assert telemetry is not None
    return int(sum(sample.value for metric in telemetry.sweep_seconds.collect()
                   for sample in metric.samples
                   if sample.name.endswith("_count") and sample.labels.get("sweep") == sweep))


# -- people who try again ----------------------------------------------------------------------


def has_data(data: str) -> Callable[[SentMessage], bool]:
    """A message with an inline button carrying exactly this callback data."""

    def check(message: SentMessage) -> bool:
        rows = (message.reply_markup or {}).get("inline_keyboard") or []
        return any(button.get("callback_data") == data for row in rows for button in row)

    return check


def buttons_with(message: SentMessage, prefix: str) -> list[str]:
    """The callback data of a message's inline buttons that start with `prefix`."""
    rows = (message.reply_markup or {}).get("inline_keyboard") or []
    return [str(b["callback_data"]) for row in rows for b in row
            if str(b.get("callback_data", "")).startswith(prefix)]


@dataclass
class Tally:
    """What the people saw while they acted."""

    filed: dict[int, list[str]] = field(default_factory=dict)  # citizen id → texts sent
    gave_up: list[int] = field(default_factory=list)  # citizens never told "filed"
    unanswered: int = 0  # actions the bot did not answer in time (then tried again)
    assigned: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)


class People:
    """Citizens, the dispatcher and liaisons acting through the simulator like real users:
    when the bot does not answer (it may be down), they wait and try again."""

    def __init__(self, sim: BotApiSimulator, city: City, *, patience: float = 20.0) -> None:
        self.sim = sim
        self.city = city
        self.patience = patience
        self.tally = Tally()
        self.filed = filed_pattern()
        self.stopping = asyncio.Event()

    async def _press(self, person: SimUser, message: SentMessage, data: str) -> bool:
        """Press a button; False when the bot did not answer in time."""
        try:
            await person.press_data(message, data, timeout=self.patience)
            return True
        except NoCallbackAnswer:
            self.tally.unanswered += 1
            return False

    async def _wait(self, chat: SimChat | SimUser, check: Callable[[SentMessage], bool],
                    since: int, within: float | None = None) -> SentMessage | None:
        try:
            return await self.sim.wait_for(chat, check, since=since,
                                           timeout=within or self.patience)
        except WaitTimeout:
            return None

    def told_filed(self, person: SimUser) -> list[str]:
        """The numbers the citizen was told their messages were filed as."""
        return [match["number"] for m in self.sim.sent(person)
                if (match := self.filed.search(m.text))]

    async def file_case(self, person: SimUser, text: str, category: str, district: str,
                        attempts: int = 6) -> str | None:
        """A quick filing: the text, a category, a district, Submit — and again from the
        start (a new text) until the citizen is told "filed as …"."""
        texts = self.tally.filed.setdefault(person.id, [])
        for attempt in range(1, attempts + 1):
            known = set(self.told_filed(person))
            words = f"{text}（第{attempt}次）"
            texts.append(words)
            since = self.sim.mark()
            await person.send("/cancel")
            await person.send(words)
            number = await self._filing_steps(person, category, district, since, known)
            if number is not None:
                return number
        self.tally.gave_up.append(person.id)
        return None

    async def _filing_steps(self, person: SimUser, category: str, district: str, since: int,
                            known: set[str]) -> str | None:
        message = await self._wait(person, has_data(f"f:c:{category}"), since)
        if message is None:
            return None
        for data, following in ((f"f:c:{category}", f"f:d:{district}"),
                                (f"f:d:{district}", "f:ok")):
            for _ in range(3):  # no answer: press again, as anyone would
                mark = self.sim.mark()
                await self._press(person, message, data)
                found = await self._wait(person, has_data(following), mark)
                if found is not None:
                    break
            else:
                return None
            message = found
        # Submit once: the notice comes from the outbox after the commit, perhaps only
        # after a restart or a few retries; pressing again could file it twice.
        await self._press(person, message, "f:ok")
        told = await self._wait(
            person, lambda m: bool((found := self.filed.search(m.text))
                                   and found["number"] not in known),
            since=0, within=self.patience * 3)
        if told is None:
            return None
        match = self.filed.search(told.text)
        assert match is not None
        return match["number"]

    async def _command(self, person: SimUser, chat: SimChat, text: str,
                       done: Callable[[SentMessage], bool]) -> bool:
        """Send a command until the bot replies to it (or the state shows it is done)."""
        for _ in range(6):
            sent = await person.send(text, chat)
            reply = await self._wait(
                chat, lambda m, mid=sent.message_id: m.reply_to == mid or done(m), since=0)
            if reply is not None:
                return True
            self.tally.unanswered += 1
        return False

    async def dispatch(self, track: str = "special") -> None:
        """The dispatcher assigns every new case on the desk to its category's unit."""
        desk = self.city.desk
        while not self.stopping.is_set():
            for card in list(self.sim.sent(desk)):
                numbers = NUMBER.findall(card.text)
                if not numbers or card.reply_to is not None or numbers[0] in self.tally.assigned:
                    continue
                if not buttons_with(card, "d:"):
                    continue
                number = numbers[0]
                unit = self._unit_of(card)
                await self._command(self.city.dispatcher, desk,
                                    f"/assign {number} {unit} track={track}",
                                    lambda m, n=number: m.reply_to is not None and n in m.text)
                self.tally.assigned.add(number)
            await asyncio.sleep(0.2)

    def _unit_of(self, card: SentMessage) -> str:
        policy = load_policy(EXAMPLE_POLICY)
        for code, unit in CATEGORY_UNIT.items():
            if policy.categories[code].name_in("zh_Hans") in card.text:
                return unit
        return "ZJJ"

    async def liaise(self, unit: str) -> None:
        """The unit's liaison signs every card and posts a final answer, one at a time."""
        chat, person = self.city.units[unit], self.city.liaisons[unit]
        while not self.stopping.is_set():
            for card in list(self.sim.sent(chat)):
                numbers = NUMBER.findall(card.text)
                if not numbers or numbers[0] in self.tally.answered:
                    continue
                sign = buttons_with(card, "u:s:")
                final = buttons_with(card, "u:f:")
                if sign:
                    await self._press(person, card, sign[0])
                elif final:
                    await self._answer(person, chat, card, final[0], numbers[0])
            await asyncio.sleep(0.2)

    async def _answer(self, person: SimUser, chat: SimChat, card: SentMessage, data: str,
                      number: str) -> None:
        since = self.sim.mark()
        await self._press(person, card, data)
        prompt = await self._wait(chat, lambda m: "✍️" in m.text and number in m.text, since)
        if prompt is None:
            return
        reply = await person.reply(prompt, f"{number}：已派人现场处理完毕，问题已解决。", chat)
        done = await self._wait(chat, lambda m: m.reply_to == reply.message_id, since=0)
        if done is not None:
            self.tally.answered.add(number)


# -- accounting of deliveries ------------------------------------------------------------------


@dataclass
class Deliveries:
    """The outbox set against what the simulated Telegram received."""

    rows: int
    undelivered: list[tuple[int, str, str]]  # (id, state, error) of rows not sent
    missing: list[tuple[int, int, int]]  # sent rows whose message the chat does not have
    duplicates: list[SentMessage]  # outbox messages Telegram got, not recorded as any row's


def is_outbox_message(message: SentMessage) -> bool:
    """A message the outbox sends (notices and cards) rather than a handler's direct reply:
    it names a case, replies to nothing and asks for no reply."""
    markup = message.reply_markup or {}
    return (bool(NUMBER.search(message.text)) and message.reply_to is None
            and not markup.get("force_reply"))


def account(sim: BotApiSimulator, database: Path, chats: list[SimChat | SimUser]) -> Deliveries:
    """Every outbox row sent and its message in the chat; outbox-looking messages no row
    records are duplicates (sent, then the record of it lost to a crash or a timeout)."""
    rows = query(database, "SELECT id, state, coalesce(error, ''), chat_id, message_id"
                           " FROM outbox ORDER BY id")
    undelivered = [(r[0], r[1], r[2]) for r in rows if r[1] != "sent"]
    recorded = {(r[3], r[4]) for r in rows if r[1] == "sent" and r[4] is not None}
    missing = [(row_id, chat_id, message_id)
               for row_id, state, _, chat_id, message_id in rows
               if state == "sent" and message_id is not None
               and message_id not in sim.chat(chat_id).sent_by_id]
    duplicates = [m for chat in chats for m in sim.sent(chat)
                  if is_outbox_message(m) and (m.chat_id, m.message_id) not in recorded]
    return Deliveries(len(rows), undelivered, missing, duplicates)


async def wait_until(check: Callable[[], bool], within: float, what: str,
                     interval: float = 0.2) -> None:
    """Poll `check` until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"after {within}s still not: {what}")
        await asyncio.sleep(interval)


def cases_in(database: Path, *states: str) -> int:
    """How many cases are in one of these states."""
    marks = ", ".join("?" * len(states))
    return int(query(database, f"SELECT count(*) FROM cases WHERE state IN ({marks})",
                     *states)[0][0])


def outbox_pending(database: Path) -> int:
    """Rows not sent yet."""
    return int(query(database, "SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0])


async def cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel driver tasks and wait for them."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, SimulatorError):
            await task

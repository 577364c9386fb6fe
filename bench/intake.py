"""Intake against the framework's ceiling: a burst of first-time citizens (issue 8, item 1).

    ./dev python -m bench.intake [--quick] [--citizens N] [--backend httpx|aiohttp|both]
                                 [--json PATH] [--profile DIR]

N distinct citizens (2,000; 200 with --quick) who never wrote to the bot each send one
message at the same moment, and each files it by quick filing, as a person does: the text,
then the category button, the district button and "✅ Submit"; a citizen is done when the
"filed as …" message arrives. The bot is the real application (`create_application`) on a
real SQLite file (WAL, synchronous=FULL), polling the Bot API simulator over HTTP. Beside
it, on the same simulator with the same HTTP client settings, a bare PTB echo bot answers
N messages sent at once.

Each bot runs in a process of its own, so its CPU time (`time.process_time()` over the
measured window) is the bot's alone; the simulator and the simulated people run here.
Neither bot has PTB's AIORateLimiter: the simulator enforces no flood limits here, and the
limiter's 30 messages/s would measure Telegram's limits (bench/delivery.py does that), not
the bot. The simulator answers callback queries up to 10 minutes late rather than Telegram's
~15 s, so that a slow run is measured rather than broken (the table shows p99 latency).

After the run the database is checked: every citizen filed exactly one case, and the N case
numbers are distinct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import re
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._botproc import percentile
from bench._driver import (
    ROOT,
    BotFigures,
    BotProcess,
    Row,
    WatchedSimulator,
    has_button,
    ratio,
    table,
    write_json,
)
from bot.config import EXAMPLE_POLICY, load_policy
from bot.i18n import translator
from sandbox import NoCallbackAnswer, SimUser

CITIZENS = 2_000
QUICK_CITIZENS = 200
UPDATES_RATIO_TARGET = 0.8
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "intake.json"
LANGUAGE = "zh_Hans"  # the simulated people's Telegram language is zh-hans
TEXTS = [
    "小区电梯坏了三天，老人上下楼很困难，请尽快维修。",
    "幸福路路灯不亮已经一周，晚上走路很危险。",
    "学校门口早晚高峰拥堵严重，希望增派交警疏导。",
    "楼下餐馆油烟直排，居民无法开窗，请环保部门处理。",
]


@dataclass
class Side:
    """One bot's run: what the driver saw and what the bot measured."""

    label: str
    backend: str
    people: int
    wall_s: float
    bot: BotFigures
    press_waits_s: list[float] = field(default_factory=list)
    stalled: int = 0
    driver_cpu_s: float = 0.0  # the simulator and the simulated people, for comparison

    @property
    def updates_per_s(self) -> float:
        """Updates the bot handled per second of the run."""
        return self.bot.updates / self.wall_s

    @property
    def people_per_s(self) -> float:
        """Citizens served (cases filed, or echoes received) per second."""
        return self.people / self.wall_s


@dataclass
class Check:
    """The database after the burst."""

    citizens: int
    cases: int
    distinct_numbers: int
    citizens_with_one_case: int
    numbers_told: int

    @property
    def exactly_once(self) -> bool:
        """Every citizen has exactly one case, with a number of its own."""
        return (
            self.cases == self.citizens
            and self.citizens_with_one_case == self.citizens
            and self.distinct_numbers == self.citizens
            and self.numbers_told == self.citizens
        )


async def run_echo(sim: WatchedSimulator, people: int, backend: str, log: Path) -> Side:
    """The bare echo bot answering `people` messages sent at once."""
    bot = BotProcess(sim, "echo", backend, log=log)
    try:
        await bot.start()
        users = [sim.user(f"回声{k}", username=f"echo_{backend}_{k}") for k in range(people)]
        await bot.go()
        started, driver_cpu = time.perf_counter(), time.process_time()
        marks = []
        for k, user in enumerate(users):
            marks.append(sim.cursor(user))
            await user.send(f"echo {k} {TEXTS[k % len(TEXTS)]}")

        async def answered(k: int, user: SimUser) -> None:
            needle = f"echo {k} "
            await sim.next_change(user, lambda m: m.text.startswith(needle), after=marks[k])

        await asyncio.gather(*(answered(k, u) for k, u in enumerate(users)))
        wall, driver_cpu = time.perf_counter() - started, time.process_time() - driver_cpu
        side = Side("echo bot", backend, people, wall, await bot.stop())
        side.driver_cpu_s = driver_cpu
        return side
    finally:
        await bot.kill()


async def file_quickly(
    sim: WatchedSimulator,
    user: SimUser,
    mark: int,
    labels: dict[str, str],
    number: re.Pattern[str],
    waits: list[float] | None = None,
    patience: float = 600.0,
) -> str:
    """The rest of a quick filing after the first message: three buttons, then the number.

    `waits` gets how long each press waited for answerCallbackQuery (Telegram gives up on a
    callback query after about 15 seconds); a press not answered within `patience` counts
    as that long, and the person goes on as on Telegram: the spinner stops, they wait for
    the bot's next message."""
    for step in ("category", "district", "submit"):
        card = await sim.next_change(user, has_button(labels[step]), after=mark, timeout=3600)
        mark = sim.cursor(user)
        pressed = time.perf_counter()
        with contextlib.suppress(NoCallbackAnswer):
            await user.press(labels[step], message=card.message_id, timeout=patience)
        if waits is not None:
            waits.append(time.perf_counter() - pressed)
    filed = await sim.next_change(
        user, lambda m: number.search(m.text) is not None, after=mark, timeout=3600
    )
    found = number.search(filed.text)
    assert found is not None
    return found.group(0)


async def run_wenzheng(
    sim: WatchedSimulator,
    people: int,
    backend: str,
    workdir: Path,
    profile: Path | None,
    root: Path = ROOT,
    tag: str = "",
    kind: str = "wenzheng",
) -> tuple[Side, Check | None, Path]:
    """The real bot filing one case for each of `people` first-time citizens (or, with
    kind "flow", a bare PTB bot making the same calls and storing nothing)."""
    policy = load_policy(EXAMPLE_POLICY)
    g = translator(LANGUAGE).gettext
    categories = list(policy.categories.values())
    districts = list(policy.districts.values())
    number = re.compile(re.escape(policy.case_prefix) + r"\d{4}-\d{6}")
    desk = sim.group("市民留言分办中心")
    db = workdir / f"intake-{backend}{tag}.db"
    bot = BotProcess(
        sim, kind, backend, db=db if kind == "wenzheng" else None,
        setup={"chats": {"dispatch": desk.id}},
        profile=profile, log=workdir / f"{kind}-{backend}{tag}.log", root=root,
    )
    try:
        await bot.start()
        users = [
            sim.user(f"市民{k}", username=f"{kind}_{backend}{tag}_{k}") for k in range(people)
        ]
        await bot.go()
        started, driver_cpu = time.perf_counter(), time.process_time()
        marks = []
        for k, user in enumerate(users):  # the burst: everyone writes before anyone is served
            marks.append(sim.cursor(user))
            await user.send(TEXTS[k % len(TEXTS)] + f"（{k}）")
        waits: list[float] = []
        filings = [
            asyncio.ensure_future(
                file_quickly(
                    sim,
                    user,
                    marks[k],
                    {
                        "category": categories[k % len(categories)].name_in(LANGUAGE),
                        "district": districts[k % len(districts)].name_in(LANGUAGE),
                        "submit": "✅ " + g("Submit"),
                    },
                    number,
                    waits,
                    patience=sim.callback_query_ttl + 5,
                )
            )
            for k, user in enumerate(users)
        ]
        stalled = await finish_or_stall(sim, filings)
        numbers = [f.result() for f in filings if not f.cancelled()]
        # Stuck filings end the run when the bot last spoke, not when we gave up on them.
        wall = time.perf_counter() - started - (
            time.monotonic() - sim.last_change if stalled else 0.0
        )
        driver_cpu = time.process_time() - driver_cpu
        figures = await bot.stop()
    finally:
        await bot.kill()
    check = check_database(db, [u.id for u in users], numbers) if kind == "wenzheng" else None
    label = "Wenzheng" if kind == "wenzheng" else "same calls, bare PTB"
    side = Side(label, backend, people, wall, figures, waits, stalled, driver_cpu)
    return side, check, db


STALL_S = 30.0  # no message from the bot for this long: the unfinished filings are stuck


async def finish_or_stall(sim: WatchedSimulator, filings: list[asyncio.Future[str]]) -> int:
    """Wait for every filing; cancel those still open once the bot has gone quiet."""
    while True:
        done, pending = await asyncio.wait(filings, timeout=1.0)
        if not pending:
            for filing in done:
                filing.result()  # a driver error surfaces here
            return 0
        if time.monotonic() - sim.last_change > STALL_S:
            for filing in pending:
                filing.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return len(pending)


def check_database(path: Path, citizens: list[int], told: list[str]) -> Check:
    """Count what the file holds for these citizens (the bot has shut down)."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TEMP TABLE burst(id INTEGER PRIMARY KEY)")
        connection.executemany("INSERT INTO burst VALUES (?)", [(c,) for c in citizens])
        cases, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT number) FROM cases"
            " WHERE citizen_id IN (SELECT id FROM burst)"
        ).fetchone()
        (once,) = connection.execute(
            "SELECT count(*) FROM (SELECT b.id FROM burst b JOIN cases c ON c.citizen_id = b.id"
            " GROUP BY b.id HAVING count(*) = 1)"
        ).fetchone()
        stored = {row[0] for row in connection.execute("SELECT number FROM cases")}
    return Check(len(citizens), cases, distinct, once, len(set(told) & stored))


CALLBACK_PATIENCE_S = 15.0  # Telegram drops a callback query not answered by then


def late(waits: list[float]) -> int:
    """Button presses answered later than Telegram would wait."""
    return sum(1 for wait in waits if wait > CALLBACK_PATIENCE_S)


def flow_rows(section: str, ours: Side, flow: Side, echo: Side) -> list[Row]:
    """Wenzheng against the same Bot API calls made by a bare PTB bot (the framework's
    ceiling for this flow), and that bot against the echo bot."""
    bare = flow.label
    return [
        Row(section, "updates/s, the same calls", ours.updates_per_s, flow.updates_per_s,
            right_label=bare, ratio=ratio(ours.updates_per_s, flow.updates_per_s)),
        Row(section, "bot CPU ms/update, the same calls", ours.bot.cpu_ms_per_update,
            flow.bot.cpu_ms_per_update, right_label=bare, digits=2,
            ratio=ratio(ours.bot.cpu_ms_per_update, flow.bot.cpu_ms_per_update)),
        Row(section, "updates/s: the same calls vs echo", flow.updates_per_s,
            echo.updates_per_s, left_label=bare,
            ratio=ratio(flow.updates_per_s, echo.updates_per_s)),
    ]


def rows_for(section: str, ours: Side, echo: Side, check: Check) -> list[Row]:
    """The table's rows for one backend."""
    speed = ratio(ours.updates_per_s, echo.updates_per_s)

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1000

    return [
        Row(section, "cases/s", ours.people_per_s, None),
        Row(section, "updates/s", ours.updates_per_s, echo.updates_per_s, ratio=speed,
            target=f"≥ {UPDATES_RATIO_TARGET}", ok=speed is not None
            and speed >= UPDATES_RATIO_TARGET),
        Row(section, "bot CPU ms/update", ours.bot.cpu_ms_per_update, echo.bot.cpu_ms_per_update,
            ratio=ratio(ours.bot.cpu_ms_per_update, echo.bot.cpu_ms_per_update), digits=2),
        Row(section, "handler latency p50 ms", ms(ours.bot.latency_p50_s),
            ms(echo.bot.latency_p50_s),
            ratio=ratio(ours.bot.latency_p50_s, echo.bot.latency_p50_s), digits=2),
        Row(section, "handler latency p99 ms", ms(ours.bot.latency_p99_s),
            ms(echo.bot.latency_p99_s),
            ratio=ratio(ours.bot.latency_p99_s, echo.bot.latency_p99_s), digits=2),
        Row(section, "button answered p99 s", percentile(ours.press_waits_s, 0.99), None,
            digits=2),
        Row(section, "buttons answered after 15 s", float(late(ours.press_waits_s)), None,
            target="= 0", ok=late(ours.press_waits_s) == 0, digits=0),
        Row(section, "filings stuck", float(ours.stalled), None, target="= 0",
            ok=ours.stalled == 0, digits=0),
        Row(section, "cases filed exactly once", float(check.citizens_with_one_case), None,
            target=f"= {check.citizens}", ok=check.citizens_with_one_case == check.citizens,
            digits=0),
        Row(section, "distinct case numbers", float(check.distinct_numbers), None,
            target=f"= {check.citizens}", ok=check.exactly_once, digits=0),
    ]


async def measure(
    people: int,
    backends: list[str],
    workdir: Path,
    profile_dir: Path | None,
    before: Path | None = None,
    callback_ttl: float = 600.0,
) -> tuple[list[Row], dict[str, Any]]:
    """Both bots with each backend, on one simulator (and the bot of `before`, a checkout
    from before a change, between them: on a shared machine only one run compares)."""
    rows: list[Row] = []
    data: dict[str, Any] = {
        "citizens": people,
        "updates_per_citizen": 4,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "runs": {},
    }
    data["callback_query_ttl_s"] = callback_ttl
    async with WatchedSimulator(seed=8, callback_query_ttl=callback_ttl) as sim:
        for backend in backends:
            echo = await run_echo(sim, people, backend, workdir / f"echo-{backend}.log")
            profile = profile_dir / f"intake-{backend}.prof" if profile_dir else None
            if before is not None:
                old, old_check, _ = await run_wenzheng(
                    sim, people, backend, workdir, None, before, "-before"
                )
                assert old_check is not None
                rows += rows_for(f"intake before ({backend})", old, echo, old_check)
                data["runs"][f"{backend} before"] = {
                    "wenzheng": {"updates_per_s": old.updates_per_s, "wall_s": old.wall_s,
                                 "stalled": old.stalled, "driver_cpu_s": old.driver_cpu_s,
                                 "presses_after_15_s": late(old.press_waits_s),
                                 **asdict(old.bot)},
                    "check": asdict(old_check),
                }
            ours, check, _ = await run_wenzheng(sim, people, backend, workdir, profile)
            assert check is not None
            flow, _, _ = await run_wenzheng(sim, people, backend, workdir, None, kind="flow")
            section = "intake" if len(backends) == 1 else f"intake ({backend})"
            rows += rows_for(section, ours, echo, check)
            rows += flow_rows(section, ours, flow, echo)
            data["runs"][backend] = {
                "wenzheng": {
                    **{k: v for k, v in asdict(ours).items() if k != "press_waits_s"},
                    "updates_per_s": ours.updates_per_s,
                    "presses": len(ours.press_waits_s),
                    "press_wait_p50_s": percentile(ours.press_waits_s, 0.5),
                    "press_wait_p99_s": percentile(ours.press_waits_s, 0.99),
                    "press_wait_max_s": max(ours.press_waits_s, default=None),
                    "presses_after_15_s": late(ours.press_waits_s),
                },
                "echo": {**asdict(echo), "updates_per_s": echo.updates_per_s},
                "same_calls": {
                    **{k: v for k, v in asdict(flow).items() if k != "press_waits_s"},
                    "updates_per_s": flow.updates_per_s,
                },
                "check": {**asdict(check), "exactly_once": check.exactly_once},
            }
    return rows, data


def main(argv: list[str] | None = None) -> int:
    from bot.app import DEFAULT_HTTP_BACKEND

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CITIZENS} citizens")
    parser.add_argument("--citizens", type=int, help=f"default {CITIZENS}")
    parser.add_argument("--backend", choices=("httpx", "aiohttp", "both"),
                        default=DEFAULT_HTTP_BACKEND)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--profile", type=Path, help="write cProfile files of the bot here")
    parser.add_argument("--keep", type=Path, help="keep the databases and logs here")
    parser.add_argument("--callback-ttl", type=float, default=600.0,
                        help="seconds a button press can still be answered (Telegram: ~15)")
    parser.add_argument("--before", type=Path,
                        help="also run the bot of this checkout (before a change) in the run")
    args = parser.parse_args(argv)
    people = args.citizens or (QUICK_CITIZENS if args.quick else CITIZENS)
    backends = ["httpx", "aiohttp"] if args.backend == "both" else [args.backend]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wz-intake-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        rows, data = asyncio.run(
            measure(people, backends, workdir, args.profile, args.before, args.callback_ttl)
        )
    print(f"Intake: {people} first-time citizens at once, quick filing (4 updates each)")
    print(table(rows))
    write_json(args.json, rows, data)
    print(f"\nwritten to {args.json}")
    return 0 if all(r.ok is not False for r in rows if "case" in r.name) else 1


if __name__ == "__main__":
    sys.exit(main())

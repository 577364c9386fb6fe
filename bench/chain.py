"""The whole chain: full case lifecycles through Telegram with 50 units (issue 8, item 2).

    ./dev python -m bench.chain [--quick] [--cases N] [--backend httpx|aiohttp|both]
                                [--json PATH] [--profile DIR]

The example policy has 22 units; the benchmark's setup adds 28 more through the services'
admin path (`save_unit`), binds a group chat and names a liaison for each of the 50, and
binds the dispatch desk with a dispatcher. Then N cases (500; 50 with --quick) go through
their whole life at once, every step a message or a button press in the simulator:

    citizen   text, category, district, ✅ Submit             (quick filing, 4 updates)
    desk      Routine on the case card, then the unit           (2)
    unit      ✅ Sign, Final answer, the answer as a reply      (3)
    desk      ✅ Publish on the review card                     (1)
    citizen   😊 Satisfied                                      (1)

11 updates per case; case k goes to unit k mod 50. The desk's unit picker lists the
policy's units only, so the unit is chosen with the callback data of a "→ unit" button
(`d:a:<case id>:<unit>`), the same handler a suggested unit's button reaches. The bot runs
in its own process (bench/_botproc.py) and its CPU time is its own, as in bench/intake.py.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._driver import BotFigures, BotProcess, Row, WatchedSimulator, has_button, table
from bench._driver import write_json as write_rows
from bench.intake import TEXTS, file_quickly
from bot.config import EXAMPLE_POLICY, load_policy
from bot.i18n import translator
from sandbox import SentMessage, SimChat, SimUser

CASES = 500
QUICK_CASES = 50
UNITS = 50
UPDATES_PER_CASE = 11
LANGUAGE = "zh_Hans"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "chain.json"
DISPATCHER = 70_001
CASE_ID = re.compile(r"^d:\w+:(\d+)")


@dataclass
class City:
    """The desk, the 50 unit groups and their people."""

    desk: SimChat
    dispatcher: SimUser
    units: list[tuple[str, SimChat, SimUser]]
    setup: dict[str, Any]
    writing: dict[int, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))


def build_city(sim: WatchedSimulator) -> City:
    """People and groups in the simulator, and the setup the bot applies through services."""
    policy = load_policy(EXAMPLE_POLICY)
    dispatcher = sim.user("分办员", user_id=DISPATCHER, started=True)
    desk = sim.group("市民留言分办中心", members=[dispatcher])
    codes = [(code, False, unit.name) for code, unit in policy.units.items()]
    codes += [
        (f"BENCH{k:02d}", True, f"测试单位{k:02d}") for k in range(1, UNITS - len(codes) + 1)
    ]
    units = []
    described = []
    for n, (code, new, name) in enumerate(codes[:UNITS]):
        liaison = sim.user(f"{name}联络员", user_id=71_000 + n, started=True)
        group = sim.group(f"{name}办件群", members=[liaison])
        units.append((code, group, liaison))
        described.append(
            {"code": code, "name": name, "new": new, "chat": group.id, "liaison": liaison.id}
        )
    setup = {
        "chats": {"dispatch": desk.id},
        "staff": [[DISPATCHER, "dispatcher"]],
        "units": described,
    }
    return City(desk, dispatcher, units, setup)


def case_id_of(card: SentMessage) -> int:
    """The case id in a desk card's button data."""
    for row in (card.reply_markup or {}).get("inline_keyboard", []):
        for button in row:
            found = CASE_ID.match(str(button.get("callback_data", "")))
            if found:
                return int(found.group(1))
    raise LookupError(f"no case id on {card!r}")


async def lifecycle(
    sim: WatchedSimulator,
    city: City,
    k: int,
    citizen: SimUser,
    after: int,
    labels: dict[str, str],
    number_pattern: re.Pattern[str],
) -> str:
    """One case from the citizen's message to their rating."""
    g = translator(LANGUAGE).gettext
    code, group, liaison = city.units[k % len(city.units)]
    desk_mark, unit_mark = sim.cursor(city.desk), sim.cursor(group)
    number = await file_quickly(sim, citizen, after, labels, number_pattern)

    def about(message: SentMessage) -> bool:
        # The first line names the case; later lines may name others (possible duplicates).
        return number in message.text.split("\n", 1)[0]

    card = await sim.next_change(city.desk, about, after=desk_mark)
    await city.dispatcher.press(g("Routine"), city.desk, message=card.message_id, timeout=600)
    await city.dispatcher.press_data(
        card.message_id, f"d:a:{case_id_of(card)}:{code}", city.desk, timeout=600
    )
    sign = "✅ " + g("Sign")
    unit_card = await sim.next_change(group, lambda m: about(m) and has_button(sign)(m),
                                      after=unit_mark)
    mark = sim.cursor(group)
    await liaison.press(sign, group, message=unit_card.message_id, timeout=600)
    final = g("Final answer")
    unit_card = await sim.next_change(
        group, lambda m: m.message_id == unit_card.message_id and has_button(final)(m),
        after=mark,
    )
    answer = f"经现场核查，问题已于今日处理完毕（{number}）。"
    # A person has one prompt open at a time (handlers/prompts.py keeps one pending
    # action per person), so a liaison writes one answer after another, as people do.
    async with city.writing[liaison.id]:
        mark = sim.cursor(group)
        await liaison.press(final, group, message=unit_card.message_id, timeout=600)
        prompt = await sim.next_change(
            group, lambda m: "✍️" in m.text and about(m), after=mark
        )
        desk_mark, mark = sim.cursor(city.desk), sim.cursor(group)
        await liaison.reply(prompt, answer, group)
        # The group's one liaison: the next "✓" there is the bot taking this answer.
        await sim.next_change(group, lambda m: m.text.startswith("✓"), after=mark)
    publish = "✅ " + g("Publish")
    review = await sim.next_change(
        city.desk, lambda m: answer in m.text and has_button(publish)(m), after=desk_mark
    )
    citizen_mark = sim.cursor(citizen)
    await city.dispatcher.press(publish, city.desk, message=review.message_id, timeout=600)
    satisfied = "😊 " + g("Satisfied")
    verdict = await sim.next_change(citizen, has_button(satisfied), after=citizen_mark)
    await citizen.press(satisfied, message=verdict.message_id, timeout=600)
    return number


@dataclass
class ChainRun:
    """One backend's run."""

    backend: str
    cases: int
    wall_s: float
    bot: BotFigures
    closed_rated: int

    @property
    def updates_per_s(self) -> float:
        """Updates the bot handled per second of the run."""
        return self.bot.updates / self.wall_s

    @property
    def lifecycles_per_s(self) -> float:
        """Whole case lifecycles per second."""
        return self.cases / self.wall_s


async def run_chain(
    sim: WatchedSimulator, cases: int, backend: str, workdir: Path, profile: Path | None
) -> ChainRun:
    """All lifecycles at once against the real bot."""
    import sqlite3

    policy = load_policy(EXAMPLE_POLICY)
    g = translator(LANGUAGE).gettext
    categories = list(policy.categories.values())
    districts = list(policy.districts.values())
    number_pattern = re.compile(re.escape(policy.case_prefix) + r"\d{4}-\d{6}")
    city = build_city(sim)
    db = workdir / f"chain-{backend}.db"
    bot = BotProcess(sim, "wenzheng", backend, db=db, setup=city.setup, profile=profile,
                     log=workdir / f"chain-{backend}.log")
    try:
        await bot.start()
        citizens = [sim.user(f"市民{k}", username=f"chain_{backend}_{k}") for k in range(cases)]
        await bot.go()
        started = time.perf_counter()
        marks = []
        for k, citizen in enumerate(citizens):
            marks.append(sim.cursor(citizen))
            await citizen.send(TEXTS[k % len(TEXTS)] + f"（{k}）")
        await asyncio.gather(
            *(
                lifecycle(
                    sim, city, k, citizen, marks[k],
                    {
                        "category": categories[k % len(categories)].name_in(LANGUAGE),
                        "district": districts[k % len(districts)].name_in(LANGUAGE),
                        "submit": "✅ " + g("Submit"),
                    },
                    number_pattern,
                )
                for k, citizen in enumerate(citizens)
            )
        )
        wall = time.perf_counter() - started
        figures = await bot.stop()
    finally:
        await bot.kill()
    with sqlite3.connect(db) as connection:
        (closed,) = connection.execute(
            "SELECT count(*) FROM cases WHERE state = 'closed' AND close_reason = 'rated'"
        ).fetchone()
    return ChainRun(backend, cases, wall, figures, int(closed))


def rows_for(section: str, run: ChainRun) -> list[Row]:
    """The table's rows for one backend (no echo bot here: the right column stays empty)."""
    return [
        Row(section, "updates/s (whole lifecycles)", run.updates_per_s, None, right_label="-"),
        Row(section, "lifecycles/s", run.lifecycles_per_s, None, right_label="-", digits=2),
        Row(section, "bot CPU ms/update", run.bot.cpu_ms_per_update, None, right_label="-",
            digits=2),
        Row(section, "handler latency p50 ms", (run.bot.latency_p50_s or 0) * 1000, None,
            right_label="-", digits=2),
        Row(section, "handler latency p99 ms", (run.bot.latency_p99_s or 0) * 1000, None,
            right_label="-", digits=2),
        Row(section, "cases closed as rated", float(run.closed_rated), None, right_label="-",
            target=f"= {run.cases}", ok=run.closed_rated == run.cases, digits=0),
    ]


async def measure(
    cases: int, backends: list[str], workdir: Path, profile_dir: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """Each backend's run on one simulator."""
    rows: list[Row] = []
    data: dict[str, Any] = {"cases": cases, "units": UNITS,
                            "updates_per_case": UPDATES_PER_CASE, "runs": {}}
    async with WatchedSimulator(seed=9, callback_query_ttl=600.0) as sim:
        for backend in backends:
            profile = profile_dir / f"chain-{backend}.prof" if profile_dir else None
            run = await run_chain(sim, cases, backend, workdir, profile)
            section = "chain" if len(backends) == 1 else f"chain ({backend})"
            rows += rows_for(section, run)
            data["runs"][backend] = {**asdict(run), "updates_per_s": run.updates_per_s}
    return rows, data


def main(argv: list[str] | None = None) -> int:
    from bot.app import DEFAULT_HTTP_BACKEND

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CASES} cases")
    parser.add_argument("--cases", type=int, help=f"default {CASES}")
    parser.add_argument("--backend", choices=("httpx", "aiohttp", "both"),
                        default=DEFAULT_HTTP_BACKEND)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--profile", type=Path, help="write cProfile files of the bot here")
    parser.add_argument("--keep", type=Path, help="keep the databases and logs here")
    args = parser.parse_args(argv)
    cases = args.cases or (QUICK_CASES if args.quick else CASES)
    backends = ["httpx", "aiohttp"] if args.backend == "both" else [args.backend]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wz-chain-") as scratch:
        workdir = args.keep or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        rows, data = asyncio.run(measure(cases, backends, workdir, args.profile))
    print(f"Whole chain: {cases} lifecycles at once, {UNITS} units, "
          f"{UPDATES_PER_CASE} updates each")
    print(table(rows))
    write_rows(args.json, rows, data)
    print(f"\nwritten to {args.json}")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

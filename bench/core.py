"""Core benchmark: filing rate, bulk fill, the due-now query and the weekly per-unit figures.

It prints figures; it is not a test and asserts nothing.

    ./dev python bench/core.py                  # 1,000,000 cases (~3 minutes on 2 cores)
    ./dev python bench/core.py --cases 20000    # smoke run (well under a minute)
    ./dev python bench/core.py --keep /tmp/wz   # keep the databases for a look afterwards

1. Filing through `services.file_case` on a fresh file with the production `Database`
   (WAL, synchronous=FULL): sequentially and with 50 concurrent tasks.
2. Two databases filled in bulk (10,000 cases and `--cases`) with a realistic two-year mix.
3. The sweep's due-now query (`DUE_FOR_CHASING_SQL`, 1,000 rows) at both sizes: the due set has
   the same size in both, so the ratio measures how the index scales, not how many rows come back.
4. `unit_counts` for the last full week before now, at both sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import math
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite.core

from bot import services
from bot.clock import FrozenClock
from bot.config import EXAMPLE_POLICY, load_policy
from bot.domain.policy import Policy
from storage.chasing import DUE_FOR_CHASING_SQL
from storage.db import Database, to_db
from storage.directory import Profile
from storage.reports import (
    UNIT_REPLY_SQL,
    UNIT_SATISFACTION_SQL,
    UNIT_STAGES_SQL,
    unit_counts,
)

if __package__ in (None, ""):
    # Run as a script (`python bench/core.py`): `bench` is not an installed package, so
    # make the project root importable for the fill helper next to this file.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._fill import FillPlan, FillResult, create_schema, fill

SMALL_CASES = 10_000
FILING_TARGET = 1_000.0  # cases/s
FILL_TARGET_S = 180.0  # "a few minutes at most" for the large fill
DUE_TARGET_MS = 20.0
DUE_RATIO_MAX = 2.0  # "should stay near 1": an index lookup, not a scan
REPORT_TARGET_MS = 500.0
DUE_LIMIT = 1000
DUE_RUNS = 20
REPORT_RUNS = 5
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "core.json"


@dataclass
class Figure:
    """One row of the final table."""

    name: str
    small: float | None
    large: float | None
    target: str = "-"
    ok: bool | None = None
    digits: int = 1

    @property
    def ratio(self) -> float | None:
        """large / small, when both sides are measured."""
        if self.small is None or self.large is None or self.small == 0:
            return None
        return self.large / self.small


@dataclass
class Report:
    """Everything measured, for the table and the JSON file."""

    meta: dict[str, Any] = field(default_factory=dict)
    filing: dict[str, Any] = field(default_factory=dict)
    fills: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


def contract_rows(section: str, figures: list[Figure], left_label: str,
                  right_label: str) -> list[dict[str, Any]]:
    """Figures as `python -m bench` reads them (the JSON contract in bench/__main__.py)."""
    return [
        {"section": section, "name": f.name, "left": f.small, "right": f.large,
         "left_label": left_label, "right_label": right_label, "ratio": f.ratio,
         "target": "" if f.target == "-" else f.target, "ok": f.ok, "digits": f.digits}
        for f in figures
    ]


def label_of(count: int) -> str:
    """10000 -> '10k', 1000000 -> '1M' (column headers)."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


def labels(cases: int) -> tuple[str, str]:
    """Column headers (and file names) of the two databases, distinct even if equal sizes."""
    small, large = label_of(SMALL_CASES), label_of(cases)
    return small, large if large != small else f"{large}-2"


def say(text: str = "") -> None:
    """Progress goes out at once: the large fill takes minutes."""
    print(text, flush=True)


def remove_database(path: Path) -> None:
    """Delete a database file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def database_bytes(path: Path) -> int:
    """The file plus its WAL, as it sits on disk."""
    return sum(
        p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()
    )


# -- 1. filing ------------------------------------------------------------------------------


FILING_TEXT = "小区电梯坏了三天，老人上下楼很困难，请尽快维修。"


@dataclass
class FilingRun:
    """A filing run on one fresh database."""

    filed: int
    seconds: float

    @property
    def rate(self) -> float:
        """Cases per second."""
        return self.filed / self.seconds if self.seconds else 0.0


async def fresh_services(path: Path, policy: Policy, now: datetime,
                         synchronous: str = "FULL") -> services.Services:
    """A fresh migrated file with the policy's units, as the bot starts on a new install."""
    remove_database(path)
    db = Database(path, synchronous=synchronous)
    await db.connect()
    svc = services.Services(db=db, policy=policy, clock=FrozenClock(now))
    await services.setup_policy_units(svc)
    return svc


async def file_cases(svc: services.Services, first_citizen: int, count: int,
                     concurrency: int) -> FilingRun:
    """File `count` cases for distinct citizens; `concurrency` > 1 files them in gathered
    batches, the way concurrent Telegram updates reach the services."""
    clock = svc.clock
    assert isinstance(clock, FrozenClock)
    categories = list(svc.policy.categories)
    districts = list(svc.policy.districts)

    async def one(k: int) -> None:
        citizen = first_citizen + k
        await services.file_case(
            svc,
            Profile(citizen, first_name="张", last_name="三", language="zh_Hans"),
            category=categories[k % len(categories)],
            district=districts[k % len(districts)],
            text=FILING_TEXT,
        )

    # Time moves on a little per filing, as in life; distinct citizens keep the
    # 5-per-hour limit out of the way.
    step = timedelta(milliseconds=20)
    began = time.perf_counter()
    if concurrency <= 1:
        for k in range(count):
            clock.advance(step)
            await one(k)
    else:
        for lo in range(0, count, concurrency):
            batch = range(lo, min(count, lo + concurrency))
            clock.advance(step * len(batch))
            await asyncio.gather(*(one(k) for k in batch))
    return FilingRun(count, time.perf_counter() - began)


async def count_cases(db: Database) -> int:
    """Cases in a file (a filing benchmark must really have filed them)."""
    row = await db.fetch_one("SELECT count(*) FROM cases")
    return int(row[0]) if row else 0


async def bench_filing(workdir: Path, policy: Policy, now: datetime, count: int,
                       concurrency: int) -> dict[str, Any]:
    """Sequential and concurrent filing rates, each on its own fresh file."""
    result: dict[str, Any] = {"count": count, "concurrency": concurrency}
    warmup = min(50, count)
    for mode, tasks in (("sequential", 1), ("concurrent", concurrency)):
        svc = await fresh_services(workdir / f"filing-{mode}.db", policy, now)
        try:
            # A short warm-up (imports, statement cache, first pages) outside the timing.
            await file_cases(svc, 900_000_000, warmup, tasks)
            run = await file_cases(svc, 1_000_000, count, tasks)
            stored = await count_cases(svc.db)
        finally:
            await svc.db.close()
        result[mode] = {"rate": run.rate, "seconds": run.seconds, "stored": stored}
        say(f"  filing {mode:<10} ({tasks:>2} task{'s' if tasks > 1 else ''}): "
            f"{run.rate:7.0f} cases/s  ({count} in {run.seconds:.2f} s; {stored} in the file"
            f" with the warm-up's {warmup})")
    return result


# -- filing profile (only when the target is missed, or with --profile) ---------------------


@contextlib.contextmanager
def worker_timing() -> Iterator[dict[str, list[float]]]:
    """Time what each aiosqlite call does in its worker thread, by statement.

    cProfile sees only the event-loop thread, where SQL shows up as waiting; wrapping the
    function aiosqlite hands to its thread attributes the time to statements (COMMIT
    includes the fsync). Only this benchmark's process is patched, and only inside the
    block.
    """
    spent: dict[str, list[float]] = {}
    original = aiosqlite.core.Connection._execute

    async def timed(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        label = getattr(fn, "__name__", type(fn).__name__)
        if args and isinstance(args[0], str):
            label = f"{label}: {' '.join(args[0].split()[:3])}"

        def run() -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                entry = spent.setdefault(label, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - began

        return await original(self, run)

    aiosqlite.core.Connection._execute = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        aiosqlite.core.Connection._execute = original  # type: ignore[method-assign]


async def profile_filing(workdir: Path, policy: Policy, now: datetime,
                         count: int) -> dict[str, Any]:
    """Where a sequential filing's time goes: SQL in the worker thread (COMMIT = fsync),
    Python in the loop thread, and the hand-offs between them; plus cProfile's top list
    and the rate with synchronous=OFF for comparison."""
    say(f"\n  profiling {count} sequential filings ...")
    svc = await fresh_services(workdir / "filing-profile.db", policy, now)
    try:
        await file_cases(svc, 900_000_000, 50, 1)
        with worker_timing() as spent:
            cpu_before = time.thread_time()
            run = await file_cases(svc, 1_000_000, count, 1)
            loop_cpu = time.thread_time() - cpu_before
        profiler = cProfile.Profile()
        profiler.enable()
        await file_cases(svc, 2_000_000, count, 1)
        profiler.disable()
    finally:
        await svc.db.close()
    svc = await fresh_services(workdir / "filing-nosync.db", policy, now, synchronous="OFF")
    try:
        await file_cases(svc, 900_000_000, 50, 1)
        nosync = await file_cases(svc, 1_000_000, count, 1)
    finally:
        await svc.db.close()

    per = 1e6 / count  # seconds in total -> microseconds per filing
    wall = run.seconds * per
    statements = sorted(spent.items(), key=lambda item: -item[1][1])
    worker = sum(seconds for _, seconds in spent.values()) * per
    trips = sum(n for n, _ in spent.values()) / count
    closes = sum(n for label, (n, _) in spent.items() if label == "close") / count
    commit = sum(s for label, (_, s) in spent.items() if "COMMIT" in label) * per
    loop = loop_cpu * per
    idle = max(0.0, wall - worker - loop)
    say(f"  wall time per filing                   {wall:6.0f} µs  ({run.rate:.0f}/s)")
    say(f"    SQLite, in the aiosqlite thread      {worker:6.0f} µs  {worker / wall:4.0%}"
        f"   of which COMMIT (WAL fsync) {commit:.0f} µs = {commit / wall:.0%}")
    say(f"    event-loop thread, CPU               {loop:6.0f} µs  {loop / wall:4.0%}"
        f"   (split below)")
    say(f"    neither busy: thread wake-up latency {idle:6.0f} µs  {idle / wall:4.0%}")
    say(f"  {trips:.0f} aiosqlite round trips per filing ({closes:.0f} of them cursor close()),"
        f" i.e. {(wall - worker) / trips:.0f} µs of overhead per round trip")
    grouped = 1e6 / (worker - commit + commit / 50)
    say(f"  ceilings: SQL alone {1e6 / worker:.0f}/s, the fsync alone {1e6 / commit:.0f}/s,"
        f" SQL with one fsync per 50 filings (group commit) {grouped:.0f}/s;"
        f" measured with synchronous=OFF: {nosync.rate:.0f}/s")
    split = profile_split(profiler, count)
    profiled = sum(split.values())
    say("  cProfile of the event-loop thread (profiler overhead inflates it), µs per filing:")
    for name, micros in split.items():
        say(f"    {name:<52} {micros:6.0f} µs  {micros / profiled:4.0%}")
    say("  aiosqlite calls per filing, time in the worker thread:")
    for label, (n, seconds) in statements:
        say(f"    {n / count:4.1f} × {label[:52]:<52} {seconds * per:6.0f} µs")
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(10)
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    top = lines[next((i for i, line in enumerate(lines) if "ncalls" in line), 0):][:11]
    say("  cProfile top 10 by own time:")
    for line in top:
        say(f"    {line.strip()[:118]}")
    return {
        "count": count,
        "wall_us": wall,
        "worker_us": worker,
        "commit_us": commit,
        "loop_cpu_us": loop,
        "idle_us": idle,
        "round_trips": trips,
        "rate": run.rate,
        "rate_synchronous_off": nosync.rate,
        "statements": {label: {"calls": n / count, "us": s * per} for label, (n, s) in statements},
        "cprofile_split_us": split,
        "cprofile_top": top,
    }


def profile_split(profiler: cProfile.Profile, count: int) -> dict[str, float]:
    """Own time of the event-loop thread by kind of code, µs per filing."""
    root = str(Path(__file__).resolve().parent.parent)
    kinds = {
        "waiting in epoll for the aiosqlite thread": 0.0,
        "waking the worker (queue put) / self-pipe recv": 0.0,
        "asyncio event loop": 0.0,
        "aiosqlite (futures, cursors)": 0.0,
        "project code (bot/, storage/)": 0.0,
        "other (json, datetime, builtins)": 0.0,
    }
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.items():
        if "select.epoll" in function:
            kind = "waiting in epoll for the aiosqlite thread"
        elif "SimpleQueue" in function or "_socket.socket" in function:
            kind = "waking the worker (queue put) / self-pipe recv"
        elif "aiosqlite" in filename:
            kind = "aiosqlite (futures, cursors)"
        elif "asyncio" in filename or "selectors" in filename or "_contextvars" in function:
            kind = "asyncio event loop"
        elif filename.startswith(root) and ".venv" not in filename:
            kind = "project code (bot/, storage/)"
        else:
            kind = "other (json, datetime, builtins)"
        kinds[kind] += own * 1e6 / count
    return kinds


# -- 2. fill --------------------------------------------------------------------------------


async def build(path: Path, policy: Policy, plan: FillPlan) -> FillResult:
    """Schema via the production migration, then the bulk fill; timed together."""
    began = time.perf_counter()
    remove_database(path)
    await create_schema(path, policy, plan.start)
    result = fill(path, policy, plan)
    result.seconds = time.perf_counter() - began
    result.size_bytes = database_bytes(path)
    return result


async def build_or_reuse(path: Path, policy: Policy, plan: FillPlan, *,
                         reuse: bool) -> FillResult:
    """Fill `path`, or reuse it when a kept fill of the same plan is there.

    The marker beside the file (`<db>.plan.json`) is the one bench/scheduler.py writes and
    reads, so the two benchmarks share one kept data directory."""
    key = plan.key()
    kept = kept_fill(path, key) if reuse else None
    if kept is not None:
        say(f"  {label_of(plan.cases)}: reusing {path} (filled earlier in {kept.seconds:.0f} s)")
        return kept
    write_marker(path, None, None)  # a fill cut short must not pass for a kept one
    result = await build(path, policy, plan)
    write_marker(path, key, result)
    return result


def kept_fill(path: Path, key: dict[str, Any]) -> FillResult | None:
    """The fill kept at `path` if its marker records the same plan."""
    marker = Path(f"{path}.plan.json")
    if not (path.exists() and marker.exists()):
        return None
    saved = json.loads(marker.read_text(encoding="utf-8"))
    if saved.get("plan") != key:
        return None
    return FillResult(**{**saved["fill"], "path": path})


def write_marker(path: Path, key: dict[str, Any] | None, result: FillResult | None) -> None:
    """Record which plan filled `path`, for the next run (of either benchmark) to reuse;
    without a result, forget it."""
    marker = Path(f"{path}.plan.json")
    if key is None or result is None:
        marker.unlink(missing_ok=True)
        return
    data = asdict(result)
    data["path"] = str(result.path)
    marker.write_text(
        json.dumps({"plan": key, "fill": data}, ensure_ascii=False, default=str),
        encoding="utf-8")


def describe_fill(label: str, result: FillResult) -> dict[str, Any]:
    """Print and return what one fill wrote."""
    rows = ", ".join(f"{name} {count:,}" for name, count in result.rows.items())
    states = ", ".join(f"{name} {count:,}" for name, count in result.states.items())
    say(f"  {label}: {result.seconds:6.1f} s, {result.size_bytes / 1e6:8.1f} MB — {rows}")
    say(f"  {' ' * len(label)}  states: {states}")
    backlog = (f"; {result.backlog_cases:,} of the {result.backlog_spread:,} most recent cases"
               " held open (a backlog) so that the due set fills" if result.backlog_cases else "")
    say(f"  {' ' * len(label)}  open assignments {result.open_assignments:,}, "
        f"due now {result.due:,}{backlog}")
    phases = ", ".join(f"{step} {seconds:.1f}" for step, seconds in result.phases.items())
    helper = " (a helper process draws while this one inserts)" if result.helper_process else ""
    say(f"  {' ' * len(label)}  seconds: {phases}{helper}")
    data = asdict(result)
    data["path"] = str(result.path)
    return data


# -- 3 and 4. queries -----------------------------------------------------------------------


async def due_now(db: Database, now: datetime, limit: int) -> list[Any]:
    """The deadline sweep's due-now query as it runs it (the rows, before planning)."""
    return await db.fetch_all(DUE_FOR_CHASING_SQL, (to_db(now), limit))


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 20 runs is the 19th fastest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def timed_runs(call: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Milliseconds of `runs` warm calls (one untimed call first), and the last result."""
    result = await call()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = await call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples, result


async def explain(db: Database, sql: str, params: dict[str, Any] | tuple[Any, ...]) -> list[str]:
    """EXPLAIN QUERY PLAN as indented lines."""
    rows = await db.fetch_all(f"EXPLAIN QUERY PLAN {sql}", params)
    depth: dict[int, int] = {0: 0}
    lines = []
    for row in rows:
        level = depth.get(row[1], 0) + 1
        depth[row[0]] = level
        lines.append(f"{'  ' * level}{row[3]}")
    return lines


async def bench_queries(path: Path, now: datetime, week: tuple[datetime, datetime],
                        plans: bool) -> dict[str, Any]:
    """Warm timings of the due-now query and the weekly per-unit aggregate on one file."""
    db = Database(path)
    await db.connect()
    try:
        due_set = await db.fetch_one(
            "SELECT count(*) FROM assignments WHERE next_check_at IS NOT NULL"
            " AND next_check_at <= ?",
            (to_db(now),),
        )
        due_ms, due = await timed_runs(lambda: due_now(db, now, DUE_LIMIT), DUE_RUNS)
        report_ms, counts = await timed_runs(
            lambda: unit_counts(db, week[0], week[1], now), REPORT_RUNS
        )
        params = {"start": to_db(week[0]), "end": to_db(week[1]), "now": to_db(now)}
        result: dict[str, Any] = {
            "due_set": int(due_set[0]) if due_set else 0,
            "due_rows": len(due),
            "due_ms": due_ms,
            "due_median_ms": statistics.median(due_ms),
            "due_p95_ms": percentile(due_ms, 0.95),
            "report_ms": report_ms,
            "report_median_ms": statistics.median(report_ms),
            "report_units": len(counts),
            "report_cases": sum(c.cases for c in counts.values()),
            "report_rated": sum(c.satisfaction.denominator for c in counts.values()),
        }
        if plans:
            result["plans"] = {
                "DUE_FOR_CHASING_SQL": await explain(
                    db, DUE_FOR_CHASING_SQL, (to_db(now), DUE_LIMIT)
                ),
                "UNIT_STAGES_SQL": await explain(db, UNIT_STAGES_SQL, params),
                "UNIT_REPLY_SQL": await explain(db, UNIT_REPLY_SQL, params),
                "UNIT_SATISFACTION_SQL": await explain(
                    db, UNIT_SATISFACTION_SQL, {"start": params["start"], "end": params["end"]}
                ),
            }
    finally:
        await db.close()
    return result


def last_full_week(now: datetime, policy: Policy) -> tuple[datetime, datetime]:
    """Monday 00:00 to Monday 00:00 (local) of the last week that ended before `now`."""
    local = now.astimezone(policy.calendar.tz)
    this_monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return this_monday - timedelta(days=7), this_monday


# -- the table ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int) -> str:
    """A number for the table ('-' when not measured)."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(figures: list[Figure], small: str, large: str) -> None:
    """figure | small | large | ratio | target | ok?"""
    header = ("figure", small, large, "ratio", "target", "ok?")
    rows = [
        (
            f.name,
            fmt(f.small, f.digits),
            fmt(f.large, f.digits),
            "-" if f.ratio is None else f"{f.ratio:.2f}",
            f.target,
            "-" if f.ok is None else ("yes" if f.ok else "NO"),
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(
            str(c).ljust(w) if i in (0, 4) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    say(line(header))
    say("-+-".join("-" * w for w in widths))
    for row in rows:
        say(line(row))


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=1_000_000,
                        help="cases in the large database (default 1,000,000)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the databases in DIR (default: a temporary directory)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                        help=f"also write the figures as JSON (default {DEFAULT_JSON})")
    parser.add_argument("--filings", type=int, default=None,
                        help="cases filed per filing run (default 3000, or 1000 when --cases"
                             " is under 100000 so smoke runs stay short; 0 skips filing)")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="concurrent filing tasks per batch (default 50)")
    parser.add_argument("--due", type=int, default=DUE_LIMIT,
                        help="assignments due at 'now' in each filled database (default 1000)")
    parser.add_argument("--profile", action="store_true",
                        help="profile filing even when it meets its target")
    parser.add_argument("--explain", action="store_true",
                        help="print query plans even when the queries meet their targets")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, workdir: Path) -> Report:
    """The four parts, in order; returns what the table and the JSON show."""
    policy = load_policy(EXAMPLE_POLICY)
    tz = policy.calendar.tz
    # Monday 09:00: the weekly report's moment (reports.weekly_time), with a full working
    # week behind it and a weekend's filings waiting for the desk.
    now = datetime(2026, 11, 30, 9, 0, tzinfo=tz)
    start = datetime(2025, 1, 1, tzinfo=tz)
    week = last_full_week(now, policy)
    small, large = labels(args.cases)
    report = Report()
    report.meta = {
        "cases": {small: SMALL_CASES, large: args.cases},
        "now": now.isoformat(),
        "filed_from": start.isoformat(),
        "week": [week[0].isoformat(), week[1].isoformat()],
        "workdir": str(workdir),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "aiosqlite": getattr(aiosqlite, "__version__", "?"),
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    say(f"Wenzheng core benchmark — {small} and {large} cases, now = {now:%Y-%m-%d %H:%M %Z}, "
        f"databases in {workdir}")

    figures = report.figures
    if args.filings > 0:
        say(f"\n1. Filing through services.file_case (fresh file, WAL, synchronous=FULL), "
            f"{args.filings} distinct citizens")
        report.filing = await bench_filing(workdir, policy, now, args.filings, args.concurrency)
        seq = report.filing["sequential"]["rate"]
        conc = report.filing["concurrent"]["rate"]
        target = f">= {FILING_TARGET:,.0f}/s"
        figures.append(Figure("filing, sequential (cases/s, fresh DB)", seq, None, target,
                              seq >= FILING_TARGET, 0))
        figures.append(Figure(f"filing, {args.concurrency} concurrent (cases/s, fresh DB)",
                              conc, None, target, conc >= FILING_TARGET, 0))
        if args.profile or min(seq, conc) < FILING_TARGET:
            report.filing["profile"] = await profile_filing(
                workdir, policy, now, min(1000, max(1, args.filings // 2))
            )

    say(f"\n2. Bulk fill (raw sqlite3, executemany, synchronous=OFF during the fill), "
        f"filed {start:%Y-%m-%d} .. {now:%Y-%m-%d %H:%M}")
    results: dict[str, FillResult] = {}
    for label, count in ((small, SMALL_CASES), (large, args.cases)):
        plan = FillPlan(cases=count, start=start, now=now, due=args.due)
        results[label] = await build_or_reuse(workdir / f"cases-{label}.db", policy, plan,
                                              reuse=args.keep is not None)
        report.fills[label] = describe_fill(label, results[label])
    fill_s = (results[small].seconds, results[large].seconds)
    figures.append(Figure("fill time (s, incl. migration + ANALYZE)", *fill_s,
                          f"< {FILL_TARGET_S:.0f} s at {large}", fill_s[1] < FILL_TARGET_S))
    figures.append(Figure("file size (MB)", results[small].size_bytes / 1e6,
                          results[large].size_bytes / 1e6))

    say(f"\n3./4. Queries (warm; due-now query x{DUE_RUNS}, unit_counts x{REPORT_RUNS}), "
        f"week {week[0]:%Y-%m-%d} .. {week[1]:%Y-%m-%d}")
    for label in (small, large):
        measured = await bench_queries(results[label].path, now, week, plans=True)
        report.queries[label] = measured
        say(f"  {label}: due set {measured['due_set']:,}, rows {measured['due_rows']:,}, "
            f"median {measured['due_median_ms']:.2f} ms, p95 {measured['due_p95_ms']:.2f} ms | "
            f"unit_counts median {measured['report_median_ms']:.1f} ms "
            f"({measured['report_units']} units, {measured['report_cases']:,} cases, "
            f"{measured['report_rated']:,} ratings)")
    qs, ql = report.queries[small], report.queries[large]
    figures.append(Figure("due set at now (assignments)", qs["due_set"], ql["due_set"],
                          "same size", qs["due_set"] == ql["due_set"] > 0, 0))
    figures.append(Figure("due-now query rows returned", qs["due_rows"], ql["due_rows"],
                          "same size", qs["due_rows"] == ql["due_rows"] > 0, 0))
    due_ratio = ql["due_median_ms"] / qs["due_median_ms"] if qs["due_median_ms"] else math.inf
    due_ok = ql["due_median_ms"] < DUE_TARGET_MS and due_ratio < DUE_RATIO_MAX
    figures.append(Figure("due-now query median (ms)", qs["due_median_ms"],
                          ql["due_median_ms"],
                          f"< {DUE_TARGET_MS:.0f} ms at {large}, ratio < {DUE_RATIO_MAX:.0f}",
                          due_ok, 2))
    figures.append(Figure("due-now query p95 (ms)", qs["due_p95_ms"], ql["due_p95_ms"],
                          digits=2))
    report_ok = ql["report_median_ms"] < REPORT_TARGET_MS
    figures.append(Figure("unit_counts one week median (ms)", qs["report_median_ms"],
                          ql["report_median_ms"], f"< {REPORT_TARGET_MS:.0f} ms at {large}",
                          report_ok, 1))
    figures.append(Figure("cases filed in that week", qs["report_cases"], ql["report_cases"],
                          digits=0))

    show_due_plan = args.explain or not due_ok
    show_report_plans = args.explain or not report_ok
    if show_due_plan or show_report_plans:
        say(f"\nEXPLAIN QUERY PLAN at {large}:")
        for name, lines in ql["plans"].items():
            if (name == "DUE_FOR_CHASING_SQL" and show_due_plan) or (
                name != "DUE_FOR_CHASING_SQL" and show_report_plans
            ):
                say(f"  {name}:")
                for text in lines:
                    say(f"  {text}")
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    args = parse_args(argv)
    if args.filings is None:
        args.filings = 3000 if args.cases >= 100_000 else 1000
    if args.cases < 1 or args.filings < 0 or args.due < 1:
        raise SystemExit("--cases and --due must be positive, --filings not negative")
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = args.keep.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wz-bench-")))
        report = asyncio.run(run(args, workdir))
    elapsed = time.perf_counter() - began
    report.meta["total_seconds"] = elapsed
    small, large = labels(args.cases)
    say()
    print_table(report.figures, small, large)
    say(f"\ntotal {elapsed:.0f} s" + (f"; databases kept in {args.keep}" if args.keep else ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "figures": contract_rows("growth: core", report.figures, small, large),
        "data": {
            "meta": report.meta,
            "filing": report.filing,
            "fills": report.fills,
            "queries": report.queries,
        },
    }
    args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    say(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

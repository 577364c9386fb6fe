"""Scheduler benchmark: the deadline sweep, the weekly report and the bot's memory.

It prints figures; it is not a test and asserts nothing.

    ./dev python bench/scheduler.py                  # 10,000 and 1,000,000 cases (~7 minutes)
    ./dev python bench/scheduler.py --cases 20000    # smoke run (under a minute)
    ./dev python bench/scheduler.py --keep /tmp/wz   # keep (and next time reuse) the databases

Both databases come from the bulk filler of `bench/core.py` with the same due set (1,000
assignments whose next check is at "now", Monday 2026-11-30 09:00 Shanghai).

1. The deadline sweep: one `services.chase_due` call (limit = the due set, so it takes
   every due item) with a FrozenClock at now, on a fresh copy of the file, nine times;
   the median, and the fastest (as `timeit` reports: the code's own time, the least of
   the machine's noise). Beside it the sweep's due-now query alone
   (`storage.chasing.DUE_FOR_CHASING_SQL`).
2. The weekly report of the last full week, as the bot sends it: `build_report` (with the
   week before for comparison), the text, the chart PNG and the XLSX; median of three.
3. Resident memory of the running bot (the real Application, polling the Bot API
   simulator, in a fresh process per database) after its start-up sweep.
4. The naive design beside it: one APScheduler date job per open case, 100,000 jobs in an
   in-memory AsyncIOScheduler, in a fresh process; the growth, extrapolated to 1,000,000.

Sweep and report also give their CPU time (this process, all threads): on a shared,
loaded machine the wall-clock figures carry other processes' load, the CPU times less so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make the project root importable (as bench/core.py does).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._fill import FillPlan, FillResult
from bench.core import (
    SMALL_CASES,
    Figure,
    build,
    contract_rows,
    database_bytes,
    describe_fill,
    due_now,
    label_of,
    print_table,
    remove_database,
    say,
)
from bot import reports, services
from bot.clock import FrozenClock
from bot.config import EXAMPLE_POLICY, load_policy
from bot.domain.policy import Policy
from bot.i18n import translator
from storage.db import Database, to_db
from storage.directory import unit_names

DUE = 1000
SWEEP_TARGET_MS = 100.0
SWEEP_RATIO_MAX = 2.0
REPORT_TARGET_S = 2.0
MEMORY_GROWTH_MB = 50.0
RUNS = 3
# The sweep's runs on this kind of machine (a 2-core VM) spread over ±30 % for the same
# work: nine fresh copies make the median a figure and not a draw.
SWEEP_RUNS = 9
SELECT_RUNS = 20
NAIVE_JOBS = 100_000
NAIVE_PER = 1_000_000
STARTUP_SWEEP_TIMEOUT = 120.0
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "scheduler.json"
ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 9, 0)  # local (policy time zone): Monday 09:00
START = datetime(2025, 1, 1)


def moments(policy: Policy) -> tuple[datetime, datetime]:
    """(now, filed-from) in the policy's time zone, as bench/core.py uses them."""
    tz = policy.calendar.tz
    return NOW.replace(tzinfo=tz), START.replace(tzinfo=tz)


def rss_kb(field: str = "VmRSS") -> int:
    """A memory figure of this process from /proc/self/status, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def copy_database(source: Path, target: Path) -> float:
    """A fresh copy of a (closed, checkpointed) database, written through to the disk;
    returns the seconds it took.

    Without the sync the copy's gigabytes are still being written back when the sweep
    commits, and its fsync waits for them: at 1M cases that was over a second of the
    figure, none of it the sweep's.
    """
    began = time.perf_counter()
    remove_database(target)
    shutil.copyfile(source, target)
    wal = Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size:
        shutil.copyfile(wal, Path(f"{target}-wal"))
    os.sync()
    return time.perf_counter() - began


async def count(db: Database, sql: str, *params: Any) -> int:
    """One integer from the database."""
    row = await db.fetch_one(sql, params)
    return int(row[0]) if row else 0


OPEN_SQL = "SELECT count(*) FROM cases WHERE state NOT IN ('closed', 'rejected')"
DUE_SQL = "SELECT count(*) FROM assignments WHERE next_check_at IS NOT NULL AND next_check_at <= ?"


# -- 1. the sweep ---------------------------------------------------------------------------


async def bench_selection(path: Path, now: datetime) -> dict[str, Any]:
    """The due-now query on the unmodified file: the first call on a new connection, then
    warm calls."""
    db = Database(path)
    await db.connect()
    try:
        began = time.perf_counter()
        rows = await due_now(db, now, DUE)
        first = (time.perf_counter() - began) * 1000
        warm = []
        for _ in range(SELECT_RUNS):
            began = time.perf_counter()
            await due_now(db, now, DUE)
            warm.append((time.perf_counter() - began) * 1000)
        return {
            "rows": len(rows),
            "first_ms": first,
            "warm_ms": warm,
            "warm_median_ms": statistics.median(warm),
            "open_cases": await count(db, OPEN_SQL),
            "due_set": await count(db, DUE_SQL, to_db(now)),
        }
    finally:
        await db.close()


async def bench_sweep(source: Path, work: Path, policy: Policy, now: datetime,
                      diagnose: bool) -> dict[str, Any]:
    """One chase_due call per fresh copy (a new connection each time), SWEEP_RUNS times with
    the production settings; with `diagnose`, once more with synchronous=OFF to show what the
    commits' fsyncs cost (a diagnostic, not a way to run)."""
    runs = []
    for k in range(SWEEP_RUNS + (1 if diagnose else 0)):
        synchronous = "FULL" if k < SWEEP_RUNS else "OFF"
        copy = work / f"sweep-{k}.db"
        copy_s = copy_database(source, copy)
        db = Database(copy) if synchronous == "FULL" else Database(copy, synchronous="OFF")
        await db.connect()
        try:
            svc = services.Services(db=db, policy=policy, clock=FrozenClock(now))
            before = await count(db, DUE_SQL, to_db(now))
            began, cpu = time.perf_counter(), time.process_time()
            taken = await services.chase_due(svc, limit=DUE)
            ms = (time.perf_counter() - began) * 1000
            cpu_ms = (time.process_time() - cpu) * 1000
            after = await count(db, DUE_SQL, to_db(now))
            outbox = await count(db, "SELECT count(*) FROM outbox")
        finally:
            await db.close()
            remove_database(copy)
        runs.append({"ms": ms, "cpu_ms": cpu_ms, "steps": taken, "due_before": before,
                     "due_after": after, "outbox_rows": outbox, "copy_s": copy_s,
                     "synchronous": synchronous})
        name = f"run {k + 1}" if synchronous == "FULL" else "synchronous=OFF"
        say(f"    {name}: {ms:8.1f} ms ({cpu_ms:.1f} ms CPU), {taken:,} steps, due {before:,} -> "
            f"{after:,}, {outbox:,} outbox rows (copy {copy_s:.1f} s)")
    full = [r for r in runs if r["synchronous"] == "FULL"]
    return {"runs": full, "median_ms": statistics.median(r["ms"] for r in full),
            "best_ms": min(r["ms"] for r in full),
            "median_cpu_ms": statistics.median(r["cpu_ms"] for r in full),
            "no_fsync_ms": runs[-1]["ms"] if diagnose else None}


# -- 2. the weekly report -------------------------------------------------------------------


async def bench_report(path: Path, policy: Policy, now: datetime) -> dict[str, Any]:
    """The weekly report as the bot renders it, RUNS times on one connection."""
    db = Database(path)
    await db.connect()
    t = translator("zh_Hans")
    period = reports.previous_week(now, policy)
    runs = []
    try:
        for _ in range(RUNS):
            laps: dict[str, float] = {}
            cpu = time.process_time()
            began = mark = time.perf_counter()
            names = await unit_names(db)
            report = await reports.build_report(db, policy, period, now)
            laps["build_s"] = time.perf_counter() - mark
            mark = time.perf_counter()
            text = reports.summary_text(report, t, policy, names)
            laps["text_s"] = time.perf_counter() - mark
            mark = time.perf_counter()
            png = reports.chart_png(report, t, policy, names)
            laps["png_s"] = time.perf_counter() - mark
            mark = time.perf_counter()
            sheet = reports.xlsx_bytes(report, policy, names)
            laps["xlsx_s"] = time.perf_counter() - mark
            laps["total_s"] = time.perf_counter() - began
            laps["cpu_s"] = time.process_time() - cpu
            laps.update(received=report.received, rows=len(report.rows), text_chars=len(text),
                        png_bytes=len(png), xlsx_bytes=len(sheet))
            runs.append(laps)
    finally:
        await db.close()
    median = statistics.median(r["total_s"] for r in runs)
    median_cpu = statistics.median(r["cpu_s"] for r in runs)
    typical = min(runs, key=lambda r: abs(r["total_s"] - median))
    say(f"    median {median:.2f} s, {median_cpu:.2f} s CPU (build {typical['build_s']:.2f},"
        f" text {typical['text_s']:.2f},"
        f" PNG {typical['png_s']:.2f}, XLSX {typical['xlsx_s']:.2f}); first run "
        f"{runs[0]['total_s']:.2f} s; week {period.label}: {typical['received']:,} received, "
        f"{typical['rows']:,} XLSX rows, PNG {typical['png_bytes'] / 1e3:.0f} kB, "
        f"XLSX {typical['xlsx_bytes'] / 1e3:.0f} kB")
    return {"period": period.label, "runs": runs, "median_s": median,
            "median_cpu_s": median_cpu}


# -- 3. the running bot's memory (child process) ---------------------------------------------


async def child_bot(path: Path) -> dict[str, Any]:
    """Start the real bot on `path` against the simulator, wait for the start-up sweep,
    read this process's memory."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from bot import app as bot_app
    from bot.config import Settings
    from sandbox import BotApiSimulator

    logging.basicConfig(level=logging.WARNING)
    policy = load_policy(EXAMPLE_POLICY)
    now, _ = moments(policy)
    clock = FrozenClock(now)
    imported_kb = rss_kb()
    async with BotApiSimulator(seed=11) as sim:
        settings = Settings(token=sim.token, api_base_url=sim.base_url,
                            file_base_url=sim.file_base_url, admins=(1000,), database=path)
        db = Database(path)
        await db.connect()
        open_cases = await count(db, OPEN_SQL)
        due_before = await count(db, DUE_SQL, to_db(now))
        app = bot_app.create_application(settings, policy=policy, clock=clock, db=db)
        began = time.perf_counter()
        await bot_app.start(app, poll_timeout=1)
        # The start-up sweep takes at most chase_due's default limit; wait until it has.
        target = max(0, due_before - 500)
        due = due_before
        while time.perf_counter() - began < STARTUP_SWEEP_TIMEOUT:
            due = await count(db, DUE_SQL, to_db(now))
            if due <= target:
                break
            await asyncio.sleep(0.1)
        swept_s = time.perf_counter() - began
        await asyncio.sleep(1.0)  # let the outbox sender and persistence settle
        gc.collect()
        running_kb, peak_kb = rss_kb(), rss_kb("VmHWM")
        await bot_app.stop(app)
        await db.close()
    return {"open_cases": open_cases, "due_before": due_before, "due_after": due,
            "startup_sweep_s": swept_s, "rss_kb": running_kb, "hwm_kb": peak_kb,
            "rss_after_imports_kb": imported_kb}


# -- 4. the naive design (child process) -----------------------------------------------------


def naive_job(case_id: int) -> None:
    """What one job per case would run (never runs here: the scheduler is paused)."""


async def child_naive(jobs: int) -> dict[str, Any]:
    """One APScheduler date job per open case, in the in-memory job store."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    gc.collect()
    before = rss_kb()
    base = datetime.now(UTC) + timedelta(days=30)
    began = time.perf_counter()
    for k in range(jobs):
        # A deadline each, spread over the next weeks as a backlog's deadlines are.
        scheduler.add_job(naive_job, "date", run_date=base + timedelta(seconds=17 * k),
                          args=(k,), id=f"case-{k}", misfire_grace_time=None)
    added_s = time.perf_counter() - began
    gc.collect()
    after = rss_kb()
    stored = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    return {"jobs": stored, "rss_before_kb": before, "rss_after_kb": after,
            "growth_kb": after - before, "add_s": added_s}


def run_child(*args: str) -> dict[str, Any]:
    """This script in a fresh interpreter; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=1_000_000,
                        help="cases in the large database (default 1,000,000)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the databases in DIR, and reuse them if already there")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                        help=f"also write the figures as JSON (default {DEFAULT_JSON})")
    parser.add_argument("--naive-jobs", type=int, default=NAIVE_JOBS,
                        help=f"APScheduler jobs for the naive design (default {NAIVE_JOBS:,})")
    parser.add_argument("--fsync-diagnostic", action="store_true",
                        help="one more sweep per size with synchronous=OFF (what fsync costs)")
    parser.add_argument("--child-bot", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-naive", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def filled(path: Path, policy: Policy, cases: int) -> dict[str, Any]:
    """Fill a database (or reuse a kept one of the same plan)."""
    now, start = moments(policy)
    marker = Path(f"{path}.plan.json")
    plan = FillPlan(cases=cases, start=start, now=now, due=DUE)
    key = plan.key()
    kept = _kept_fill(path, marker, key)
    if kept is not None:
        data = kept
        say(f"  {label_of(cases)}: reusing {path} ({database_bytes(path) / 1e6:.0f} MB,"
            f" filled earlier in {data['seconds']:.0f} s)")
        return data
    result: FillResult = await build(path, policy, plan)
    data = describe_fill(label_of(cases), result)
    _write_marker(marker, {"plan": key, "fill": data})
    return data


def _kept_fill(path: Path, marker: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """What a kept fill of the same plan wrote, if `path` holds one."""
    if not (path.exists() and marker.exists()):
        return None
    saved = json.loads(marker.read_text(encoding="utf-8"))
    return saved["fill"] if saved.get("plan") == key else None


def _write_marker(marker: Path, saved: dict[str, Any]) -> None:
    marker.write_text(json.dumps(saved, ensure_ascii=False, default=str), encoding="utf-8")


async def run(args: argparse.Namespace, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    """The four parts; returns the table's rows and everything for the JSON file."""
    policy = load_policy(EXAMPLE_POLICY)
    now, start = moments(policy)
    small, large = label_of(SMALL_CASES), label_of(args.cases)
    if large == small:
        large = f"{large}-2"
    sizes = {small: SMALL_CASES, large: args.cases}
    paths = {label: work / f"cases-{label}.db" for label in sizes}
    data: dict[str, Any] = {"meta": {
        "cases": sizes, "now": now.isoformat(), "filed_from": start.isoformat(), "due": DUE,
        "workdir": str(work), "python": sys.version.split()[0],
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }}
    say(f"Wenzheng scheduler benchmark — {small} and {large} cases, now = "
        f"{now:%Y-%m-%d %H:%M %Z}, databases in {work}")

    say(f"\n0. Bulk fill (bench/_fill.py, {DUE:,} assignments due at now)")
    data["fills"] = {label: await filled(paths[label], policy, n) for label, n in sizes.items()}

    say(f"\n1. Deadline sweep: services.chase_due(limit={DUE}) on a fresh copy, x{SWEEP_RUNS}")
    data["selection"], data["sweep"] = {}, {}
    for label in sizes:
        sel = await bench_selection(paths[label], now)
        data["selection"][label] = sel
        say(f"  {label}: {sel['open_cases']:,} open cases, due set {sel['due_set']:,}; "
            f"due-now query: first call {sel['first_ms']:.2f} ms, warm median "
            f"{sel['warm_median_ms']:.2f} ms ({sel['rows']:,} rows)")
        data["sweep"][label] = await bench_sweep(paths[label], work, policy, now,
                                                  args.fsync_diagnostic)

    say(f"\n2. Weekly report (build_report + text + chart PNG + XLSX), x{RUNS}")
    data["report"] = {}
    for label in sizes:
        say(f"  {label}:")
        data["report"][label] = await bench_report(paths[label], policy, now)

    # Memory, not time, is measured here, so the three processes run side by side.
    copies = {label: work / f"bot-{label}.db" for label in sizes}
    for label in sizes:
        copy_database(paths[label], copies[label])
    try:
        children = await asyncio.gather(
            *(asyncio.to_thread(run_child, "--child-bot", str(copies[label])) for label in sizes),
            asyncio.to_thread(run_child, "--child-naive", str(args.naive_jobs)),
        )
    finally:
        for copy in copies.values():
            remove_database(copy)
    say("\n3. Running bot (create_application + start, Bot API simulator), fresh process each,"
        " VmRSS after the start-up sweep")
    data["bot"] = {}
    for label, bot in zip(sizes, children, strict=False):
        data["bot"][label] = bot
        say(f"  {label}: {bot['open_cases']:,} open cases; VmRSS {bot['rss_kb'] / 1024:.1f} MB"
            f" (peak {bot['hwm_kb'] / 1024:.1f} MB; {bot['rss_after_imports_kb'] / 1024:.1f} MB"
            f" after imports); start-up sweep: due {bot['due_before']:,} -> "
            f"{bot['due_after']:,} in {bot['startup_sweep_s']:.1f} s")

    say(f"\n4. Naive design: {args.naive_jobs:,} APScheduler date jobs (AsyncIOScheduler,"
        " in-memory job store), fresh process beside the bots")
    naive = children[-1]
    data["naive"] = naive
    per_million_mb = naive["growth_kb"] / 1024 * NAIVE_PER / max(1, naive["jobs"])
    say(f"  {naive['jobs']:,} jobs: VmRSS {naive['rss_before_kb'] / 1024:.1f} -> "
        f"{naive['rss_after_kb'] / 1024:.1f} MB (+{naive['growth_kb'] / 1024:.1f} MB, "
        f"{naive['growth_kb'] * 1024 / max(1, naive['jobs']):.0f} B/job, added in "
        f"{naive['add_s']:.1f} s); per {NAIVE_PER:,} jobs ≈ {per_million_mb:,.0f} MB")

    sel, sw, rep, bot = data["selection"], data["sweep"], data["report"], data["bot"]
    sweep_ok = (sw[large]["median_ms"] < SWEEP_TARGET_MS
                and sw[large]["median_ms"] / sw[small]["median_ms"] < SWEEP_RATIO_MAX)
    select_ok = (sel[large]["first_ms"] < SWEEP_TARGET_MS
                 and sel[large]["warm_median_ms"] / sel[small]["warm_median_ms"] < SWEEP_RATIO_MAX)
    growth_mb = (bot[large]["rss_kb"] - bot[small]["rss_kb"]) / 1024
    figures = [
        Figure("due set at now (assignments)", sel[small]["due_set"], sel[large]["due_set"],
               "same size", sel[small]["due_set"] == sel[large]["due_set"] > 0, 0),
        Figure(f"sweep: chase_due, {DUE} due, median (ms)", sw[small]["median_ms"],
               sw[large]["median_ms"], f"< {SWEEP_TARGET_MS:.0f} ms at {large}, ratio ~1",
               sweep_ok, 1),
        *([Figure("sweep, synchronous=OFF, 1 run (ms; diagnostic)", sw[small]["no_fsync_ms"],
                  sw[large]["no_fsync_ms"], "what fsync costs", None, 1)]
          if args.fsync_diagnostic else []),
        Figure(f"sweep: fastest of {SWEEP_RUNS} (ms)", sw[small]["best_ms"], sw[large]["best_ms"],
               "(the least of the machine's noise)", None, 1),
        Figure("sweep: CPU time of that call, median (ms)", sw[small]["median_cpu_ms"],
               sw[large]["median_cpu_ms"], "(the machine's load aside)", None, 1),
        Figure("sweep: steps taken", sw[small]["runs"][0]["steps"], sw[large]["runs"][0]["steps"],
               digits=0),
        Figure("due-now selection, new connection (ms)", sel[small]["first_ms"],
               sel[large]["first_ms"], f"< {SWEEP_TARGET_MS:.0f} ms, ratio ~1", select_ok, 2),
        Figure("due-now selection, warm median (ms)", sel[small]["warm_median_ms"],
               sel[large]["warm_median_ms"], digits=2),
        Figure("weekly report + PNG + XLSX, median (s)", rep[small]["median_s"],
               rep[large]["median_s"], f"< {REPORT_TARGET_S:.0f} s at {large}",
               rep[large]["median_s"] < REPORT_TARGET_S, 2),
        Figure("weekly report, CPU time, median (s)", rep[small]["median_cpu_s"],
               rep[large]["median_cpu_s"], "(the machine's load aside)", None, 2),
        Figure("open cases in the DB (bot memory run)", bot[small]["open_cases"],
               bot[large]["open_cases"], digits=0),
        Figure("bot VmRSS after start-up sweep (MB)", bot[small]["rss_kb"] / 1024,
               bot[large]["rss_kb"] / 1024,
               f"growth < {MEMORY_GROWTH_MB:.0f} MB (here {growth_mb:+.1f})",
               growth_mb < MEMORY_GROWTH_MB, 1),
        Figure(f"naive: {naive['jobs'] // 1000}k APScheduler jobs, RSS growth (MB)",
               None, naive["growth_kb"] / 1024, "(for comparison)", None, 1),
        Figure("naive: extrapolated per 1M open cases (MB)", None, per_million_mb,
               f"vs bot growth {growth_mb:+.1f} MB", None, 0),
    ]
    return figures, data


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its child processes), print the table, write the JSON."""
    args = parse_args(argv)
    if args.child_bot is not None:
        print(json.dumps(asyncio.run(child_bot(args.child_bot))))
        return 0
    if args.child_naive is not None:
        print(json.dumps(asyncio.run(child_naive(args.child_naive))))
        return 0
    if args.cases < 1 or args.naive_jobs < 1:
        raise SystemExit("--cases and --naive-jobs must be positive")
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep.resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wz-sched-")))
        figures, data = asyncio.run(run(args, work))
    elapsed = time.perf_counter() - began
    data["meta"]["total_seconds"] = elapsed
    small, large = label_of(SMALL_CASES), label_of(args.cases)
    say()
    print_table(figures, small, large if large != small else f"{large}-2")
    say(f"\ntotal {elapsed:.0f} s" + (f"; databases kept in {args.keep}" if args.keep else ""))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"figures": contract_rows("growth: scheduler", figures, small,
                                        large if large != small else f"{large}-2"),
               "data": data}
    args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str),
                         encoding="utf-8")
    say(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

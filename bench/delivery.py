"""Delivery at Telegram's flood limits: how fast the outbox drains a burst of notices.

It prints figures; it is not a test and asserts nothing.

    ./dev python -m bench.delivery                 # 2,000 notices, 200 private chats, 20 groups
    ./dev python -m bench.delivery --quick         # 500 notices, 50 private chats, 10 groups

The notices are real outbox rows, written with `storage.outbox.enqueue` inside a unit of
work as the services write them, in the order events would produce them (interleaved across
chats). The real application from `bot.app.create_application` — PTB with its rate limiter
and our `OutboxSender` — drains them over HTTP into the Bot API simulator, which enforces
Telegram's limits (sandbox/limits.py: about 30 messages/s overall, about 1/s per private
chat after a short burst, 20/min per group). The run is made twice: each notice as its own
message, and with the sender's digest, which combines consecutive plain notices waiting for
the same group into one message.

The theoretical minimum comes from the same limits and the mix: the overall bucket, the
busiest group's bucket and the busiest private chat's bucket each need a time of their own,
(messages - burst) / rate, and the drain can be no shorter than the longest of the three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot import app as bot_app
from bot import services
from bot.clock import Clock
from bot.config import EXAMPLE_POLICY, Settings, load_policy
from bot.domain.notifications import OutboxMessage
from sandbox import BotApiSimulator, RateLimits
from storage import outbox
from storage.db import Database, to_db
from storage.directory import Profile, upsert_user

DRAIN_TARGET = 1.15  # x the theoretical minimum
LANGUAGES = ("zh_Hans", "zh_Hant", "en")
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "delivery.json"

# Plain notices that render without a case in the database (the bench has none): what
# citizens and unit groups receive most, in their own words.
PRIVATE_NOTICES = (
    ("citizen.case_signed", {"unit": "ZJJ"}),
    ("citizen.interim_answer", {"unit": "ZJJ", "text": "已派人现场查看，预计周五前修复。"}),
    ("citizen.case_reopened", {}),
    ("citizen.case_closed", {"reason": "rated"}),
)
GROUP_NOTICES = (
    ("unit.reminder", {"stage": "reply", "due": "2026-12-02T09:00:00+08:00"}),
    ("unit.overdue", {"stage": "sign", "due": "2026-11-27T17:30:00+08:00"}),
    ("unit.case_rated", {"rating": "satisfied", "comment": "处理及时，谢谢。"}),
    ("unit.leader_instruction", {"text": "请于本周内办结并报告结果。"}),
)


@dataclass(frozen=True)
class Mix:
    """Who gets how many notices."""

    private_chats: int
    per_private: int
    groups: int
    per_group: int

    @property
    def total(self) -> int:
        """All notices."""
        return self.private_chats * self.per_private + self.groups * self.per_group


FULL = Mix(private_chats=200, per_private=5, groups=20, per_group=50)
QUICK = Mix(private_chats=50, per_private=5, groups=10, per_group=30)


def minimum_drain_seconds(per_chat: list[tuple[bool, int]], limits: RateLimits) -> float:
    """The shortest time the limits allow to send `per_chat` = [(is_group, messages)], one
    message per notice, starting with full buckets.

    Each bucket on its own needs (messages - burst) / rate seconds; all of them hold at once,
    so the longest is a lower bound, and a sender that keeps every bucket busy reaches it
    (the per-chat buckets are independent, and the overall one only caps their sum)."""
    total = sum(count for _, count in per_chat)
    needs = [max(0.0, (total - limits.overall_burst) / limits.overall_per_second)]
    for is_group, count in per_chat:
        if is_group:
            needs.append(max(0.0, (count - limits.group_burst) / (limits.group_per_minute / 60)))
        else:
            needs.append(max(0.0, (count - limits.private_burst) / limits.private_per_second))
    return max(needs)


@dataclass
class DrainRun:
    """One drain of the whole burst."""

    digest: bool
    notices: int
    drain_s: float
    bound_s: float
    messages: int  # messages that reached the chats
    too_many_requests: int  # 429 answers the simulator gave
    rows_sent: int
    rows_failed: int
    rows_pending: int
    by_result: dict[str, int]

    @property
    def ratio(self) -> float:
        """Drain time over the theoretical minimum."""
        return self.drain_s / self.bound_s if self.bound_s else float("inf")


def notices_for(mix: Mix, groups: list[str], users: list[int], seed: int) -> list[OutboxMessage]:
    """The burst, interleaved across chats as events would produce it; numbered so the
    order each chat reads can be checked."""
    messages: list[OutboxMessage] = []
    for u, user in enumerate(users):
        for k in range(mix.per_private):
            key, params = PRIVATE_NOTICES[(u + k) % len(PRIVATE_NOTICES)]
            number = f"CZ2026-{u:03d}{k:03d}"
            messages.append(OutboxMessage("user", str(user), key, {"number": number, **params}))
    for g, unit in enumerate(groups):
        for k in range(mix.per_group):
            key, params = GROUP_NOTICES[(g + k) % len(GROUP_NOTICES)]
            number = f"CZ2026-9{g:02d}{k:03d}"
            messages.append(OutboxMessage("unit", unit, key, {"number": number, **params}))
    # Shuffle, then restore each chat's own order: interleaved, yet in order per chat.
    rng = random.Random(seed)
    slots = list(range(len(messages)))
    rng.shuffle(slots)
    by_chat: dict[tuple[str, str | None], list[OutboxMessage]] = {}
    for message in messages:
        by_chat.setdefault((message.recipient_kind, message.recipient_ref), []).append(message)
    order = sorted(range(len(messages)), key=lambda i: slots[i])
    cursor: Counter[tuple[str, str | None]] = Counter()
    result: list[OutboxMessage] = []
    for i in order:
        chat = (messages[i].recipient_kind, messages[i].recipient_ref)
        result.append(by_chat[chat][cursor[chat]])
        cursor[chat] += 1
    return result


async def drain(mix: Mix, workdir: Path, *, digest: bool, seed: int = 7) -> DrainRun:
    """Enqueue the burst, start the sender, and time it until no row is pending."""
    policy = load_policy(EXAMPLE_POLICY)
    path = workdir / f"delivery-{'digest' if digest else 'single'}.db"
    limits = RateLimits()
    async with BotApiSimulator(seed=seed, rate_limits=limits) as sim:
        settings = Settings(token=sim.token, api_base_url=sim.base_url,
                            file_base_url=sim.file_base_url, database=path)
        db = Database(path)
        await db.connect()
        clock = Clock()  # real time: retries after a 429 must come due
        app = bot_app.create_application(settings, policy=policy, clock=clock, db=db)
        sender = app.bot_data.sender
        assert sender is not None and app.bot_data.services is not None
        sender.digest = digest
        svc = app.bot_data.services
        await services.setup_policy_units(svc)
        units = sorted(policy.units)[: mix.groups]
        if len(units) < mix.groups:
            raise SystemExit(f"the policy has only {len(units)} units")
        group_chats = []
        for unit in units:
            group = sim.group(f"{policy.units[unit].name}办件群")
            await services.bind_chat(svc, None, group.id, "unit", unit_code=unit, system=True)
            group_chats.append(group)
        people = [sim.user(f"市民{i}", started=True) for i in range(mix.private_chats)]
        now_db = to_db(clock.now()) or 0
        async with db.unit_of_work() as uow:
            for i, person in enumerate(people):
                profile = Profile(person.id, first_name=f"市民{i}",
                                  language=LANGUAGES[i % len(LANGUAGES)])
                await upsert_user(uow, profile, now_db)
            await uow.commit()
        burst = notices_for(mix, units, [p.id for p in people], seed)
        per_chat = [(False, mix.per_private)] * mix.private_chats + [
            (True, mix.per_group)
        ] * mix.groups
        bound = minimum_drain_seconds(per_chat, limits)
        async with db.unit_of_work() as uow:
            await outbox.enqueue(uow, burst, now_db)
            await uow.commit()
        await app.initialize()
        sim.stats.reset()
        stop = asyncio.Event()
        began = time.perf_counter()
        task = asyncio.create_task(sender.run(stop))
        try:
            while True:
                row = await db.fetch_one("SELECT count(*) FROM outbox WHERE state = 'pending'")
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - began
        finally:
            stop.set()
            await task
        await sim.idle()
        states = dict(await db.fetch_all("SELECT state, count(*) FROM outbox GROUP BY state"))
        chats = [*group_chats, *people]
        messages = sum(len(sim.sent(chat)) for chat in chats)
        check_order(sim, group_chats, people)
        result = DrainRun(
            digest=digest,
            notices=mix.total,
            drain_s=elapsed,
            bound_s=bound,
            messages=messages,
            too_many_requests=sim.stats.too_many_requests,
            rows_sent=int(states.get("sent", 0)),
            rows_failed=int(states.get("failed", 0)),
            rows_pending=int(states.get("pending", 0)),
            by_result=dict(sender.results),
        )
        await app.shutdown()
        await db.close()
    return result


def check_order(sim: BotApiSimulator, groups: list[Any], people: list[Any]) -> None:
    """Every chat must read its notices in the order they were written (numbers rise)."""
    import re

    for chat in [*groups, *people]:
        numbers = [n for m in sim.sent(chat) for n in re.findall(r"CZ2026-\d+", m.text or "")]
        if numbers != sorted(numbers):
            raise SystemExit(f"out of order in {chat!r}: {numbers[:10]}…")


def figures_of(single: DrainRun, digest: DrainRun) -> list[dict[str, Any]]:
    """The rows the runner's table shows (left: each notice sent alone; right: digest)."""
    section = "delivery"

    def row(name: str, left: float | None, right: float | None, *, target: str = "",
            ok: bool | None = None, digits: int = 1, ratio: float | None = None,
            labels: tuple[str, str] = ("single", "digest")) -> dict[str, Any]:
        if ratio is None and left and right is not None:
            ratio = right / left
        return {"section": section, "name": name, "left": left, "right": right,
                "left_label": labels[0], "right_label": labels[1], "ratio": ratio,
                "target": target, "ok": ok, "digits": digits}

    return [
        row(f"drain {single.notices:,} notices vs theoretical minimum (s)", single.bound_s,
            single.drain_s, labels=("minimum", "drain"), target=f"<= {DRAIN_TARGET}x",
            ok=single.ratio <= DRAIN_TARGET, digits=1),
        row("429 answers (single, digest)", single.too_many_requests,
            digest.too_many_requests, target="0 and 0",
            ok=single.too_many_requests == 0 and digest.too_many_requests == 0, digits=0,
            ratio=None),
        row("drain time (s)", single.drain_s, digest.drain_s, digits=1),
        row("messages sent", single.messages, digest.messages, digits=0),
        row("rows delivered (all sent, none failed)", single.rows_sent, digest.rows_sent,
            target=f"{single.notices:,} each",
            ok=single.rows_sent == digest.rows_sent == single.notices, digits=0),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK.total} notices, {QUICK.private_chats} private chats and"
                             f" {QUICK.groups} groups instead of {FULL.total}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                        help=f"write the figures as JSON (default {DEFAULT_JSON})")
    parser.add_argument("--only", choices=("single", "digest"),
                        help="run one of the two drains (for a look at one)")
    return parser.parse_args(argv)


def describe(run: DrainRun) -> str:
    """One line per drain."""
    return (f"  {'digest' if run.digest else 'single'}: {run.notices:,} notices in "
            f"{run.drain_s:.1f} s (minimum {run.bound_s:.1f} s, {run.ratio:.2f}x), "
            f"{run.messages:,} messages, {run.too_many_requests} x 429, rows sent "
            f"{run.rows_sent:,} failed {run.rows_failed} pending {run.rows_pending}; "
            f"sender results {run.by_result}")


def main(argv: list[str] | None = None) -> int:
    """Run both drains, print them, write the JSON."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    mix = QUICK if args.quick else FULL
    print(f"Delivery at the limits: {mix.total:,} notices — {mix.private_chats} private chats x "
          f"{mix.per_private}, {mix.groups} unit groups x {mix.per_group}", flush=True)
    runs: dict[str, DrainRun] = {}
    with tempfile.TemporaryDirectory(prefix="wz-delivery-") as tmp:
        for name in ("single", "digest"):
            if args.only and args.only != name:
                continue
            runs[name] = asyncio.run(drain(mix, Path(tmp), digest=name == "digest"))
            print(describe(runs[name]), flush=True)
    figures = figures_of(runs["single"], runs["digest"]) if len(runs) == 2 else []
    payload = {"figures": figures,
               "data": {"mix": asdict(mix), "limits": asdict(RateLimits()),
                        "runs": {k: {**asdict(v), "ratio": v.ratio} for k, v in runs.items()}}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

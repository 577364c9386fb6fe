"""Restart and clock (issue 7, item 7): the bot is stopped across sign, reply and resolve
deadlines, escalations and callback windows; on start-up it catches up with exactly one
notice per step however many working mornings it missed. A clock jumping backwards (an
NTP correction) and forwards again, with restarts between, re-sends nothing.

Cases (n of each; CI 3, `--full` 25), all assigned Monday 2026-11-30 10:00:
  A  routine, ZJJ, never signed          B  routine, CGJ, signed at once
  C  special, ZLSGS, answered at once    D  special, LYQ, answered Wednesday 14:00
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from bot import services
from sandbox import BotApiSimulator
from tests.conftest import PEOPLE, file_one, local
from tests.e2e.conftest import Harness
from tests.reliability.conftest import (
    LIAISON_IDS,
    account,
    bind_city,
    drain,
    make_city,
    query,
    start_bot,
    stop_bot,
)

MONDAY = local(2026, 11, 30, 10, 0)  # the clock fixture's start: every case assigned now
WEDNESDAY = local(2026, 12, 2, 14, 0)
NEXT_TUESDAY = local(2026, 12, 8, 10, 30)
WEDNESDAY_AFTER = local(2026, 12, 9, 9, 30)
NTP_BACK = local(2026, 12, 1, 9, 30)  # a week back: before A's sign deadline again

Step = tuple[str, str | None]  # (event kind, stage(s) or escalation level)
STEP_KINDS = ("ReminderSent", "OverdueNoticeSent", "CaseEscalated", "CallbackReminded",
              "CaseClosed")


async def arrange(h: Harness, group: str, unit: str, track: str, count: int) -> list[str]:
    """`count` cases assigned to `unit` now; B is signed, C and D answered."""
    svc = h.svc
    numbers = []
    for n in range(count):
        citizen = h.sim.user(f"市民{group}{n}", started=True)
        number = await file_one(
            svc, citizen.id, text=f"{group}{n}：小区门前道路塌陷一个大坑，车辆无法通行，请修复。")
        await services.assign_case(svc, PEOPLE.dispatcher, number, unit, track=track)
        if group in "BCD":
            await services.sign_assignment(svc, LIAISON_IDS[unit], number, unit_code=unit)
        if group in "CD":
            await services.post_answer(svc, LIAISON_IDS[unit], number, "final",
                                       "已修复路面，恢复通行。", unit_code=unit)
        numbers.append(number)
    return numbers


class Ledger:
    """What the bot did between two looks: new steps per case, rows, messages."""

    def __init__(self, h: Harness, sim: BotApiSimulator) -> None:
        self.h, self.sim = h, sim
        self.event_id = 0
        self.row_id = 0
        self.seq = 0

    def take(self) -> tuple[dict[str, Counter[Step]], int, int]:
        """(new steps per case number, messages the new non-card outbox rows went out as,
        new messages in the simulator) since the last look."""
        path = self.h.path
        steps: dict[str, Counter[Step]] = {}
        kinds = ", ".join(f"'{k}'" for k in STEP_KINDS)
        for event_id, number, kind, details in query(
            path, "SELECT e.id, c.number, e.kind, e.details FROM events e"
                  f" JOIN cases c ON c.id = e.case_id WHERE e.id > ? AND e.kind IN ({kinds})"
                  " ORDER BY e.id", self.event_id):
            d = json.loads(details)
            # An overdue notice names every missed deadline of its assignment: "sign+reply".
            stages = "+".join([d["stage"], *(m["stage"] for m in d.get("more", ()))]
                              ) if "stage" in d else None
            steps.setdefault(number, Counter())[(kind, d.get("level") or stages)] += 1
            self.event_id = max(self.event_id, event_id)
        last_event = query(path, "SELECT coalesce(max(id), 0) FROM events")[0][0]
        self.event_id = max(self.event_id, last_event)
        # A digest carries several rows to a group in one message: count the messages.
        # A report is one row sent as two messages (the chart, then the XLSX): a restart
        # across a report's time sends the report missed while the bot was down.
        rows = query(path, "SELECT count(DISTINCT chat_id || ':' || message_id)"
                           " + count(*) FILTER (WHERE message_key = 'report') FROM outbox"
                           " WHERE id > ? AND card_key IS NULL", self.row_id)[0]
        self.row_id = query(path, "SELECT coalesce(max(id), 0) FROM outbox")[0][0]
        new_messages = sum(1 for chat in self.sim.chats() for m in chat.sent_log
                           if m.seq > self.seq)
        self.seq = self.sim.mark()
        return steps, int(rows[0]), new_messages


async def restart_at(h: Harness, moment: datetime) -> None:
    """Stop the bot, let the clock stand at `moment` while it is down, start it again."""
    await stop_bot(h)
    h.clock.set(moment)
    await start_bot(h)


def expect(groups: dict[str, list[str]], **wanted: list[Step]) -> dict[str, Counter[Step]]:
    """The steps each case of a group must have taken: exactly these, once each."""
    return {number: Counter(wanted[group]) for group, numbers in groups.items()
            if group in wanted for number in numbers}


async def test_downtime_across_deadlines_catches_up_once_and_clock_jumps_resend_nothing(
    clock_harness: Harness, full_run: bool
):
    h, sim = clock_harness, clock_harness.sim
    count = 25 if full_run else 3
    city = make_city(sim)
    await bind_city(city, h.svc)
    assert h.clock.now() == MONDAY
    groups = {"A": await arrange(h, "A", "ZJJ", "routine", count),
              "B": await arrange(h, "B", "CGJ", "routine", count),
              "C": await arrange(h, "C", "ZLSGS", "special", count)}
    await drain(h)
    ledger = Ledger(h, sim)
    ledger.take()

    # Down from Monday to Wednesday afternoon: A's sign deadline passed (Tuesday 10:00),
    # everyone's reply reminder came (at 3/4 of the window), C's callback reminder too.
    await restart_at(h, WEDNESDAY)
    steps, rows, messages = ledger.take()
    assert steps == expect(groups, A=[("OverdueNoticeSent", "sign"), ("ReminderSent", "reply")],
                           B=[("ReminderSent", "reply")], C=[("CallbackReminded", None)])
    caught_up = sum(sum(c.values()) for c in steps.values())
    assert rows == messages, (rows, messages)  # each notice sent once

    groups["D"] = await arrange(h, "D", "LYQ", "special", count)
    await drain(h)
    ledger.take()

    # Down for four working mornings (Thu, Fri, Mon, Tue): one overdue notice naming the
    # open stages, not four; both escalations of A, supervision for B; every window closed.
    await restart_at(h, NEXT_TUESDAY)
    steps, rows, messages = ledger.take()
    assert steps == expect(
        groups,
        A=[("OverdueNoticeSent", "sign+reply"),
           ("CaseEscalated", "supervision"), ("CaseEscalated", "leaders"),
           ("ReminderSent", "resolve")],
        B=[("OverdueNoticeSent", "reply"), ("CaseEscalated", "supervision"),
           ("ReminderSent", "resolve")],
        C=[("CaseClosed", None)], D=[("CaseClosed", None)])
    caught_up += sum(sum(c.values()) for c in steps.values())
    assert rows == messages, (rows, messages)
    closed = query(h.path, "SELECT count(*) FROM cases WHERE close_reason = 'not_rated'")
    assert closed[0][0] == 2 * count

    # The same moment again, an NTP correction a week back, and forward again: nothing.
    for moment in (NEXT_TUESDAY, NTP_BACK, NEXT_TUESDAY.replace(hour=11)):
        await restart_at(h, moment)
        assert ledger.take() == ({}, 0, 0), f"re-sent after restarting at {moment}"

    # The next working morning brings the next overdue notices: one per assignment.
    await restart_at(h, WEDNESDAY_AFTER)
    steps, rows, messages = ledger.take()
    assert steps == expect(groups, A=[("OverdueNoticeSent", "sign+reply")],
                           B=[("OverdueNoticeSent", "reply")])
    assert rows == messages

    deliveries = account(sim, h.path, [*sim.users(), *city.group_chats()])
    assert deliveries.undelivered == [] and deliveries.missing == []
    assert deliveries.duplicates == []
    print(f"\nrestart/clock suite: {4 * count} cases, 7 restarts (1 clock jump back), "
          f"{caught_up} steps caught up on start-up, 0 re-sent, 0 duplicates, 0 lost")

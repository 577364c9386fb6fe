"""Chasing deadlines (DESIGN §4) and the satisfaction callback (§5) against a real SQLite file.

The FrozenClock is moved by hand and `services.chase_due` / `services.sweep_callbacks` are
called as the scheduler would call them, several times at the same moment, so every test
also proves that no step fires twice.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta

from bot import services
from bot.clock import FrozenClock
from storage.db import Database, from_db
from tests.conftest import PEOPLE, file_one, local

REMINDER, OVERDUE, ESCALATED = "ReminderSent", "OverdueNoticeSent", "CaseEscalated"
CHASE_KEYS = (
    "unit.reminder",
    "unit.overdue",
    "unit.escalated",
    "supervision.escalation",
    "leaders.escalation",
)

Step = tuple[str, str]  # (event kind, stage — or the level of an escalation)


async def chase_log(db: Database, number: str) -> list[tuple[str, str, datetime]]:
    """The chasing events of a case, oldest first: (kind, stage(s) or level, when)."""
    rows = await db.fetch_all(
        "SELECT e.kind, e.details, e.at FROM events e JOIN cases c ON c.id = e.case_id"
        " WHERE c.number = ? AND e.kind IN (?, ?, ?) ORDER BY e.id",
        (number, REMINDER, OVERDUE, ESCALATED),
    )
    log = []
    for kind, details, at in rows:
        d = json.loads(details)
        moment = from_db(at)
        assert moment is not None
        # One overdue notice names every deadline the assignment has missed: "sign+reply".
        stages = "+".join([d["stage"], *(m["stage"] for m in d.get("more", ()))])
        log.append((kind, d["level"] if kind == ESCALATED else stages, moment))
    return log


async def event_details(db: Database, number: str, kind: str) -> list[dict]:
    rows = await db.fetch_all(
        "SELECT e.details FROM events e JOIN cases c ON c.id = e.case_id"
        " WHERE c.number = ? AND e.kind = ? ORDER BY e.id",
        (number, kind),
    )
    return [json.loads(r[0]) for r in rows]


async def events_of(db: Database, number: str) -> list[str]:
    rows = await db.fetch_all(
        "SELECT e.kind FROM events e JOIN cases c ON c.id = e.case_id WHERE c.number = ?"
        " ORDER BY e.id",
        (number,),
    )
    return [r[0] for r in rows]


async def outbox_of(
    db: Database, number: str, keys: tuple[str, ...] | None = None
) -> list[tuple[str, str | None, str]]:
    """(recipient kind, recipient ref, message key) of a case's outbox rows, oldest first."""
    rows = await db.fetch_all(
        "SELECT o.recipient_kind, o.recipient_ref, o.message_key FROM outbox o"
        " JOIN cases c ON c.id = o.case_id WHERE c.number = ? ORDER BY o.id",
        (number,),
    )
    return [(r[0], r[1], r[2]) for r in rows if keys is None or r[2] in keys]


async def outbox_params(db: Database, number: str, key: str) -> list[dict]:
    rows = await db.fetch_all(
        "SELECT o.params FROM outbox o JOIN cases c ON c.id = o.case_id"
        " WHERE c.number = ? AND o.message_key = ? ORDER BY o.id",
        (number, key),
    )
    return [json.loads(r[0]) for r in rows]


async def assignment_row(db: Database, number: str) -> dict:
    rows = await db.fetch_all(
        "SELECT a.sign_due, a.reply_due, a.resolve_due, a.chase_fired, a.next_check_at"
        " FROM assignments a JOIN cases c ON c.id = a.case_id WHERE c.number = ?",
        (number,),
    )
    assert len(rows) == 1
    sign, reply, resolve, fired, check = rows[0]
    return {
        "sign_due": from_db(sign),
        "reply_due": from_db(reply),
        "resolve_due": from_db(resolve),
        "chase_fired": json.loads(fired),
        "next_check_at": from_db(check),
    }


async def assigned(svc: services.Services, track: str = "routine", citizen: int = PEOPLE.citizen):
    number = await file_one(svc, citizen)
    await services.assign_case(svc, PEOPLE.dispatcher, number, "ZJJ", track=track)
    return number


async def sweep(svc: services.Services, clock: FrozenClock, moment: datetime, times: int = 3):
    """Run the deadline sweep `times` times at `moment`; only the first may take steps."""
    clock.set(moment)
    taken = [await services.chase_due(svc) for _ in range(times)]
    assert taken[1:] == [0] * (times - 1), (moment, taken)
    return taken[0]


async def new_steps(
    svc: services.Services, db: Database, clock: FrozenClock, number: str, moment: datetime
) -> list[Step]:
    """The chasing steps one sweep at `moment` took (each stamped with `moment`)."""
    before = len(await chase_log(db, number))
    taken = await sweep(svc, clock, moment)
    added = (await chase_log(db, number))[before:]
    assert all(at == moment for _, _, at in added), added
    assert taken == len(added)
    return sorted((kind, what) for kind, what, _ in added)


# -- 1. a routine case across the Mid-Autumn and National Day holidays (2026) --------------


async def test_routine_case_is_chased_across_mid_autumn_and_national_day(svc, db, clock):
    """Deadlines inside working hours (assigned Wednesday 09-23 10:00): no notice on a day
    off, the adjusted working Saturday 10-10 counts, each step exactly once."""
    calendar = svc.policy.calendar
    assigned_at = local(2026, 9, 23, 10, 0)
    clock.set(assigned_at)
    number = await assigned(svc)
    row = await assignment_row(db, number)
    # Working days: 09-24, (Mid-Autumn 09-25…27 off), 09-28, 09-29, 09-30, (National Day
    # 10-01…07 off), 10-08, 10-09, 10-10 (Saturday, adjusted working day).
    assert row["sign_due"] == local(2026, 9, 24, 10, 0)
    assert row["reply_due"] == local(2026, 9, 29, 10, 0)
    assert row["resolve_due"] == local(2026, 10, 10, 10, 0)
    sign_due = row["sign_due"]
    assert calendar.add_working_days(sign_due, 2) == local(2026, 9, 29, 10, 0)
    assert calendar.add_working_days(sign_due, 5) == local(2026, 10, 9, 10, 0)
    # 3/4 of 8.5 h = 6 h 22 min 30 s; of 25.5 h = 19 h 7 min 30 s; of 59.5 h = 44 h 37 min 30 s.
    assert calendar.add_working_days(assigned_at, 0.75) == local(2026, 9, 23, 16, 22, 30)
    assert calendar.add_working_days(assigned_at, 3 * 0.75) == local(2026, 9, 28, 12, 7, 30)
    assert calendar.add_working_days(assigned_at, 7 * 0.75) == local(2026, 10, 8, 12, 7, 30)

    both = [(OVERDUE, "sign+reply")]  # one notice a morning, naming both deadlines
    timeline: list[tuple[datetime, list[Step]]] = [
        (assigned_at, []),
        (local(2026, 9, 23, 16, 22, 29), []),
        (local(2026, 9, 23, 16, 22, 30), [(REMINDER, "sign")]),
        (local(2026, 9, 24, 9, 59, 59), []),
        (local(2026, 9, 24, 10, 0), [(OVERDUE, "sign")]),
        (local(2026, 9, 24, 17, 30), []),
        *((local(2026, 9, day, 9, 0), []) for day in (25, 26, 27)),  # Mid-Autumn
        (local(2026, 9, 28, 9, 0), [(OVERDUE, "sign")]),
        (local(2026, 9, 28, 12, 7, 30), [(REMINDER, "reply")]),
        (local(2026, 9, 29, 9, 0), [(OVERDUE, "sign")]),
        (local(2026, 9, 29, 9, 59, 59), []),
        (local(2026, 9, 29, 10, 0), [(ESCALATED, "supervision"), (OVERDUE, "reply")]),
        (local(2026, 9, 30, 9, 0), both),
        *((local(2026, 10, day, 9, 0), []) for day in range(1, 8)),  # National Day
        (local(2026, 10, 8, 9, 0), both),
        (local(2026, 10, 8, 12, 7, 30), [(REMINDER, "resolve")]),
        (local(2026, 10, 9, 9, 0), both),
        (local(2026, 10, 9, 10, 0), [(ESCALATED, "leaders")]),
        (local(2026, 10, 10, 9, 0), both),  # the adjusted working Saturday
        (local(2026, 10, 10, 10, 0), [(OVERDUE, "resolve")]),
        (local(2026, 10, 11, 9, 0), []),  # Sunday
        (local(2026, 10, 12, 9, 0), [(OVERDUE, "sign+reply+resolve")]),
    ]
    for moment, expected in timeline:
        assert await new_steps(svc, db, clock, number, moment) == sorted(expected), moment

    log = await chase_log(db, number)
    counts: dict[Step, int] = {}
    for kind, what, _ in log:
        for each in what.split("+"):  # how often each deadline was named
            counts[(kind, each)] = counts.get((kind, each), 0) + 1
    assert counts == {
        (REMINDER, "sign"): 1,
        (REMINDER, "reply"): 1,
        (REMINDER, "resolve"): 1,
        (OVERDUE, "sign"): 8,  # 09-24, 09-28, 09-29, 09-30, 10-08, 10-09, 10-10, 10-12
        (OVERDUE, "reply"): 6,  # 09-29, 09-30, 10-08, 10-09, 10-10, 10-12
        (OVERDUE, "resolve"): 2,  # 10-10, 10-12
        (ESCALATED, "supervision"): 1,
        (ESCALATED, "leaders"): 1,
    }
    # …in ten messages, not sixteen: one a morning, and one as each deadline passes.
    assert sum(1 for kind, _, _ in log if kind == OVERDUE) == 10
    off = {date(2026, 9, d) for d in (25, 26, 27)} | {date(2026, 10, d) for d in range(1, 8)}
    off.add(date(2026, 10, 11))
    notice_days = {at.astimezone(calendar.tz).date() for kind, _, at in log if kind == OVERDUE}
    assert notice_days and not notice_days & off
    # The assignment keeps each reminder and escalation key, and each stage's latest
    # notice: all that planning reads (the events keep every notice).
    fired = (await assignment_row(db, number))["chase_fired"]
    assert sorted(fired) == [
        "escalation:leaders",
        "escalation:supervision",
        "reply:overdue:2026-10-12",
        "reply:reminder",
        "resolve:overdue:2026-10-12",
        "resolve:reminder",
        "sign:overdue:2026-10-12",
        "sign:reminder",
    ]
    assert await outbox_of(db, number, ("supervision.escalation", "leaders.escalation")) == [
        ("supervision", None, "supervision.escalation"),
        ("leaders", None, "leaders.escalation"),
    ]


async def test_routine_case_assigned_on_the_mid_autumn_holiday_is_chased(svc, db, clock):
    calendar = svc.policy.calendar
    clock.set(local(2026, 9, 25, 16, 0))  # Friday, but Mid-Autumn: a day off
    number = await assigned(svc)
    row = await assignment_row(db, number)
    # The clock starts on the next working morning, Monday 09-28 09:00.
    assert row["sign_due"] == local(2026, 9, 28, 17, 30)
    assert row["reply_due"] == local(2026, 9, 30, 17, 30)
    assert row["resolve_due"] == local(2026, 10, 12, 17, 30)
    # 3/4 of an 8.5 h window is 6 h 22 min 30 s.
    assert local(2026, 9, 28, 9, 0) + timedelta(hours=8.5 * 0.75) == local(2026, 9, 28, 15, 22, 30)
    # Escalation thresholds, in working days after the missed sign deadline: 09-29, 09-30,
    # (National Day 10-01…10-07 off), 10-08, 10-09, 10-10 (adjusted working Saturday).
    sign_due = row["sign_due"]
    assert calendar.add_working_days(sign_due, 2) == local(2026, 9, 30, 17, 30)
    assert calendar.add_working_days(sign_due, 5) == local(2026, 10, 10, 17, 30)
    # Reminders of the reply (3 d) and resolve (7 d) windows, at 3/4 of each.
    assert calendar.add_working_days(local(2026, 9, 28, 9), 3 * 0.75) == local(
        2026, 9, 30, 11, 7, 30
    )
    assert calendar.add_working_days(local(2026, 9, 28, 9), 7 * 0.75) == local(
        2026, 10, 10, 11, 7, 30
    )

    both = [(OVERDUE, "sign+reply")]  # one notice a morning, naming both deadlines
    timeline: list[tuple[datetime, list[Step]]] = [
        (local(2026, 9, 25, 16, 0), []),
        (local(2026, 9, 27, 23, 0), []),
        (local(2026, 9, 28, 9, 0), []),
        (local(2026, 9, 28, 15, 22, 29), []),
        (local(2026, 9, 28, 15, 22, 30), [(REMINDER, "sign")]),
        (local(2026, 9, 28, 17, 29, 59), []),
        (local(2026, 9, 28, 17, 30), [(OVERDUE, "sign")]),
        (local(2026, 9, 28, 23, 0), []),
        (local(2026, 9, 29, 8, 59, 59), []),
        (local(2026, 9, 29, 9, 0), [(OVERDUE, "sign")]),
        (local(2026, 9, 29, 17, 30), []),
        (local(2026, 9, 30, 9, 0), [(OVERDUE, "sign")]),
        (local(2026, 9, 30, 11, 7, 29), []),
        (local(2026, 9, 30, 11, 7, 30), [(REMINDER, "reply")]),
        (local(2026, 9, 30, 17, 29, 59), []),
        (local(2026, 9, 30, 17, 30), [(ESCALATED, "supervision"), (OVERDUE, "reply")]),
        # National Day: no notice on any of the seven mornings.
        *((local(2026, 10, day, 9, 0), []) for day in range(1, 8)),
        (local(2026, 10, 7, 23, 59), []),
        (local(2026, 10, 8, 9, 0), both),
        (local(2026, 10, 9, 9, 0), both),
        (local(2026, 10, 10, 9, 0), both),  # the adjusted working Saturday
        (local(2026, 10, 10, 11, 7, 30), [(REMINDER, "resolve")]),
        (local(2026, 10, 10, 17, 29, 59), []),
        (local(2026, 10, 10, 17, 30), [(ESCALATED, "leaders")]),
        (local(2026, 10, 11, 9, 0), []),  # Sunday
        (local(2026, 10, 12, 9, 0), both),
        (local(2026, 10, 12, 17, 30), [(OVERDUE, "resolve")]),
        (local(2026, 10, 13, 9, 0), [(OVERDUE, "sign+reply+resolve")]),
    ]
    for moment, expected in timeline:
        assert await new_steps(svc, db, clock, number, moment) == sorted(expected), moment

    log = await chase_log(db, number)
    counts: dict[Step, int] = {}
    for kind, what, _ in log:
        for each in what.split("+"):  # how often each deadline was named
            counts[(kind, each)] = counts.get((kind, each), 0) + 1
    assert counts == {
        (REMINDER, "sign"): 1,
        (REMINDER, "reply"): 1,
        (REMINDER, "resolve"): 1,
        (OVERDUE, "sign"): 8,  # 09-28 17:30, 09-29, 09-30, 10-08, 10-09, 10-10, 10-12, 10-13
        (OVERDUE, "reply"): 6,  # 09-30 17:30, 10-08, 10-09, 10-10, 10-12, 10-13
        (OVERDUE, "resolve"): 2,  # 10-12 17:30, 10-13
        (ESCALATED, "supervision"): 1,
        (ESCALATED, "leaders"): 1,
    }
    sign_days = sorted(at.date().isoformat() for k, s, at in log
                       if k == OVERDUE and "sign" in s.split("+"))
    assert sign_days == [
        "2026-09-28",
        "2026-09-29",
        "2026-09-30",
        "2026-10-08",
        "2026-10-09",
        "2026-10-10",
        "2026-10-12",
        "2026-10-13",
    ]
    fired = (await assignment_row(db, number))["chase_fired"]
    assert sorted(fired) == [
        "escalation:leaders",
        "escalation:supervision",
        "reply:overdue:2026-10-13",
        "reply:reminder",
        "resolve:overdue:2026-10-13",
        "resolve:reminder",
        "sign:overdue:2026-10-13",
        "sign:reminder",
    ]

    # The escalations name the earliest missed deadline; the overdue notices say how late.
    escalations = await event_details(db, number, ESCALATED)
    assert [(e["level"], e["reason"], e["stage"]) for e in escalations] == [
        ("supervision", "overdue", "sign"),
        ("leaders", "overdue", "sign"),
    ]
    assert all(datetime.fromisoformat(e["due"]) == sign_due for e in escalations)
    notices = await event_details(db, number, OVERDUE)
    assert notices[0]["days_overdue"] == 0  # at the deadline itself
    assert [n["days_overdue"] for n in notices if n["stage"] == "sign"][3] == 2.0  # 10-08 09:00

    # The escalations reached the supervision group, then the leaders, each once.
    assert await outbox_of(db, number, ("supervision.escalation", "leaders.escalation")) == [
        ("supervision", None, "supervision.escalation"),
        ("leaders", None, "leaders.escalation"),
    ]
    row = await db.fetch_one("SELECT escalation_level FROM cases WHERE number = ?", (number,))
    assert row is not None and row[0] == "leaders"


# -- 2. the special track is chased around the clock ---------------------------------------


async def test_special_track_is_chased_at_night(svc, db, clock):
    calendar = svc.policy.calendar
    clock.set(local(2026, 12, 5, 22, 0))  # Saturday night
    number = await assigned(svc, "special")
    row = await assignment_row(db, number)
    assert row["sign_due"] == local(2026, 12, 6, 0, 0)  # 2 h of wall-clock time
    assert await new_steps(svc, db, clock, number, local(2026, 12, 5, 23, 29, 59)) == []
    # 3/4 of the two hours, at night on a day off.
    assert await new_steps(svc, db, clock, number, local(2026, 12, 5, 23, 30)) == [
        (REMINDER, "sign")
    ]
    assert await new_steps(svc, db, clock, number, local(2026, 12, 5, 23, 59, 59)) == []
    midnight = local(2026, 12, 6, 0, 1)
    assert not calendar.is_working_time(midnight)
    assert await new_steps(svc, db, clock, number, midnight) == [(OVERDUE, "sign")]
    assert await new_steps(svc, db, clock, number, local(2026, 12, 6, 8, 0)) == []
    fired = (await assignment_row(db, number))["chase_fired"]
    assert "sign:overdue:2026-12-06" in fired


async def test_special_track_repeats_its_overdue_notice_on_a_weekend_morning(svc, db, clock):
    clock.set(local(2026, 12, 4, 22, 0))  # Friday night: sign due Saturday 00:00
    number = await assigned(svc, "special")
    assert await new_steps(svc, db, clock, number, local(2026, 12, 5, 0, 1)) == [(OVERDUE, "sign")]
    assert await new_steps(svc, db, clock, number, local(2026, 12, 5, 23, 59)) == []
    # Around-the-clock tracks hear again the next morning even when it is a Sunday.
    assert await new_steps(svc, db, clock, number, local(2026, 12, 6, 8, 59)) == []
    assert await new_steps(svc, db, clock, number, local(2026, 12, 6, 9, 0)) == [(OVERDUE, "sign")]


# -- 3. two sweeps at once ------------------------------------------------------------------


async def test_two_sweeps_at_once_send_each_step_once(svc, db, clock):
    numbers = [await assigned(svc) for _ in range(4)]
    # Assigned Monday 11-30 10:00; the first sweep comes at Thursday 10:00: the sign deadline
    # (Tuesday 10:00) was missed two working days ago and the reply deadline is due now.
    clock.set(local(2026, 12, 3, 10, 0))
    taken = await asyncio.gather(services.chase_due(svc), services.chase_due(svc))
    assert sum(taken) == 2 * len(numbers)
    taken = await asyncio.gather(services.chase_due(svc), services.chase_due(svc))
    assert list(taken) == [0, 0]
    for number in numbers:
        steps = sorted((kind, what) for kind, what, _ in await chase_log(db, number))
        assert steps == [(ESCALATED, "supervision"), (OVERDUE, "sign+reply")]
        assert await outbox_of(db, number, ("supervision.escalation",)) == [
            ("supervision", None, "supervision.escalation")
        ]


# -- 4. the bot was stopped across the deadlines --------------------------------------------


async def test_after_downtime_each_due_step_fires_once_and_a_passed_reminder_is_skipped(
    svc, db, clock
):
    number = await assigned(svc)  # Monday 11-30 10:00
    row = await assignment_row(db, number)
    assert (row["sign_due"], row["reply_due"], row["resolve_due"]) == (
        local(2026, 12, 1, 10, 0),
        local(2026, 12, 3, 10, 0),
        local(2026, 12, 9, 10, 0),
    )
    # No sweep ran for a week: both escalation thresholds (sign due + 2 and + 5 working
    # days: 12-03 10:00 and 12-08 10:00) have passed, the sign and reply deadlines too, and
    # the resolve deadline is past its 3/4 reminder (12-07 12:07:30) but not yet due.
    later = local(2026, 12, 8, 11, 0)
    assert await new_steps(svc, db, clock, number, later) == sorted(
        [
            # one notice for today naming both; the sign reminder is superseded
            (OVERDUE, "sign+reply"),
            (REMINDER, "resolve"),
            (ESCALATED, "supervision"),
            (ESCALATED, "leaders"),
        ]
    )
    fired = (await assignment_row(db, number))["chase_fired"]
    assert "sign:reminder" not in fired and "reply:reminder" not in fired
    assert "sign:overdue:2026-12-08" in fired and "reply:overdue:2026-12-08" in fired
    assert await new_steps(svc, db, clock, number, local(2026, 12, 8, 17, 0)) == []
    # The next notices on the next working morning, nothing else.
    assert await new_steps(svc, db, clock, number, local(2026, 12, 9, 9, 0)) == [
        (OVERDUE, "sign+reply"),
    ]
    assert await outbox_of(db, number, ("supervision.escalation", "leaders.escalation")) == [
        ("supervision", None, "supervision.escalation"),
        ("leaders", None, "leaders.escalation"),
    ]


# -- 5. the clock jumps backwards -----------------------------------------------------------


async def test_a_clock_jump_backwards_sends_nothing_again(svc, db, clock):
    number = await assigned(svc)  # sign due Tuesday 12-01 10:00, reminder Monday 16:22:30
    assert await new_steps(svc, db, clock, number, local(2026, 11, 30, 16, 22, 30)) == [
        (REMINDER, "sign")
    ]
    assert await new_steps(svc, db, clock, number, local(2026, 12, 1, 10, 0)) == [(OVERDUE, "sign")]
    for moment in (
        local(2026, 12, 1, 9, 0),  # an hour back: before the deadline again
        local(2026, 11, 30, 17, 0),  # back before the reminder's day ended
        local(2026, 12, 1, 10, 0),  # forwards again to the same moments
        local(2026, 12, 1, 11, 0),
    ):
        clock.set(moment)
        # Make the sweep look at the assignment whatever its next check says: the steps'
        # keys, not the index, must keep them from firing again.
        async with db.unit_of_work() as uow:
            await uow.execute("UPDATE assignments SET next_check_at = 0")
            await uow.commit()
        assert await services.chase_due(svc) == 0, moment
    assert len(await chase_log(db, number)) == 2
    assert await new_steps(svc, db, clock, number, local(2026, 12, 2, 9, 0)) == [(OVERDUE, "sign")]


# -- 6. an open question to the citizen stops the resolve clock -----------------------------


async def test_an_open_question_stops_chasing_the_resolve_deadline(svc, db, clock):
    number = await assigned(svc)  # Monday 11-30 10:00; resolve due 12-09 10:00
    await services.sign_assignment(svc, PEOPLE.housing, number)
    await services.post_answer(svc, PEOPLE.housing, number, "interim", "已受理，正在核实。")
    # Only the resolve stage is open now; its reminder would come at 12-07 12:07:30.
    clock.set(local(2026, 12, 7, 10, 0))
    await services.ask_citizen(svc, PEOPLE.housing, number, "请提供电梯编号。")
    for moment in (
        local(2026, 12, 7, 12, 7, 30),
        local(2026, 12, 9, 10, 0),  # the original resolve deadline
        local(2026, 12, 10, 9, 0),
    ):
        assert await new_steps(svc, db, clock, number, moment) == [], moment
    # The citizen answers after three working days: the deadline moves by them.
    clock.set(local(2026, 12, 10, 10, 0))
    await services.answer_question(svc, PEOPLE.citizen, number, "编号是 3 号梯。")
    row = await assignment_row(db, number)
    assert row["resolve_due"] == local(2026, 12, 14, 10, 0)
    # The clock runs again; the moved window is past its 3/4 point (12-09 14:15).
    assert await new_steps(svc, db, clock, number, local(2026, 12, 10, 10, 0)) == [
        (REMINDER, "resolve")
    ]
    reminder = (await event_details(db, number, REMINDER))[-1]
    assert datetime.fromisoformat(reminder["due"]) == local(2026, 12, 14, 10, 0)
    assert await new_steps(svc, db, clock, number, local(2026, 12, 14, 9, 59, 59)) == []
    assert await new_steps(svc, db, clock, number, local(2026, 12, 14, 10, 0)) == [
        (OVERDUE, "resolve")
    ]


# -- 7. the satisfaction callback sweep -----------------------------------------------------


async def published(svc: services.Services) -> str:
    number = await assigned(svc)
    await services.sign_assignment(svc, PEOPLE.housing, number)
    await services.post_answer(svc, PEOPLE.housing, number, "final", "电梯已修复，恢复运行。")
    await services.publish_answer(svc, PEOPLE.dispatcher, number)
    return number


async def test_callback_sweep_reminds_once_then_closes_as_not_rated(svc, db, clock):
    start = clock.now()
    silent, late, early = [await published(svc) for _ in range(3)]
    clock.set(start + timedelta(hours=12))
    await services.rate_case(svc, PEOPLE.citizen, early, "satisfied")

    clock.set(start + timedelta(days=1) - timedelta(seconds=1))
    assert await services.sweep_callbacks(svc) == (0, 0)
    clock.set(start + timedelta(days=1))
    assert await services.sweep_callbacks(svc) == (2, 0)
    assert await services.sweep_callbacks(svc) == (0, 0)
    clock.set(start + timedelta(days=2))
    assert await services.sweep_callbacks(svc) == (0, 0)
    await services.rate_case(svc, PEOPLE.citizen, late, "basically_satisfied")
    clock.set(start + timedelta(days=3) - timedelta(seconds=1))
    assert await services.sweep_callbacks(svc) == (0, 0)
    clock.set(start + timedelta(days=3))
    assert await services.sweep_callbacks(svc) == (0, 1)
    assert await services.sweep_callbacks(svc) == (0, 0)

    async def outcome(number: str) -> tuple[str, str, list[str]]:
        row = await db.fetch_one(
            "SELECT state, close_reason FROM cases WHERE number = ?", (number,)
        )
        ratings = await db.fetch_all(
            "SELECT r.rating FROM ratings r JOIN cases c ON c.id = r.case_id"
            " WHERE c.number = ? ORDER BY r.id",
            (number,),
        )
        assert row is not None
        return row[0], row[1], [r[0] for r in ratings]

    assert await outcome(silent) == ("closed", "not_rated", ["not_rated"])
    assert await outcome(late) == ("closed", "rated", ["basically_satisfied"])
    assert await outcome(early) == ("closed", "rated", ["satisfied"])
    citizen = str(PEOPLE.citizen)
    keys = ("citizen.rating_reminder", "citizen.case_closed")
    assert await outbox_of(db, silent, keys) == [
        ("user", citizen, "citizen.rating_reminder"),
        ("user", citizen, "citizen.case_closed"),
    ]
    assert await outbox_of(db, late, keys) == [
        ("user", citizen, "citizen.rating_reminder"),
        ("user", citizen, "citizen.case_closed"),
    ]
    assert await outbox_of(db, early, keys) == [("user", citizen, "citizen.case_closed")]
    assert (await events_of(db, silent)).count("CallbackReminded") == 1
    assert "CallbackReminded" not in await events_of(db, early)
    closed = await event_details(db, silent, "CaseClosed")
    assert [c["reason"] for c in closed] == ["not_rated"]


# -- 8. who hears about chasing ---------------------------------------------------------------


async def test_reminders_and_overdue_notices_go_to_the_unit_and_escalations_to_the_groups(
    svc, db, clock
):
    number = await assigned(svc)  # Monday 11-30 10:00
    await sweep(svc, clock, local(2026, 11, 30, 16, 22, 30))  # sign reminder
    await sweep(svc, clock, local(2026, 12, 1, 10, 0))  # sign overdue
    await sweep(svc, clock, local(2026, 12, 3, 10, 0))  # escalation, reply overdue
    await sweep(svc, clock, local(2026, 12, 8, 10, 0))  # leaders, resolve reminder, …
    log = await chase_log(db, number)
    reminders = sum(1 for kind, _, _ in log if kind == REMINDER)
    notices = sum(1 for kind, _, _ in log if kind == OVERDUE)
    assert (reminders, notices) == (2, 3)  # 12-03 and 12-08: one notice naming both
    rows = await outbox_of(db, number, ("unit.reminder", "unit.overdue"))
    assert rows.count(("unit", "ZJJ", "unit.reminder")) == reminders
    assert rows.count(("unit", "ZJJ", "unit.overdue")) == notices
    assert len(rows) == reminders + notices
    # The renderer needs each missed stage and its deadline, the earliest first.
    sign_due, reply_due = local(2026, 12, 1, 10, 0), local(2026, 12, 3, 10, 0)
    named = [
        [(p["stage"], datetime.fromisoformat(p["due"]), p["days"]),
         *((m["stage"], datetime.fromisoformat(m["due"]), m["days"]) for m in p.get("more", ()))]
        for p in await outbox_params(db, number, "unit.overdue")
    ]
    assert named == [
        [("sign", sign_due, 0.0)],
        [("sign", sign_due, 2.0), ("reply", reply_due, 0.0)],
        [("sign", sign_due, 5.0), ("reply", reply_due, 3.0)],
    ]
    assert all(p["number"] == number for p in await outbox_params(db, number, "unit.overdue"))
    escalations = await outbox_of(db, number, ("supervision.escalation", "leaders.escalation"))
    assert escalations == [
        ("supervision", None, "supervision.escalation"),
        ("leaders", None, "leaders.escalation"),
    ]


async def test_an_overdue_notice_is_one_message_without_a_card_edit(svc, db, clock):
    """The unit's card shows nothing a notice changes: no edit of it each morning."""
    number = await assigned(svc)
    await sweep(svc, clock, local(2026, 12, 1, 10, 0))  # sign overdue
    await sweep(svc, clock, local(2026, 12, 2, 9, 0))  # …again the next morning
    notices = await db.fetch_all(
        "SELECT o.message_key FROM outbox o JOIN events e ON e.id = o.event_id"
        " WHERE e.kind = 'OverdueNoticeSent' AND o.case_id ="
        " (SELECT id FROM cases WHERE number = ?)",
        (number,),
    )
    assert [row[0] for row in notices] == ["unit.overdue", "unit.overdue"]


async def test_an_overdue_escalation_carries_what_the_letter_needs(svc, db, clock):
    number = await assigned(svc)
    await sweep(svc, clock, local(2026, 12, 3, 10, 0))
    [params] = await outbox_params(db, number, "supervision.escalation")
    assert params["reason"] == "overdue"
    assert params["unit"] == "ZJJ"
    assert params["stage"] == "sign"
    assert datetime.fromisoformat(params["due"]) == local(2026, 12, 1, 10, 0)


async def test_the_unit_is_told_its_overdue_case_was_escalated(svc, db, clock):
    number = await assigned(svc)
    await sweep(svc, clock, local(2026, 12, 3, 10, 0))
    await sweep(svc, clock, local(2026, 12, 8, 10, 0))
    assert await outbox_of(db, number, ("unit.escalated",)) == [
        ("unit", "ZJJ", "unit.escalated"),
        ("unit", "ZJJ", "unit.escalated"),
    ]
    levels = [p.get("level") for p in await outbox_params(db, number, "unit.escalated")]
    assert levels == ["supervision", "leaders"]


async def test_the_desk_is_warned_once_a_day_from_1_december_about_next_years_calendar(
    svc, db, clock
):
    clock.set(local(2026, 11, 30, 9, 0))
    assert not await services.warn_if_calendar_missing(svc)
    clock.set(local(2026, 12, 1, 9, 0))
    assert await services.warn_if_calendar_missing(svc)
    assert not await services.warn_if_calendar_missing(svc)  # once a day
    clock.set(local(2026, 12, 2, 9, 0))
    assert await services.warn_if_calendar_missing(svc)
    rows = await db.fetch_all(
        "SELECT params FROM outbox WHERE message_key = 'desk.calendar_missing'"
    )
    assert [r[0] for r in rows] == ['{"year": 2027}', '{"year": 2027}']


# -- 9. the lean sweep writes what the whole case would cause --------------------------------


async def test_each_step_is_one_event_with_the_messages_the_whole_case_would_cause(
    svc, db, clock
):
    """The sweep reads and writes only a few columns; its outbox rows must still be exactly
    what `messages_for` gives for the loaded case, and every step one event."""
    from bot.domain.notifications import messages_for
    from storage.cases import load_case, load_events

    routine = await assigned(svc)
    special = await assigned(svc, "special")
    coordinated = await file_one(svc, PEOPLE.citizen)
    await services.assign_case(
        svc, PEOPLE.dispatcher, coordinated, "ZJJ", ("CGJ", "LYQ"), track="coordinated"
    )
    await services.sign_assignment(svc, PEOPLE.city, coordinated)
    numbers = (routine, special, coordinated)
    total = 0
    for moment in (
        local(2026, 11, 30, 11, 31),
        local(2026, 11, 30, 16, 22, 30),
        local(2026, 12, 1, 10, 0),
        local(2026, 12, 3, 10, 0),
        local(2026, 12, 8, 10, 0),
        local(2026, 12, 9, 9, 0),
    ):
        total += await sweep(svc, clock, moment)
    chase_kinds = (REMINDER, OVERDUE, ESCALATED)
    seen = 0
    for number in numbers:
        case = await load_case(db, number=number)
        assert case.id is not None
        events = await db.fetch_all(
            "SELECT id, kind FROM events WHERE case_id = ? ORDER BY id", (case.id,)
        )
        timeline = await load_events(db, case.id)
        for (event_id, kind), event in zip(events, timeline, strict=True):
            if kind not in chase_kinds:
                continue
            seen += 1
            rows = await db.fetch_all(
                "SELECT recipient_kind, recipient_ref, message_key, params, card_key, case_id"
                " FROM outbox WHERE event_id = ? ORDER BY id",
                (event_id,),
            )
            expected = messages_for(case, event)
            assert [
                (r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows
            ] == [
                (
                    m.recipient_kind,
                    m.recipient_ref,
                    m.key,
                    json.loads(json.dumps(m.params, default=str)),
                    m.card_key,
                    case.id,
                )
                for m in expected
            ], (number, kind, event.details)
    assert seen == total > 0
    # The co-units' input deadlines were chased too, in their own groups.
    units = {r[1] for r in await outbox_of(db, coordinated, ("unit.reminder", "unit.overdue"))}
    assert units == {"ZJJ", "CGJ", "LYQ"}
    escalations = await outbox_params(db, coordinated, "supervision.escalation")
    assert escalations and all(p["units"][0] == "ZJJ" for p in escalations)


async def test_a_damaged_assignment_is_skipped_and_the_sweep_goes_on(svc, db, clock, caplog):
    damaged, healthy = await assigned(svc), await assigned(svc)
    async with db.unit_of_work() as uow:
        await uow.execute(
            "UPDATE assignments SET chase_fired = 'not json' WHERE case_id ="
            " (SELECT id FROM cases WHERE number = ?)",
            (damaged,),
        )
        await uow.commit()
    clock.set(local(2026, 12, 1, 10, 0))
    assert await services.chase_due(svc) == 1
    assert [(kind, what) for kind, what, _ in await chase_log(db, healthy)] == [(OVERDUE, "sign")]
    assert await chase_log(db, damaged) == []
    assert f"case {damaged} skipped" in caplog.text
    row = await db.fetch_one(
        "SELECT a.next_check_at FROM assignments a JOIN cases c ON c.id = a.case_id"
        " WHERE c.number = ?",
        (damaged,),
    )
    assert row is not None and from_db(row[0]) <= clock.now()  # still due: looked at again

"""Bulk fill of a realistic two-year Wenzheng database, for the benchmarks only.

The services take milliseconds per case, far too slow for a million, so the rows are
written with executemany on a raw sqlite3 connection inside big transactions. They follow
what `bot.domain.case` would have written: the same states, stage times and on-time flags,
events, answers and ratings, and `next_check_at` as the deadline sweep keeps it.

Each case gets a whole life (filed, triaged, signed, answered, published, rated, maybe
reopened) drawn at random, and only the steps that lie before `now` are written, so the
open tail (new, assigned, in_progress, answered, replied) falls out of the timing. Active
assignments get the chase state the deadline sweep would have left (see `_Chase`).

Drawing the lives is Python work and inserting them is SQLite work, so on a large fill a
second process draws the next chunk while this one inserts the last: on 2 cores the
drawing then costs no wall time, and inserting is what is left.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import json
import math
import multiprocessing
import random
import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from bot import services
from bot.clock import FrozenClock
from bot.domain.policy import Duration, Policy
from storage.db import Database, to_db

US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# "Nd" deadlines are working days; 7/5 calendar days each roughly covers the weekends.
# Exact holiday arithmetic would change nothing the benchmarks measure.
WORKING_DAY = 7 * DAY // 5
# A step that never happens (a stalled case): it lies after any `now`.
NEVER = 1 << 62
# Shanghai has had no DST since 1991, so local time is UTC + 8 h without tz lookups.
LOCAL_OFFSET = 8 * HOUR

CHUNK = 50_000  # cases per transaction: big enough to amortise, small enough for memory
IN_FLIGHT = 2  # chunks drawn ahead by the helper process (bounds the parent's memory)

# Uneven mixes, roughly what a city hotline sees (housing, property and street order lead).
CATEGORY_WEIGHTS = {
    "housing": 14, "property": 13, "city_management": 13, "traffic": 9, "employment": 9,
    "education": 8, "other": 7, "transport": 6, "environment": 6, "market": 5, "health": 4,
    "power": 4, "water": 4, "medical_insurance": 3, "land": 3,
}
DISTRICT_WEIGHTS = {
    "langya": 27, "nanqiao": 18, "tianchang": 12, "dingyuan": 9, "fengyang": 9,
    "mingguang": 9, "quanjiao": 8, "laian": 8,
}
TRACK_WEIGHTS = {"routine": 70, "coordinated": 15, "special": 10, "high_level": 5}
RATING_WEIGHTS = {"satisfied": 80, "basically_satisfied": 12, "unsatisfied": 5, "not_rated": 3}
# A second round (after an unsatisfied rating) is rated better: the unit tried again, and
# an unsatisfied second round would go back to the desk, which the fill does not model.
ROUND2_RATING_WEIGHTS = {"satisfied": 60, "basically_satisfied": 27, "not_rated": 13}
# Filings per hour of the local day: quiet at night, peaks mid-morning and in the evening.
HOURLY = (
    0.15, 0.10, 0.07, 0.06, 0.06, 0.10, 0.30, 0.70, 1.20, 1.50, 1.50, 1.30,
    1.00, 1.10, 1.30, 1.30, 1.20, 1.10, 1.00, 1.10, 1.20, 1.00, 0.70, 0.35,
)
WEEKEND_FACTOR = 0.6
REJECT_SHARE = 0.03
SLOW_SHARE = 0.04  # cases whose units miss every deadline (they feed the chase ladder)
RETURN_SHARE = 0.02  # leads that return the case before signing (退回) and are replaced
INTERIM_WHEN_LATE = 0.9  # final answers due after the reply deadline: interim reply first
APPEAL_SHARE = 0.30  # of unsatisfied ratings
HELD_UNSIGNED_SHARE = 0.25  # of held (stalled) cases: the unit never even signed

ADMIN = 1000
DISPATCHERS = (1001, 1002, 1003)
SUPERVISORS = (1004, 1005)
LEADERS = (1006, 1007)
CITIZEN_BASE = 100_000_000

PLACES = (
    "幸福小区", "南门菜市场附近", "人民路与丰乐大道交口", "城东新村", "阳光花园",
    "中心小学旁", "工业园区", "老城区",
)
ISSUES = {
    "housing": ("小区电梯坏了三天，老人上下楼很困难，请尽快维修。",
                "老旧小区改造施工噪音大，晚上十点后还在施工，影响休息。"),
    "property": ("物业公司擅自提高物业费，也没有公示收支情况，业主意见很大。",
                 "小区地下车库积水严重，反映多次物业一直不处理。"),
    "education": ("孩子入学划片不合理，离家近的学校却不能就读，希望说明政策。",
                  "学校周边早晚高峰交通拥堵，存在安全隐患，建议增设护学岗。"),
    "environment": ("附近工厂夜间排放刺鼻气体，居民开窗就能闻到，请环保部门查处。",
                    "河道漂浮垃圾很多，夏天气味很大，希望及时清理。"),
    "employment": ("公司拖欠三个月工资，多次讨要无果，请求劳动监察部门帮助。",
                   "社保转移接续办理太慢，提交材料一个月还没有结果。"),
    "transport": ("公交线路调整后小区附近没有站点，老人出行很不方便。",
                  "乡村道路坑洼不平，雨天积水无法通行，请尽快修补。"),
    "medical_insurance": ("异地就医备案后实际报销比例和政策说明不一致，请核实。",
                          "门诊慢特病申请审核时间太长，药费负担很重。"),
    "traffic": ("路口红绿灯时间设置不合理，行人过马路时间太短。",
                "小区门口长期有车辆违章停放，堵塞消防通道。"),
    "city_management": ("路边占道经营严重，人行道被摊位占满无法通行。",
                        "夜市油烟和噪音扰民到凌晨，希望规范管理。"),
    "power": ("小区近一周频繁停电，电压不稳，已有家电损坏。",
              "新房申请电表过户一个多月迟迟没有办理。"),
    "water": ("自来水发黄有异味，已经持续两天，不敢饮用。",
              "小区停水没有提前通知，严重影响生活。"),
    "market": ("网购商品有质量问题，商家拒绝退货，请求维权。",
               "超市销售过期食品，已保留购物小票和照片。"),
    "land": ("邻居违规加盖建筑，严重影响采光和通风。",
             "安置房规划变更没有公示，请说明情况。"),
    "health": ("社区卫生服务中心疫苗预约困难，希望增加号源。",
               "医院挂号排队时间过长，希望优化就诊流程。"),
    "other": ("希望在小区附近增设便民服务点和公共厕所。",
              "咨询户籍迁移需要准备哪些材料，办理流程是什么。"),
}
INTERIM_TEXT = "您反映的问题已收悉，我单位已安排专人现场核实，将在办理时限内给予正式答复。"
FINAL_TEXTS = (
    "经现场核查，您反映的情况属实。我单位已责成相关责任方于三日内整改完毕，"
    "后续将加强日常巡查，防止问题反弹。感谢您对我们工作的监督。",
    "您好，收到您的留言后我单位立即组织人员调查处理，目前问题已经解决。"
    "如仍有疑问，可拨打办公室电话咨询。",
    "经调查，该事项涉及历史遗留问题，我单位已会同属地街道制定整改方案，"
    "预计本月底前完成，届时将再次回访。",
)
INPUT_TEXT = "协办意见：经核查，该事项涉及我单位职责的部分已处理完毕，具体情况已反馈主办单位。"
RETURN_NOTE = "该事项不属于我单位职能范围。"
UNSATISFIED_COMMENT = "问题没有实际解决，只是敷衍答复。"
APPEAL_REASON = "诉求超出政策规定范围，已依法依规答复并做好解释工作。"

TABLES = ("cases", "assignments", "events", "answers", "ratings", "attachments")
INSERTS = {
    "cases": f"INSERT INTO cases VALUES ({', '.join('?' * 26)})",
    "assignments": f"INSERT INTO assignments VALUES ({', '.join('?' * 21)})",
    "events": "INSERT INTO events(case_id, at, kind, actor_id, actor_role, unit_code, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)",
    "answers": "INSERT INTO answers(case_id, round, kind, unit_code, author_id, text, at, state,"
    " review_comment, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "ratings": "INSERT INTO ratings(case_id, round, rating, unit_code, comment, at, appeal,"
    " appeal_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "attachments": "INSERT INTO attachments(case_id, kind, file_id, file_unique_id, file_name,"
    " mime_type, size, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}
# What the schema's CHECK constraints allow: the fill skips CHECKs for speed (each IN list
# costs microseconds per row) and verifies the values once at the end instead.
CHECKS = {
    "cases": "track NOT IN ('special', 'routine', 'coordinated', 'high_level')"
    " OR state NOT IN ('new', 'assigned', 'in_progress', 'answered', 'replied', 'closed',"
    " 'rejected')",
    "assignments": "role NOT IN ('lead', 'co')"
    " OR state NOT IN ('assigned', 'signed', 'returned', 'reported', 'withdrawn')",
    "answers": "kind NOT IN ('interim', 'final', 'input')"
    " OR state NOT IN ('published', 'pending_review', 'sent_back', 'internal')",
    "ratings": "rating NOT IN ('satisfied', 'basically_satisfied', 'unsatisfied', 'not_rated')"
    " OR appeal NOT IN ('pending', 'approved', 'denied')",
}


@dataclass(frozen=True)
class FillPlan:
    """What to fill: how many cases, filed between `start` and `now`, and the due set size."""

    cases: int
    start: datetime
    now: datetime
    due: int = 1000
    seed: int = 20261130

    # What the filler writes changed (2: one overdue notice per look, naming every missed
    # deadline): a database kept from another version is filled again.
    VERSION: ClassVar[int] = 2

    def key(self) -> dict[str, Any]:
        """What identifies a kept fill of this plan (the marker beside the file)."""
        return {"cases": self.cases, "start": self.start.isoformat(),
                "now": self.now.isoformat(), "due": self.due, "seed": self.seed,
                "version": self.VERSION}


@dataclass
class FillResult:
    """What the fill wrote, for the report."""

    path: Path
    cases: int
    seconds: float = 0.0
    size_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    open_assignments: int = 0
    due: int = 0
    backlog_cases: int = 0  # cases held open so the due set can reach its size (small DBs)
    backlog_spread: int = 0  # ... drawn from this many most recent cases
    helper_process: bool = False
    phases: dict[str, float] = field(default_factory=dict)  # seconds by step, for the report


class _Laps:
    """Seconds spent per step, so the report shows where the fill's time goes."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        moment = time.perf_counter()
        self.phases[step] = self.phases.get(step, 0.0) + moment - self.last
        self.last = moment


async def create_schema(path: Path, policy: Policy, now: datetime) -> None:
    """Create the file the production way: `Database.connect()` migrates and the services
    put the policy's units in, so the fill starts from exactly the production schema."""
    db = Database(path)
    await db.connect()
    try:
        await services.setup_policy_units(services.Services(db, policy, FrozenClock(now)))
    finally:
        await db.close()


def _window(duration: Duration) -> int:
    """A track deadline as microseconds after assignment."""
    if duration.unit == "h":
        return int(duration.amount * HOUR)
    return int(duration.amount * WORKING_DAY)


@functools.cache
def _iso(at: int) -> str:
    """A stored moment as the domain writes it in event details."""
    return datetime.fromtimestamp(at / US, UTC).isoformat()


def _details(*items: tuple[str, Any]) -> str:
    """Event details as the domain stores them (a JSON object), memoised: a million cases
    repeat a few thousand distinct details, and json.dumps was a third of the drawing."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in items},
                      ensure_ascii=False)


def _cumulative(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    keys = list(weights)
    return keys, list(itertools.accumulate(weights[k] for k in keys))


TRACK_KEYS, TRACK_CUM = _cumulative(TRACK_WEIGHTS)
RATING_KEYS, RATING_CUM = _cumulative(RATING_WEIGHTS)
ROUND2_KEYS, ROUND2_CUM = _cumulative(ROUND2_RATING_WEIGHTS)


@dataclass(frozen=True)
class _Chunk:
    """The inputs of one chunk of cases (drawn by the parent, so both modes agree)."""

    first_id: int
    numbers: list[str]
    filed: list[int]
    citizens: list[int]
    categories: list[str]
    districts: list[str]
    held: frozenset[int]  # case ids held open (the small-database backlog)


Rows = dict[str, list[Any]]
Stages = list[tuple[str, int, int]]  # (stage, deadline, window) of an active assignment
# An active assignment: (id, case id, unit, role, track, assigned_at, open stages).
OpenAssignment = tuple[int, int, str, str, str, int, Stages]


class _Lives:
    """Draws case lives and turns them into rows; lives in the helper process if there is one."""

    def __init__(self, policy: Policy, plan: FillPlan) -> None:
        self.now = to_db(plan.now) or 0
        # Its own random stream, so the result is the same with or without a helper process.
        self.rnd = random.Random(plan.seed + 1)
        self.units = sorted(policy.units)
        self.liaisons = {
            code: (20_000 + 10 * i, 20_001 + 10 * i) for i, code in enumerate(self.units)
        }
        self.windows = {
            track.value: (_window(p.sign), _window(p.reply), _window(p.resolve),
                          p.review_before_publish)
            for track, p in policy.tracks.items()
        }
        self.supervision_after = int(policy.chasing.supervision_after_days * WORKING_DAY)
        self.leaders_after = int(policy.chasing.leaders_after_days * WORKING_DAY)
        self.callback_reminder = policy.callback.reminder_after // timedelta(microseconds=1)
        self.callback_close = policy.callback.close_after // timedelta(microseconds=1)
        self.suggestions = {
            (c, d): policy.suggest_units(c, d) or [self.units[0]]
            for c in policy.categories
            for d in policy.districts
        }
        self.texts = {
            c: [f"{policy.districts[d].name}{place}：{issue}"
                for d in policy.districts for place in PLACES
                for issue in ISSUES.get(c, ISSUES["other"])]
            for c in policy.categories
        }
        self.rows: Rows = {name: [] for name in TABLES}
        self.next_assignment_id = 1
        # Active assignments; their chase state (next_check_at) is set once all are known.
        self.open: list[OpenAssignment] = []
        self.states: dict[str, int] = {}

    def chunk(self, chunk: _Chunk) -> Rows:
        """Rows of a chunk of cases; each case's last change is its latest event."""
        for k, filed in enumerate(chunk.filed):
            cid = chunk.first_id + k
            self.case(cid, chunk.numbers[k], filed, chunk.citizens[k], chunk.categories[k],
                      chunk.districts[k], cid in chunk.held)
        rows, self.rows = self.rows, {name: [] for name in TABLES}
        latest: dict[int, int] = {}
        for event in rows["events"]:
            if event[1] > latest.get(event[0], 0):
                latest[event[0]] = event[1]
        for case in rows["cases"]:
            case[25] = latest[case[0]]
        return rows

    # -- drawing ---------------------------------------------------------------------------

    def _stage(self, window: int, on_time: float, slow: bool) -> int:
        """How long after assignment a stage is done: mostly inside its window."""
        rr = self.rnd.random
        if slow:
            return int(window * (1.5 + 2.5 * rr()))
        if rr() < on_time:
            return int(window * (0.05 + 0.9 * rr()))
        # Late, but by less than the supervision threshold: escalations stay rare.
        return window + int(min(window // 2, 2 * WORKING_DAY) * rr())

    def _triage_at(self, filed: int, urgent: bool) -> int:
        """When the desk acts: within hours, in office hours unless the case is urgent."""
        rr = self.rnd.random
        if urgent:
            return filed + int((0.1 + 1.4 * rr()) * HOUR)
        at = filed + 10 * MINUTE + int(-math.log(1.0 - rr()) * 2 * HOUR)
        hour = ((at + LOCAL_OFFSET) // HOUR) % 24
        if hour < 8 or hour >= 18:
            # At night the desk is away: picked up next morning between 08:30 and 10:30.
            night_of = (at + LOCAL_OFFSET - 8 * HOUR) // DAY
            at = (night_of + 1) * DAY - LOCAL_OFFSET + int((8.5 + 2 * rr()) * HOUR)
        return at

    # -- one case --------------------------------------------------------------------------

    def case(self, cid: int, number: str, filed: int, citizen: int, category: str,
             district: str, held: bool) -> None:
        """Draw one case's life and append the rows of the part that lies before now."""
        rnd = self.rnd
        rr = rnd.random
        now = self.now
        events = self.rows["events"]
        dispatcher = DISPATCHERS[cid % len(DISPATCHERS)]
        located = rr() < 0.3
        row: list[Any] = [
            cid, number, citizen, category, district, rnd.choice(self.texts[category]),
            32.3 + 0.6 * rr() if located else None, 118.0 + 0.9 * rr() if located else None,
            int(rr() < 0.2), None, "new", 1, None, filed, None, None, None, 0, 0, None, None,
            0, None, None, None, filed,
        ]
        self.rows["cases"].append(row)
        events.append((cid, filed, "CaseFiled", citizen, "citizen", None,
                       _details(("category", category), ("district", district))))
        if rr() < 0.25:
            for k in range(1 + int(rr() * 3)):
                self.rows["attachments"].append((
                    cid, "photo", f"AgACAgUAAxkBAAI{cid:09d}{k}", f"AQAD{cid:09d}{k}", None,
                    "image/jpeg", 80_000 + int(rr() * 900_000), filed,
                ))
        track = TRACK_KEYS[bisect.bisect(TRACK_CUM, rr() * TRACK_CUM[-1])]
        triaged = self._triage_at(filed, track == "special")
        if triaged > now:
            self._finish(row, "new")
            return
        if not held and rr() < REJECT_SHARE:
            reason = ("invalid", "duplicate", "out_of_scope")[int(rr() * 3)]
            original = None
            if reason == "duplicate":
                prefix, seq = number.rsplit("-", 1)
                original = f"{prefix}-{max(1, int(seq) - 1 - int(rr() * 20)):06d}"
            row[14], row[16], row[22] = reason, original, triaged
            details = {"reason": reason, "note": None, "duplicate_of": original}
            events.append((cid, triaged, "CaseRejected", dispatcher, "dispatcher", None,
                           json.dumps(details)))
            self._finish(row, "rejected")
            return
        sign_w, reply_w, resolve_w, _ = self.windows[track]
        suggestions = self.suggestions[(category, district)]
        lead = suggestions[1] if len(suggestions) > 1 and rr() < 0.2 else suggestions[0]
        returned_by: str | None = None
        if rr() < RETURN_SHARE:
            # The first lead returns it before signing; the desk gives it to another unit.
            returned_by = lead
            lead = next((u for u in suggestions if u != lead), None) or rnd.choice(
                [u for u in self.units if u != returned_by]
            )
        co_units: list[str] = []
        if track == "coordinated":
            wanted = 1 if rr() < 0.6 else 2
            for unit in [*suggestions, *rnd.sample(self.units, 4)]:
                if unit not in (lead, returned_by) and unit not in co_units:
                    co_units.append(unit)
                if len(co_units) == wanted:
                    break
        row[9] = track
        events.append((cid, triaged, "TrackSet", dispatcher, "dispatcher", None,
                       _details(("track", track), ("previous", None))))
        assigned = triaged
        if returned_by is not None:
            returned_at = triaged + int((0.5 + 6 * rr()) * HOUR)
            self._assigned_event(cid, triaged, dispatcher, returned_by, (), track)
            first = self._assignment(cid, returned_by, "lead", 1, triaged, track)
            row[12] = returned_by
            if returned_at > now:
                self._open(first, track, [("sign", first[7], sign_w),
                                          ("reply", first[8], reply_w),
                                          ("resolve", first[9], resolve_w)])
                self._finish(row, "assigned")
                return
            # A returned assignment stops being chased (Case.return_to_desk).
            first[5], first[17] = "returned", 1
            row[17] = 1
            events.append((cid, returned_at, "AssignmentReturned", self.liaisons[returned_by][0],
                           "liaison", returned_by,
                           _details(("reason", "duty"), ("note", RETURN_NOTE), ("returns", 1),
                                    ("role", "lead"))))
            assigned = returned_at + int((0.5 + 3 * rr()) * HOUR)
            if assigned > now:
                self._finish(row, "new")
                return
            first[5] = "withdrawn"
        self._assigned_event(cid, assigned, dispatcher, lead, tuple(co_units), track)
        row[12] = lead
        self._round(row, cid, 1, lead, co_units, track, assigned, rr() < SLOW_SHARE, held)

    def _round(self, row: list[Any], cid: int, round_: int, lead: str, co_units: list[str],
               track: str, assigned: int, slow: bool, held: bool) -> None:
        """One handling round, from assignment to rating (or as far as `now`)."""
        rr = self.rnd.random
        now = self.now
        events = self.rows["events"]
        answers = self.rows["answers"]
        sign_w, reply_w, resolve_w, review = self.windows[track]
        first_round = round_ == 1
        liaison = self.liaisons[lead][int(rr() * 2)]
        lead_row = self._assignment(cid, lead, "lead", round_, assigned, track)
        if first_round:
            signed = assigned + max(MINUTE, self._stage(sign_w, 0.94, slow))
        else:
            # A reopened round starts signed and has no sign stage (Case._reopen).
            signed = assigned
            lead_row[5], lead_row[7], lead_row[10] = "signed", None, assigned
        final = max(assigned + self._stage(resolve_w, 0.90, slow), signed + HOUR)
        co_plans = []
        for unit in co_units:
            co_row = self._assignment(cid, unit, "co", round_, assigned, track)
            co_signed = assigned + max(MINUTE, self._stage(sign_w, 0.94, False))
            co_input = max(assigned + self._stage(reply_w, 0.9, False), co_signed + 30 * MINUTE)
            co_plans.append((co_row, co_signed, co_input))
            final = max(final, co_input + 10 * MINUTE)  # the lead waits for every co-unit
        interim = NEVER
        if final > lead_row[8] and rr() < INTERIM_WHEN_LATE:
            # The answer will come after the reply deadline, so the unit first gives an
            # interim reply (阶段答复), which ends the reply stage.
            interim = max(assigned + self._stage(reply_w, 0.92, slow), signed + 30 * MINUTE)
            final = max(final, interim + HOUR)
        if held:
            # A stalled case (the small database's backlog): the lead never answers, and
            # some never even sign.
            final = NEVER
            if first_round and rr() < HELD_UNSIGNED_SHARE:
                signed = interim = NEVER
        published = final + int((1 + 19 * rr()) * HOUR) if review and final != NEVER else final

        for co_row, co_signed, co_input in co_plans:
            unit = co_row[2]
            co_liaison = self.liaisons[unit][0]
            if co_signed > now:
                self._open(co_row, track, [("sign", co_row[7], sign_w),
                                           ("reply", co_row[8], reply_w)])
                continue
            on_time = co_signed <= co_row[7]
            co_row[5], co_row[10], co_row[13] = "signed", co_signed, int(on_time)
            events.append((cid, co_signed, "AssignmentSigned", co_liaison, "liaison", unit,
                           _details(("on_time", on_time), ("role", "co"))))
            if co_input > now:
                self._open(co_row, track, [("reply", co_row[8], reply_w)])
                continue
            on_time = co_input <= co_row[8]
            co_row[5], co_row[11], co_row[14] = "reported", co_input, int(on_time)
            answers.append((cid, round_, "input", unit, co_liaison, INPUT_TEXT, co_input,
                            "internal", None, "[]"))
            events.append((cid, co_input, "CoUnitInputPosted", co_liaison, "liaison", unit,
                           _details(("text", INPUT_TEXT))))

        state = "assigned"
        if signed <= now:
            state = "in_progress"
            if first_round:
                on_time = signed <= lead_row[7]
                lead_row[5], lead_row[10], lead_row[13] = "signed", signed, int(on_time)
                events.append((cid, signed, "AssignmentSigned", liaison, "liaison", lead,
                               _details(("on_time", on_time), ("role", "lead"))))
        if interim <= now:
            lead_row[11], lead_row[14] = interim, int(interim <= lead_row[8])
            answers.append((cid, round_, "interim", lead, liaison, INTERIM_TEXT, interim,
                            "published", None, "[]"))
            events.append((cid, interim, "InterimAnswerPosted", liaison, "liaison", lead,
                           _details(("text", INTERIM_TEXT), ("attachments", 0))))
        final_text = FINAL_TEXTS[int(rr() * len(FINAL_TEXTS))]
        if final <= now:
            state = "answered"
            events.append((cid, final, "FinalAnswerPosted", liaison, "liaison", lead,
                           _details(("text", final_text), ("needs_review", review),
                                    ("attachments", 0))))
        if published > now:
            if final <= now:
                answers.append((cid, round_, "final", lead, liaison, final_text, final,
                                "pending_review", None, "[]"))
            # Still being handled: the lead's unfinished stages are chased.
            stages: Stages = []
            if lead_row[7] is not None and lead_row[10] is None:
                stages.append(("sign", lead_row[7], sign_w))
            if lead_row[11] is None:
                stages.append(("reply", lead_row[8], reply_w))
            stages.append(("resolve", lead_row[9], resolve_w))
            # Its chasing so far (reminders, notices, escalations) is written at the end.
            self._open(lead_row, track, stages)
            row[11] = round_
            self._finish(row, state)
            return

        self._escalations(row, cid, lead, lead_row[9], final)
        # Published: the reply and resolve stages end at the answer's time (Case.publish).
        if lead_row[11] is None:
            lead_row[11], lead_row[14] = final, int(final <= lead_row[8])
        resolve_on_time = final <= lead_row[9]
        lead_row[5], lead_row[12], lead_row[15] = "reported", final, int(resolve_on_time)
        answers.append((cid, round_, "final", lead, liaison, final_text, final, "published",
                        None, "[]"))
        publisher = (DISPATCHERS[cid % len(DISPATCHERS)], "dispatcher") if review else (
            None, "system")
        events.append((cid, published, "AnswerPublished", *publisher, lead,
                       _details(("resolve_on_time", resolve_on_time))))
        row[11], row[19], row[20] = round_, published, published + self.callback_close

        # The citizen's verdict (or the callback window closing without one).
        keys, cum = (RATING_KEYS, RATING_CUM) if first_round else (ROUND2_KEYS, ROUND2_CUM)
        rating = keys[bisect.bisect(cum, rr() * cum[-1])]
        if rating == "not_rated":
            rated = published + self.callback_close
        else:
            delay = int(-math.log(1.0 - rr()) * 10 * HOUR)
            rated = published + min(delay, self.callback_close - MINUTE)
        reminder = published + self.callback_reminder
        if reminder <= now and rated > reminder:
            row[21] = 1
            events.append((cid, reminder, "CallbackReminded", None, "system", None, "{}"))
        if rated > now:
            self._finish(row, "replied")
            return
        comment = UNSATISFIED_COMMENT if rating == "unsatisfied" else None
        appeal: str | None = None
        if rating != "not_rated":
            events.append((cid, rated, "CaseRated", row[2], "citizen", lead,
                           _details(("rating", rating), ("comment", comment),
                                    ("round", round_))))
        if rating == "unsatisfied" and rr() < APPEAL_SHARE:
            appealed, ruled = rated + 6 * HOUR, rated + 2 * DAY
            if appealed <= now:
                appeal = "pending"
                events.append((cid, appealed, "AppealFiled", liaison, "liaison", lead,
                               _details(("reason", APPEAL_REASON), ("round", round_))))
                if ruled <= now:
                    accepted = rr() < 0.4
                    appeal = "approved" if accepted else "denied"
                    events.append((cid, ruled, "AppealAccepted" if accepted else "AppealRejected",
                                   SUPERVISORS[0], "supervisor", lead,
                                   _details(("round", round_))))
        self.rows["ratings"].append((cid, round_, rating, lead, comment, rated, appeal,
                                     APPEAL_REASON if appeal else None))
        row[20] = None
        if rating == "unsatisfied" and first_round:
            # Unsatisfied on round 1: back to the same lead for round 2 (Case._reopen).
            events.append((cid, rated, "CaseReopened", row[2], "citizen", lead,
                           _details(("round", 2), ("reason", "unsatisfied"),
                                    ("comment", comment))))
            self._round(row, cid, 2, lead, [], track, rated, slow and rr() < 0.5, False)
            return
        closer = (None, "system") if rating == "not_rated" else (row[2], "citizen")
        reason = "not_rated" if rating == "not_rated" else "rated"
        events.append((cid, rated, "CaseClosed", *closer, None,
                       _details(("reason", reason), ("note", None))))
        row[22], row[23] = rated, reason
        self._finish(row, "closed")

    def _assignment(self, cid: int, unit: str, role: str, round_: int, at: int,
                    track: str) -> list[Any]:
        """A new assignment row with the track's three deadlines (co-units: no resolve)."""
        sign_w, reply_w, resolve_w, _ = self.windows[track]
        assignment_id = self.next_assignment_id
        self.next_assignment_id += 1
        row = [
            assignment_id, cid, unit, role, round_, "assigned", at, at + sign_w, at + reply_w,
            at + resolve_w if role == "lead" else None,
            None, None, None, None, None, None, 1, 0, None, None, "[]",
        ]
        self.rows["assignments"].append(row)
        return row

    def _assigned_event(self, cid: int, at: int, dispatcher: int, lead: str,
                        co_units: tuple[str, ...], track: str) -> None:
        self.rows["events"].append((cid, at, "CaseAssigned", dispatcher, "dispatcher", lead,
                                    _details(("lead", lead), ("co_units", co_units),
                                             ("track", track), ("round", 1))))

    def _open(self, assignment: list[Any], track: str, stages: Stages) -> None:
        """Remember an active assignment; its next_check_at is set once all are known."""
        self.open.append((assignment[0], assignment[1], assignment[2], assignment[3], track,
                          assignment[6], stages))

    def _escalations(self, row: list[Any], cid: int, lead: str, resolve_due: int,
                     done: int) -> None:
        """A finished case that was resolved long after its deadline went to supervision,
        then leaders (the sweep's escalations, in short: only the resolve stage counts)."""
        for level, after in (("supervision", self.supervision_after),
                             ("leaders", self.leaders_after)):
            at = resolve_due + after
            if at < done and at <= self.now:
                row[24] = level
                details = _details(("level", level), ("reason", "overdue"))
                self.rows["events"].append(
                    (cid, at, "CaseEscalated", None, "system", lead, details)
                )

    def _finish(self, row: list[Any], state: str) -> None:
        row[10] = state
        self.states[state] = self.states.get(state, 0) + 1


# -- the helper process -----------------------------------------------------------------------

_HELPER: _Lives | None = None


def _helper_start(policy: Policy, plan: FillPlan) -> None:
    global _HELPER  # one _Lives per helper process, kept across its chunks
    _HELPER = _Lives(policy, plan)


def _helper_chunk(chunk: _Chunk) -> Rows:
    assert _HELPER is not None
    return _HELPER.chunk(chunk)


def _helper_finish() -> tuple[list[OpenAssignment], dict[str, int]]:
    assert _HELPER is not None
    return _HELPER.open, _HELPER.states


# -- the fill -------------------------------------------------------------------------------


def filing_times(rnd: random.Random, n: int, start: int, now: int) -> list[int]:
    """n filing moments, weighted by hour of day and weekday, with use growing over time."""
    slots: list[int] = []
    weights: list[float] = []
    span = now - start
    t = start
    while t + HOUR <= now:
        local = t + LOCAL_OFFSET
        weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        growth = 0.7 + 0.6 * (t - start) / span  # more citizens use it as it gets known
        weights.append(HOURLY[(local // HOUR) % 24] * growth
                       * (WEEKEND_FACTOR if weekday >= 5 else 1.0))
        slots.append(t)
        t += HOUR
    picked = rnd.choices(slots, cum_weights=list(itertools.accumulate(weights)), k=n)
    rr = rnd.random
    return sorted(s + int(rr() * HOUR) for s in picked)


def case_numbers(policy: Policy, filed: list[int]) -> list[str]:
    """Public numbers, gap-free per local year in filing order (as next_case_number does)."""
    tz = policy.calendar.tz
    numbers: list[str] = []
    year, next_year_at, seq = 0, 0, 0
    for at in filed:
        if at >= next_year_at:
            year = datetime.fromtimestamp(at / US, tz).year
            next_year_at = to_db(datetime(year + 1, 1, 1, tzinfo=tz)) or 0
            seq = 0
        seq += 1
        numbers.append(f"{policy.case_prefix}{year}-{seq:06d}")
    return numbers


def fill(path: Path, policy: Policy, plan: FillPlan) -> FillResult:
    """Fill a migrated file (see `create_schema`) with `plan.cases` cases, then ANALYZE."""
    began = time.perf_counter()
    result = FillResult(path, plan.cases)
    laps = _Laps(result.phases)
    n = plan.cases
    now = to_db(plan.now) or 0
    rnd = random.Random(plan.seed)
    filed = filing_times(rnd, n, to_db(plan.start) or 0, now)
    numbers = case_numbers(policy, filed)
    keys, cumulative = _cumulative(CATEGORY_WEIGHTS)
    categories = rnd.choices(keys, cum_weights=cumulative, k=n)
    keys, cumulative = _cumulative(DISTRICT_WEIGHTS)
    districts = rnd.choices(keys, cum_weights=cumulative, k=n)
    # Repeat filers: a skewed pool of citizens (a few file often, most once or twice).
    pool = max(100, int(n * 0.45))
    citizens = [CITIZEN_BASE + int(pool * rnd.random() ** 1.6) for _ in range(n)]
    # The due set must have the same size in every database, so that the due-query ratio
    # measures the index and not the result. A small database's natural open tail is too
    # short for that (10k cases over two years leave ~300 open), so some of its recent
    # cases are held open, a backlog, until there are enough active assignments. They are
    # spread over the last 1.5 backlogs of filings, so recent weeks still have cases that
    # ran their normal course (and ratings for the weekly figures).
    recent = n - bisect.bisect_left(filed, now - 21 * DAY)
    backlog = 0 if recent >= 5 * plan.due else min(n, math.ceil(plan.due * 1.3))
    spread = min(n, backlog * 3 // 2)
    held = set(rnd.sample(range(n - spread + 1, n + 1), backlog))
    chunks = [
        _Chunk(lo + 1, numbers[lo:hi], filed[lo:hi], citizens[lo:hi], categories[lo:hi],
               districts[lo:hi], frozenset(c for c in held if lo < c <= hi))
        for lo in range(0, n, CHUNK)
        for hi in (min(n, lo + CHUNK),)
    ]
    result.backlog_cases, result.backlog_spread = backlog, spread
    result.rows = dict.fromkeys(TABLES, 0)
    laps.lap("inputs (times, numbers, mixes)")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # Bulk-load settings: the file is rebuilt if anything fails, so no journal and no
        # fsync; a big cache keeps the indexes in memory. WAL comes back at the end.
        for pragma in (
            "journal_mode = OFF", "synchronous = OFF", "locking_mode = EXCLUSIVE",
            "cache_size = -1000000", "temp_store = MEMORY", "foreign_keys = OFF",
            "ignore_check_constraints = ON",
        ):
            connection.execute(f"PRAGMA {pragma}")
        result.helper_process = len(chunks) > 1
        if result.helper_process:
            open_, states = _fill_with_helper(connection, policy, plan, chunks, citizens, filed,
                                              result.rows, laps)
        else:
            lives = _Lives(policy, plan)
            _insert_people(connection, lives, citizens, filed, to_db(plan.start) or 0)
            laps.lap("users, staff, liaisons")
            for chunk in chunks:
                rows = lives.chunk(chunk)
                laps.lap("drawing case lives")
                _insert_rows(connection, rows, result.rows)
                laps.lap("inserting")
            open_, states = lives.open, lives.states
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO counters(name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            sorted({f"case:{number.split('-')[0]}": int(number.split("-")[1])
                    for number in numbers}.items()),
        )
        result.due, chase_events = _chase_open(connection, policy, plan, open_)
        result.rows["events"] += chase_events
        connection.execute("COMMIT")
        laps.lap("counters, chase state")
        _verify_checks(connection)
        connection.execute("PRAGMA ignore_check_constraints = OFF")
        laps.lap("verifying CHECKs")
        connection.execute("ANALYZE")
        laps.lap("ANALYZE")
        connection.execute("PRAGMA locking_mode = NORMAL")
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()
    result.states = dict(sorted(states.items()))
    result.open_assignments = len(open_)
    result.seconds = time.perf_counter() - began
    result.size_bytes = path.stat().st_size
    return result


def _fill_with_helper(connection: sqlite3.Connection, policy: Policy, plan: FillPlan,
                      chunks: list[_Chunk], citizens: list[int], filed: list[int],
                      counts: dict[str, int],
                      laps: _Laps) -> tuple[list[OpenAssignment], dict[str, int]]:
    """Insert chunks while a helper process draws the next ones.

    "spawn" rather than fork: the parent runs an event loop and has run aiosqlite
    threads, which a forked child must not inherit.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_helper_start,
                             initargs=(policy, plan)) as helper:
        waiting: deque[Future[Rows]] = deque()
        pending: Iterator[_Chunk] = iter(chunks)

        def ask() -> None:
            chunk = next(pending, None)
            if chunk is not None:
                waiting.append(helper.submit(_helper_chunk, chunk))

        for _ in range(IN_FLIGHT):
            ask()
        # The people go in while the helper draws the first chunk.
        _insert_people(connection, _Lives(policy, plan), citizens, filed, to_db(plan.start) or 0)
        laps.lap("users, staff, liaisons")
        while waiting:
            rows = waiting.popleft().result()
            ask()
            laps.lap("waiting for the helper's drawing")
            _insert_rows(connection, rows, counts)
            laps.lap("inserting")
        finish = helper.submit(_helper_finish).result()
        laps.lap("waiting for the helper's drawing")
        return finish


def _insert_people(connection: sqlite3.Connection, lives: _Lives, citizens: list[int],
                   filed: list[int], start: int) -> None:
    """Citizens (created at their first filing), staff with roles, two liaisons per unit."""
    first_seen: dict[int, int] = {}
    for citizen, at in zip(citizens, filed, strict=True):
        first_seen.setdefault(citizen, at)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    rr = random.Random(len(citizens)).random
    users = [
        (uid, surnames[uid % len(surnames)], None, None, None,
         "zh_Hans" if rr() < 0.92 else ("zh_Hant" if rr() < 0.5 else "en"), 0, 0, at, at)
        for uid, at in first_seen.items()
    ]
    staff = [ADMIN, *DISPATCHERS, *SUPERVISORS, *LEADERS]
    liaison_ids = [uid for pair in lives.liaisons.values() for uid in pair]
    users += [(uid, "工作人员", None, None, None, "zh_Hans", 1, 0, start, start)
              for uid in staff + liaison_ids]
    roles = [(ADMIN, "admin")] + [(u, "dispatcher") for u in DISPATCHERS]
    roles += [(u, "supervisor") for u in SUPERVISORS] + [(u, "leader") for u in LEADERS]
    connection.execute("BEGIN")
    with _fast_null_binding():
        connection.executemany(
            "INSERT INTO users(id, first_name, last_name, username, phone, language,"
            " language_chosen, is_blocked, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sorted(users),
        )
    connection.executemany(
        "INSERT INTO staff_roles(user_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?)",
        [(uid, role, ADMIN, start) for uid, role in roles],
    )
    connection.executemany(
        "INSERT INTO liaisons(unit_code, user_id, added_by, added_at) VALUES (?, ?, ?, ?)",
        [(unit, uid, ADMIN, start) for unit, pair in lives.liaisons.items() for uid in pair],
    )
    connection.execute("COMMIT")


@contextlib.contextmanager
def _fast_null_binding() -> Iterator[None]:
    """Bind None without the adaptation protocol while the fill runs.

    The sqlite3 module sends every None through its adapter lookup (a failed registry
    lookup and two attribute probes), which here cost more than the SQLite insert of a
    26-column case row with its NULLs. An adapter that returns None unchanged (`{}.get`
    is a C function that does) makes it one dict hit; the value bound is still NULL.
    """
    key = (type(None), sqlite3.PrepareProtocol)
    previous = sqlite3.adapters.get(key)
    sqlite3.register_adapter(type(None), {}.get)
    try:
        yield
    finally:
        if previous is None:
            sqlite3.adapters.pop(key, None)
        else:
            sqlite3.adapters[key] = previous


def _insert_rows(connection: sqlite3.Connection, rows: Rows, counts: dict[str, int]) -> None:
    """One chunk, one transaction."""
    connection.execute("BEGIN")
    with _fast_null_binding():
        for name in TABLES:
            connection.executemany(INSERTS[name], rows[name])
            counts[name] += len(rows[name])
    connection.execute("COMMIT")


class _Chase:
    """The deadline sweep's plan (`bot.domain.chasing.Chaser`), simplified.

    Same steps, keys and next checks: a reminder at `reminder_at` of each open stage's
    window, a look at each deadline, an overdue notice on the first working morning (or
    at once, for wall-clock and around-the-clock deadlines) and every working morning
    after, and supervision / leaders escalation some working days after the earliest
    missed deadline. The calendar is Monday to Friday here, without the holidays: only
    the timing of some notices differs, and only by days.
    """

    def __init__(self, policy: Policy) -> None:
        self.reminder_at = policy.chasing.reminder_at
        self.escalations = (
            ("supervision", policy.chasing.supervision_after_days),
            ("leaders", policy.chasing.leaders_after_days),
        )
        calendar = policy.calendar
        self.day_start = (calendar.day_start.hour * 60 + calendar.day_start.minute) * MINUTE
        self.day_end = (calendar.day_end.hour * 60 + calendar.day_end.minute) * MINUTE
        self.tracks = {
            t.value: ({"sign": p.sign.unit == "h", "reply": p.reply.unit == "h",
                       "resolve": p.resolve.unit == "h"}, p.around_the_clock)
            for t, p in policy.tracks.items()
        }
        self._dates: dict[int, str] = {}

    @staticmethod
    def _day(at: int) -> int:
        return (at + LOCAL_OFFSET) // DAY

    @staticmethod
    def _working(day: int) -> bool:
        return (day + 3) % 7 < 5  # 1970-01-01 (day 0) was a Thursday

    def _morning(self, day: int) -> int:
        return day * DAY - LOCAL_OFFSET + self.day_start

    def _next_working_day(self, day: int) -> int:
        day += 1
        while not self._working(day):
            day += 1
        return day

    def _working_start(self, at: int) -> int:
        """`at` if inside working hours, else the next working morning."""
        day, into = self._day(at), (at + LOCAL_OFFSET) % DAY
        if self._working(day) and into < self.day_end:
            return max(at, self._morning(day))
        return self._morning(self._next_working_day(day))

    def _evening(self, day: int) -> int:
        return day * DAY - LOCAL_OFFSET + self.day_end

    def _working_time_between(self, start: int, end: int) -> int:
        total, day = 0, self._day(start)
        while day <= self._day(end):
            if self._working(day):
                total += max(0, min(end, self._evening(day)) - max(start, self._morning(day)))
            day += 1
        return total

    def _add_working_time(self, start: int, amount: int) -> int:
        if amount <= 0:
            return start
        day, at = self._day(start), start
        while True:
            if self._working(day):
                begin, end = max(at, self._morning(day)), self._evening(day)
                if begin < end:
                    if begin + amount <= end:
                        return begin + amount
                    amount -= end - begin
            day += 1
            at = self._morning(day)

    def _add_working_days(self, at: int, days: float) -> int:
        day, into = self._day(at), (at + LOCAL_OFFSET) % DAY
        for _ in range(int(days)):
            day = self._next_working_day(day)
        return day * DAY - LOCAL_OFFSET + into + int((days % 1) * (self.day_end - self.day_start))

    def date(self, at: int) -> str:
        day = self._day(at)
        if day not in self._dates:
            self._dates[day] = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
        return self._dates[day]

    def plan(self, track: str, assigned_at: int, stages: Stages,
             now: int) -> tuple[list[tuple[int, str, str, str, int]], int | None, int]:
        """Steps the sweep took by `now` as (at, key, kind, stage, due), the next check
        after now (None: nothing left to chase), and the time of its last look."""
        wall_clock, around = self.tracks[track]
        steps: list[tuple[int, str, str, str, int]] = []
        upcoming: list[int] = []
        looks = [assigned_at]  # _set_deadlines: a new assignment is looked at at once
        missed: tuple[str, int] | None = None
        for stage, due, _window in sorted(stages, key=lambda s: s[1]):
            if wall_clock[stage]:
                remind = assigned_at + int((due - assigned_at) * self.reminder_at)
            else:
                window = self._working_time_between(assigned_at, due)
                remind = self._add_working_time(assigned_at, int(window * self.reminder_at))
            if remind > now:
                upcoming.append(remind)
            elif remind < due:
                steps.append((remind, f"{stage}:reminder", "reminder", stage, due))
            if due > now:
                upcoming.append(due)
                continue
            looks.append(due)
            missed = missed or (stage, due)
            at = due if around or wall_clock[stage] else self._working_start(due)
            while at <= now:
                steps.append((at, f"{stage}:overdue:{self.date(at)}", "overdue", stage, due))
                day = self._day(at)
                at = self._morning(day + 1 if around else self._next_working_day(day))
            upcoming.append(at)
        if missed is not None:
            stage, due = missed
            for level, days in self.escalations:
                threshold = self._add_working_days(due, days)
                if threshold <= now:
                    steps.append((threshold, f"escalation:{level}", level, stage, due))
                else:
                    upcoming.append(threshold)
        steps.sort()
        looks += [step[0] for step in steps]
        return steps, min(upcoming) if upcoming else None, max(looks)


def _fired_keys(steps: list[tuple[int, str, str, str, int]]) -> list[str]:
    """The fired keys the sweep leaves after taking `steps` in order: each overdue notice
    replaces its stage's earlier ones (bot.domain.chasing._fired_after)."""
    fired: list[str] = []
    for _at, key, kind, stage, _due in steps:
        if kind == "overdue":
            prefix = f"{stage}:overdue:"
            fired = [k for k in fired if not k.startswith(prefix)]
        fired.append(key)
    return fired


def _chase_open(connection: sqlite3.Connection, policy: Policy, plan: FillPlan,
                open_: list[OpenAssignment]) -> tuple[int, int]:
    """Give every active assignment the chase state the sweep would have left it in.

    A sweep that keeps up has taken every step due before now (chase_fired, and their
    events) and set next_check_at to the next one. The `due` assignments it looked at
    most recently are instead left one look behind, as if the sweep were running a
    little late: their last look's steps are not taken yet and next_check_at is that
    look, <= now. Finished assignments keep NULL. Returns (due set size, events written).
    """
    now = to_db(plan.now) or 0
    chase = _Chase(policy)
    planned = []
    for entry in open_:
        steps, following, last = chase.plan(entry[4], entry[5], entry[6], now)
        planned.append((last, entry[0], entry, steps, following))
    planned.sort(key=lambda p: (p[0], p[1]), reverse=True)
    updates: list[tuple[int | None, str, int]] = []
    events: list[tuple[Any, ...]] = []
    levels: dict[int, tuple[str, int]] = {}  # case id -> (escalation level, latest step)
    for rank, (last, assignment_id, entry, steps, following) in enumerate(planned):
        _id, case_id, unit, role, _track, _at, _stages = entry
        if rank < plan.due:
            steps = [step for step in steps if step[0] < last]  # the last look is pending
            following = last
        updates.append((following, json.dumps(_fired_keys(steps)), assignment_id))
        # A look's overdue steps are one notice naming every missed deadline, the earliest
        # in its own fields (as the sweep writes it): at -> [(due, stage, days overdue)].
        notices: dict[int, list[tuple[int, str, float]]] = {}
        for at, _key, kind, stage, due in steps:
            common = (("stage", stage), ("due", _iso(due)), ("role", role))
            if kind == "reminder":
                events.append((case_id, at, "ReminderSent", None, "system", unit,
                               _details(*common)))
            elif kind == "overdue":
                notices.setdefault(at, []).append((due, stage, round((at - due) / WORKING_DAY, 1)))
            else:
                events.append((case_id, at, "CaseEscalated", None, "system", unit,
                               _details(("level", kind), ("reason", "overdue"), *common)))
                level, latest = levels.get(case_id, ("supervision", 0))
                levels[case_id] = ("leaders" if "leaders" in (kind, level) else level,
                                   max(latest, at))
        for at, missed in notices.items():
            (due, stage, late), *more = sorted(missed)
            items = [("days_overdue", late), ("stage", stage), ("due", _iso(due)), ("role", role)]
            if more:
                items.append(("more", [{"days_overdue": d, "stage": s, "due": _iso(m)}
                                       for m, s, d in more]))
            events.append((case_id, at, "OverdueNoticeSent", None, "system", unit,
                           _details(*items)))
    connection.executemany(
        "UPDATE assignments SET next_check_at = ?, chase_fired = ? WHERE id = ?", updates
    )
    events.sort(key=lambda e: e[1])  # appended last, in time order, as the sweep wrote them
    connection.executemany(INSERTS["events"], events)
    connection.executemany(
        "UPDATE cases SET escalation_level = ?, updated_at = max(updated_at, ?) WHERE id = ?",
        [(level, at, case_id) for case_id, (level, at) in levels.items()],
    )
    return min(plan.due, len(planned)), len(events)


def _verify_checks(connection: sqlite3.Connection) -> None:
    """The CHECK constraints skipped during the fill hold for every row."""
    for table, violation in CHECKS.items():
        row = connection.execute(f"SELECT count(*) FROM {table} WHERE {violation}").fetchone()
        if row[0]:
            raise AssertionError(f"fill wrote {row[0]} rows to {table} that break its CHECKs")


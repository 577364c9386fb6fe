"""The deadline sweep through the real application and the Bot API simulator (DESIGN §4).

What the supervision and unit groups receive when a routine case is never signed for, the
assignment letter (交办函) PDF, and the JobQueue jobs that run the sweeps by themselves.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pypdf

from bot import services
from bot.i18n import translator
from handlers.render import STAGE_NAMES, RenderContext, supervision_escalation
from sandbox import SentMessage, SimChat
from tests.conftest import PEOPLE, file_one, local
from tests.e2e.conftest import Harness

ZH = "zh_Hans"
UNIT = "ZJJ"
UNIT_NAME = "市住房和城乡建设局"
ASSIGNED = local(2026, 11, 30, 10, 0)  # the clock fixture's Monday morning
SIGN_DUE = local(2026, 12, 1, 10, 0)
REPLY_DUE = local(2026, 12, 3, 10, 0)
SIGN_REMINDER = local(2026, 11, 30, 16, 22, 30)  # 3/4 of the 8.5 h sign window
THREE_DAYS_ON = local(2026, 12, 3, 10, 0)  # = sign due + 2 working days: supervision


@dataclass
class Scene:
    """The groups of a city and one routine case assigned to ZJJ and never signed for."""

    h: Harness
    supervision: SimChat
    unit: SimChat
    desk: SimChat
    number: str


async def arrange(h: Harness) -> Scene:
    sim, svc = h.sim, h.svc
    supervisor = sim.user("督查员", user_id=PEOPLE.supervisor, started=True)
    liaison = sim.user("住建联络员", user_id=PEOPLE.housing, started=True)
    clerk = sim.user("分办员", user_id=PEOPLE.dispatcher, started=True)
    sim.user("张", last_name="三", user_id=PEOPLE.citizen, started=True)
    supervision = sim.group("督查督办", members=[supervisor])
    unit = sim.group("市住建局", members=[liaison])
    desk = sim.group("分办中心", members=[clerk])
    await services.bind_chat(svc, None, supervision.id, "supervision", system=True)
    await services.bind_chat(svc, None, unit.id, "unit", unit_code=UNIT, system=True)
    await services.bind_chat(svc, None, desk.id, "dispatch", system=True)
    await services.grant_role(svc, None, PEOPLE.dispatcher, "dispatcher", system=True)
    assert h.clock.now() == ASSIGNED
    number = await file_one(svc)
    await services.assign_case(svc, PEOPLE.dispatcher, number, UNIT, track="routine")
    await h.drained()
    return Scene(h, supervision, unit, desk, number)


async def sweep_at(h: Harness, moment: datetime) -> int:
    """Move the clock and run the deadline sweep as the scheduler would; wait for sending."""
    h.clock.set(moment)
    taken = await services.chase_due(h.svc)
    await h.drained()
    return taken


async def chased(h: Harness) -> Scene:
    """The case chased from its assignment until three working days later."""
    scene = await arrange(h)
    calendar = h.policy.calendar
    assert calendar.add_working_days(ASSIGNED, 0.75) == SIGN_REMINDER
    assert calendar.add_working_days(ASSIGNED, 3) == THREE_DAYS_ON
    assert calendar.add_working_days(SIGN_DUE, 2) == THREE_DAYS_ON
    await sweep_at(h, SIGN_REMINDER)  # the sign reminder
    await sweep_at(h, SIGN_DUE)  # the first overdue notice
    await sweep_at(h, THREE_DAYS_ON)  # notices, and the escalation to supervision
    return scene


def plain(html_text: str) -> str:
    """A rendered HTML template as the reader sees it (tags gone)."""
    return re.sub(r"<[^>]+>", "", html_text)


def compact(text: str) -> str:
    """Text without any whitespace (a PDF's line wrapping and letter spacing removed)."""
    return re.sub(r"\s+", "", text)


def pdf_text_and_fonts(data: bytes) -> tuple[str, set[str]]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    page = reader.pages[0]
    fonts = set()
    for ref in page["/Resources"]["/Font"].values():
        font = ref.get_object()
        fonts.add(str(font.get("/BaseFont")))
        for descendant in font.get("/DescendantFonts", []):
            fonts.add(str(descendant.get_object().get("/BaseFont")))
    return page.extract_text(), fonts


def check_letter(data: bytes, number: str) -> None:
    """The 交办函 names the case, the unit, the lateness and the centre, in a CJK font."""
    text, fonts = pdf_text_and_fonts(data)
    flat = compact(text)
    assert "督办交办函" in flat
    assert number in text
    assert f"{UNIT_NAME}：" in text  # the addressee, on a line of its own
    assert "超期" in text and "现已超期2个工作日" in flat
    assert "市民留言分办中心" in text
    assert "签收时限为2026年12月01日10:00" in flat
    assert "小区电梯坏了三天，老人上下楼很困难，请尽快维修。" in flat
    # A CID font with CJK glyphs: the Chinese comes back out exactly, with no mojibake.
    assert "/STSong-Light" in fonts
    assert "\ufffd" not in text and "?" not in flat


# -- the supervision group ---------------------------------------------------------------------


async def test_supervision_group_hears_of_the_escalation_once(harness: Harness):
    scene = await chased(harness)
    await sweep_at(harness, THREE_DAYS_ON + timedelta(hours=1))  # nothing new
    _ = translator(ZH).gettext
    headline = plain(
        _("<b>{number}</b> is escalated to supervision ({reason}).").format(
            number=scene.number, reason=_("overdue")
        )
    )
    received = [m for m in harness.sim.sent(scene.supervision) if scene.number in m.text]
    assert len(received) == 1, [m.text for m in received]
    assert headline in received[0].text
    assert UNIT_NAME in received[0].text


async def test_supervision_group_receives_the_assignment_letter_as_pdf(harness: Harness):
    scene = await chased(harness)
    letters = [m for m in harness.sim.sent(scene.supervision) if m.document_name]
    assert [m.document_name for m in letters] == [f"交办函-{scene.number}.pdf"]
    [letter] = letters
    assert letter.kind == "document"
    assert scene.number in letter.text  # the cover text goes with it as the caption
    assert letter.document_bytes is not None and letter.document_bytes.startswith(b"%PDF")
    check_letter(letter.document_bytes, scene.number)


async def test_the_letter_rendered_for_an_overdue_escalation(harness: Harness):
    """The renderer's letter, given the facts an overdue escalation carries."""
    scene = await arrange(harness)
    row = await harness.db.fetch_one("SELECT id FROM cases WHERE number = ?", (scene.number,))
    assert row is not None
    ctx = RenderContext(translator(ZH), harness.policy, harness.db)
    rendered = await supervision_escalation(
        ctx,
        {
            "number": scene.number,
            "case_id": row[0],
            "reason": "overdue",
            "units": [UNIT],
            "unit": UNIT,
            "stage": "sign",
            "due": SIGN_DUE.isoformat(),
            "issued_at": THREE_DAYS_ON.isoformat(),
        },
    )
    [(name, data)] = rendered.documents
    assert name == f"交办函-{scene.number}.pdf"
    check_letter(data, scene.number)


# -- the unit group ------------------------------------------------------------------------------


def unit_texts(scene: Scene) -> list[str]:
    return [m.text for m in scene.h.sim.sent(scene.unit) if scene.number in m.text]


async def test_unit_group_receives_the_reminder_and_overdue_notices_in_chinese(
    harness: Harness,
):
    scene = await chased(harness)
    t = translator(ZH)
    _ = t.gettext
    tz = harness.policy.calendar.tz

    def expected(msgid: str, stage: str, due: datetime) -> str:
        assert _(msgid) != msgid, "the catalog must translate it"
        return plain(
            _(msgid).format(
                number=scene.number, stage=_(STAGE_NAMES[stage]), date=t.datetime(due, tz)
            )
        )

    reminder = expected("Reminder: <b>{number}</b> — {stage} is due by {date}.", "sign", SIGN_DUE)
    overdue = "Overdue (催办): <b>{number}</b> — {stage} was due {date}. Please act today."
    sign_overdue = expected(overdue, "sign", SIGN_DUE)
    both = "Overdue (催办): <b>{number}</b> — these deadlines have passed. Please act today."
    both_overdue = "\n".join([
        expected(both, "sign", SIGN_DUE),
        "· " + expected("{stage}: due {date}", "sign", SIGN_DUE),
        "· " + expected("{stage}: due {date}", "reply", REPLY_DUE),
    ])
    assert reminder.startswith("提醒") and sign_overdue.startswith("催办")
    assert both_overdue.startswith("催办") and "到期" in both_overdue
    texts = unit_texts(scene)
    assert sum(reminder in text for text in texts) == 1, texts
    # Sweeps ran at 12-01 10:00 (sign) and 12-03 10:00 (sign again, and reply): the second
    # is one notice naming both deadlines.
    assert sum(sign_overdue in text for text in texts) == 1, texts
    assert sum(both_overdue in text for text in texts) == 1, texts
    assert not any("Overdue" in text or "Reminder" in text for text in texts)


# -- the JobQueue ------------------------------------------------------------------------------


async def test_the_sweeps_are_jobs_that_run_every_minute(harness: Harness):
    assert harness.app.job_queue is not None
    jobs = {job.name: job for job in harness.app.job_queue.jobs()}
    assert {"deadline-sweep", "callback-sweep"} <= set(jobs)
    for name in ("deadline-sweep", "callback-sweep"):
        trigger = jobs[name].job.trigger
        assert trigger.interval == timedelta(seconds=60), (name, trigger)


async def test_the_deadline_sweep_job_catches_up_when_it_runs(harness: Harness):
    """The job itself (what the JobQueue calls each minute) takes the steps that are due."""
    scene = await arrange(harness)
    harness.clock.set(THREE_DAYS_ON)  # no sweep ran since the assignment
    assert harness.app.job_queue is not None
    [job] = harness.app.job_queue.get_jobs_by_name("deadline-sweep")
    await job.run(harness.app)
    await job.run(harness.app)
    await harness.drained()
    received = [m for m in harness.sim.sent(scene.supervision) if scene.number in m.text]
    assert len(received) == 1 and UNIT_NAME in received[0].text
    assert await steps_of(harness, scene.number) == ["CaseEscalated", "OverdueNoticeSent"]


async def steps_of(h: Harness, number: str) -> list[str]:
    rows = await h.db.fetch_all(
        "SELECT e.kind FROM events e JOIN cases c ON c.id = e.case_id WHERE c.number = ?"
        " AND e.kind IN ('OverdueNoticeSent', 'CaseEscalated', 'ReminderSent')",
        (number,),
    )
    return sorted(r[0] for r in rows)


async def test_the_deadline_sweep_runs_by_itself_at_start_up(harness: Harness):
    """The bot was down across the deadlines: the start-up sweep catches up on its own."""
    scene = await arrange(harness)
    harness.clock.set(THREE_DAYS_ON)
    await harness.restart()
    received: SentMessage = await harness.sim.wait_for(
        scene.supervision, lambda m: scene.number in m.text, since=0, timeout=10
    )
    assert UNIT_NAME in received.text
    assert await steps_of(harness, scene.number) == ["CaseEscalated", "OverdueNoticeSent"]

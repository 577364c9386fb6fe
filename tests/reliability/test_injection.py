"""Injection (issue 7 §6): hostile strings in every free-text field are stored verbatim and
shown escaped; callback data and commands never reach SQL unparameterised.

The simulator parses every HTML message the way Telegram does and refuses bad markup, so
"the person sees exactly the string" proves it was escaped (unescaped `<b>` would render
bold and lose the tags; an unescaped `<script>` would be refused and never arrive).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from bot import services
from sandbox import SentMessage, SimUser
from tests.conftest import PEOPLE
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Harness, label
from tests.e2e.test_citizen import file_guided
from tests.reliability._support import (
    City,
    arrange_cases,
    build_city,
    snapshot,
    unhandled_errors,
)

harness = e2e.harness

ROOT = Path(__file__).resolve().parents[2]
INJECTIONS = [
    "'; DROP TABLE cases; --",
    "Robert'); DROP TABLE users;--",
    '" OR "1"="1',
    "1 OR 1=1; DELETE FROM events WHERE 1=1",
    "x' UNION SELECT phone FROM users --",
    "<b>bold</b> and <i>italic</i>",
    "<script>alert('x')</script>",
    '</code><a href="tg://user?id=3001">click</a>',
    "&amp; &lt;b&gt; &#39; &quot;",
    "<unclosed tag & lone ampersand",
    "{number} {0} %s %(name)s {{}}",
    "$(rm -rf /) `id` \\x00",
    "‮ RTL override 𝕌𝕟𝕚𝕔𝕠𝕕𝕖 👨‍👩‍👧",
    "%_ LIKE wildcards \\ and % and _",
]


def shows(message: SentMessage, text: str) -> bool:
    """The person sees the string itself (Telegram's parsed text, not the markup)."""
    return text in message.text


async def citizen_sees(h: Harness, person: SimUser, text: str) -> SentMessage:
    # Private chats are paced at about one message a second: a few may be queued ahead.
    return await h.sim.wait_for(person, lambda m: shows(m, text), since=0, timeout=20)


async def staff_view(city: City, number: str) -> SentMessage:
    """/case NUMBER from the dispatcher: the staff view with its timeline.

    Asked in private: Telegram (and PTB's rate limiter) allow a group 20 messages a minute,
    and the desk group is busy with cards.
    """
    dispatcher = city.people["dispatcher"]
    await dispatcher.send(f"/case {number}")
    timeline = label("zh_Hans", "Timeline")
    return await city.h.sim.wait_for(
        dispatcher, lambda m: m.text.startswith(number) and timeline in m.text)


@pytest.fixture
async def city(harness: Harness) -> City:
    city = await build_city(harness, bind_groups=False)
    await arrange_cases(city)
    return city


async def test_a_description_filed_through_telegram_is_kept_and_shown_verbatim(
    city: City, full_run: bool
):
    h = city.h
    for i, text in enumerate(INJECTIONS if full_run else INJECTIONS[::4]):
        person = h.sim.user(f"注入{i}", language_code="en", started=True)
        number = await file_guided(h, person, text=text)
        row = await h.db.fetch_one("SELECT text FROM cases WHERE number = ?", (number,))
        assert row is not None and row[0] == text
        assert shows(await staff_view(city, number), text)
        await person.send(f"/case {number}")
        assert shows(await h.sim.wait_for(person), text)
    assert unhandled_errors(h) == []


async def test_a_note_and_a_close_reason_keep_their_lines_and_spacing(city: City):
    h, svc = city.h, city.svc
    person = h.sim.user("市民", language_code="en", started=True)
    number = (await services.file_case(
        svc, services.Profile(person.id, person.first_name, None, None, "en"),
        category="housing", district="langya", text="The lift is broken again.")).number
    desk = city.people["dispatcher"]
    note = "第一行：已电话联系\n  第二行  缩进 <b>x</b>\n\n第三行"
    await desk.send(f"/note {number}   {note}\n")
    await h.sim.wait_for(desk, "✓")
    await desk.send(f"/close {number} 重复留言\n见 CZ2026-000001")
    await h.sim.wait_for(desk, "✓")
    rows = await h.db.fetch_all(
        "SELECT e.kind, e.details FROM events e JOIN cases c ON c.id = e.case_id"
        " WHERE c.number = ? AND e.kind IN ('NoteAdded', 'CaseClosed') ORDER BY e.id",
        (number,))
    texts = {kind: json.loads(details) for kind, details in rows}
    assert texts["NoteAdded"]["text"] == note
    assert "重复留言\n见 CZ2026-000001" in texts["CaseClosed"].values()
    assert unhandled_errors(h) == []


async def test_every_free_text_field_is_stored_verbatim_and_shown_escaped(
    city: City, full_run: bool
):
    h, svc = city.h, city.svc
    liaison, desk = city.people["liaison"].id, PEOPLE.dispatcher
    tried = 0
    for i, text in enumerate(INJECTIONS if full_run else INJECTIONS[::3]):
        person = h.sim.user(f"市民{i}", language_code="en", started=True)
        number = (await services.file_case(
            svc, services.Profile(person.id, person.first_name, None, None, "en"),
            category="housing", district="langya", text=f"Case {i}: the lift is broken.")).number
        await services.assign_case(svc, desk, number, "ZJJ", track="routine")
        await services.sign_assignment(svc, liaison, number)
        # A unit's question, and the citizen's answer typed as a Telegram reply.
        await services.ask_citizen(svc, liaison, number, text)
        question = await citizen_sees(h, person, text)
        await person.reply(question, text)
        await h.sim.wait_for(person, "passed on")
        # A progress reply, a leader's instruction and a desk relay.
        await services.post_answer(svc, liaison, number, "interim", f"interim {text}")
        await citizen_sees(h, person, f"interim {text}")
        await services.instruct_case(svc, PEOPLE.leader, number, f"instruct {text}")
        await services.contact_citizen(svc, desk, number, f"relay {text}")
        await citizen_sees(h, person, f"relay {text}")
        # A note typed as a command, then the staff view of the timeline.
        await city.people["dispatcher"].send(f"/note {number} note {text}")
        await h.sim.wait_for(city.people["dispatcher"], "✓")
        view = await staff_view(city, number)
        assert shows(view, f"note {text}"), view.text
        assert shows(view, f"instruct {text}"), view.text
        stored = {
            "question": await h.db.fetch_one(
                "SELECT q.text, q.answer FROM questions q JOIN cases c ON c.id = q.case_id"
                " WHERE c.number = ?", (number,)),
            "answer": await h.db.fetch_one(
                "SELECT a.text FROM answers a JOIN cases c ON c.id = a.case_id"
                " WHERE c.number = ?", (number,)),
        }
        assert tuple(stored["question"] or ()) == (text, text)
        assert tuple(stored["answer"] or ()) == (f"interim {text}",)
        tried += 6
    assert unhandled_errors(h) == []
    assert await h.count("SELECT count(*) FROM outbox WHERE state NOT IN ('sent', 'pending')") \
        == 0, "a message the simulator refused (bad HTML?)"


async def test_reject_return_and_close_reasons_are_shown_verbatim(city: City, full_run: bool):
    h, svc = city.h, city.svc
    liaison, desk = city.people["liaison"].id, PEOPLE.dispatcher
    for i, text in enumerate(INJECTIONS if full_run else INJECTIONS[1::3]):
        person = h.sim.user(f"理由{i}", language_code="en", started=True)

        async def filed(label: str, who: SimUser = person, n: int = i) -> str:
            return (await services.file_case(
                svc, services.Profile(who.id, who.first_name, None, None, "en"),
                category="housing", district="langya", text=f"{label} {n}: noise at night.")).number

        rejected = await filed("rejected")
        await services.reject_case(svc, desk, rejected, "invalid", f"reject {text}")
        await citizen_sees(h, person, f"reject {text}")
        returned = await filed("returned")
        await services.assign_case(svc, desk, returned, "ZJJ", track="routine")
        await services.return_assignment(svc, liaison, returned, "district",
                                         f"return {text}")
        assert shows(await staff_view(city, returned), f"return {text}")
        closed = await filed("closed")
        await services.close_case(svc, desk, closed, f"close {text}")
        assert shows(await staff_view(city, closed), f"close {text}")
    assert unhandled_errors(h) == []


async def test_unit_names_an_admin_types_are_shown_verbatim(city: City):
    h, svc = city.h, city.svc
    admin = city.people["admin"]
    for i, text in enumerate(INJECTIONS):
        await services.save_unit(svc, admin.id, f"INJ{i}", text, create=True)
    await admin.send("/units")
    await h.sim.idle()
    listing = "\n".join(m.text for m in h.sim.sent(admin))
    for text in INJECTIONS:
        assert text in listing, text
    rows = await h.db.fetch_all("SELECT name FROM units WHERE code LIKE 'INJ%' ORDER BY rowid")
    assert [r[0] for r in rows] == INJECTIONS


FORGED_DATA = [
    "d:a:1 OR 1=1:ZJJ", "d:t:1;DROP TABLE cases:r", "d:a:1:ZJJ' OR '1'='1", "r:1' OR '1'='1:s",
    "q:0 UNION SELECT 1", "d:rr:1):invalid", "u:f:1--", "d:pub:-1 OR 1", "lang:en'--",
    "f:c:housing' OR 1=1", "s:aa:1;DELETE FROM events", "d:u:1:99999999999999999999999",
]
FORGED_COMMANDS = [
    "/case CZ2026-000001' OR '1'='1", "/case ' OR 1=1 --", "/search ' OR 1=1 --",
    "/search state:new' OR '1'='1", "/search category:housing\" OR 1=1", "/search %",
    "/search _", "/search unit:ZJJ') OR ('1'='1", "/note CZ2026-000001'); DROP TABLE cases;-- x",
    "/assign CZ2026-000001 ZJJ' OR 1=1", "/track CZ2026-000002 r' OR 1=1",
]


async def test_forged_callback_data_and_commands_change_nothing(harness: Harness,
                                                                full_run: bool):
    h = harness
    city = await build_city(h)
    await arrange_cases(city)
    before = await snapshot(h)
    roles = ("citizen", "outsider", "liaison") if full_run else ("outsider",)
    people = [city.people[r] for r in roles]
    for person in people:
        await person.send("/language")
        menu = await h.sim.wait_for(person, lambda m: bool(m.buttons))
        for data in FORGED_DATA:
            answer = await person.press_data(menu, data)
            assert answer is not None
    card = h.sim.sent(city.desk)[-1]
    for data in FORGED_DATA:
        await city.people["outsider"].press_data(card, data, city.desk)
    for command in FORGED_COMMANDS:
        for person, chat in [(city.people["outsider"], city.desk),
                             (city.people["citizen"], city.people["citizen"].private)]:
            await person.send(command, chat)
    await h.sim.idle()
    assert await snapshot(h) == before
    # Staff commands with SQL in their arguments are parsed, not executed.
    dispatcher = city.people["dispatcher"]
    for command in FORGED_COMMANDS:
        await dispatcher.send(command)
        await h.sim.wait_for(dispatcher)
    results = [m.text for m in h.sim.sent(dispatcher)[-len(FORGED_COMMANDS):]]
    assert not any("CZ2026-00000" in r and "·" in r for r in results[:8]), results
    assert await h.count("SELECT count(*) FROM cases") == 5
    assert unhandled_errors(h) == []


# -- no SQL is built from data -------------------------------------------------------------

SQL_SIGN = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|FROM|VALUES|SET)\b|= \?|\bIN \(")
# Places that format identifiers (never values) into SQL, and the names they may format.
FORMATTED_IDENTIFIERS = {
    "storage/cases.py": {"table", "', '.join(names)", "placeholders", "assignments", "n"},
    "storage/reports.py": {"marks"},
    "bot/ops.py": {"table", "column", "target", "parent", "orphans", "where",
                   "expected.value", "number"},  # doctor: schema names; its hint is printed
    "handlers/staff.py": {"key"},  # /search: key is one of category, district, state
    "tests": set(),
}


def _formats_constants(expr: ast.expr) -> bool:
    """`TEMPLATE.format(done="signed_at", ...)`: only literals from the code go in."""
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "format"
            and all(isinstance(a, ast.Constant) for a in expr.args)
            and all(isinstance(k.value, ast.Constant) for k in expr.keywords))


def _formatted_sql(path: Path) -> list[tuple[int, str]]:
    """(line, expression) for every value formatted into a string that looks like SQL."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(path.read_text(), str(path))
    source = path.read_text()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values
                              if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL_SIGN.search(literal):
                found += [(node.lineno, ast.get_source_segment(source, v.value) or "?")
                          for v in node.values if isinstance(v, ast.FormattedValue)
                          and not _formats_constants(v.value)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "format" and isinstance(node.func.value, ast.Constant)
              and isinstance(node.func.value.value, str) and SQL_SIGN.search(node.func.value.value)
              and node.func.value.value.isupper()):
            found.append((node.lineno, ".format"))
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod)
              and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
              and SQL_SIGN.search(node.left.value)):
            found.append((node.lineno, "%"))
    return found


def test_no_value_is_ever_formatted_into_sql():
    """SQL takes values only as ? parameters; only known identifiers are formatted in."""
    offenders = []
    checked = 0
    for folder in ("storage", "bot", "handlers", "scheduler"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            allowed = FORMATTED_IDENTIFIERS.get(rel, set())
            checked += 1
            offenders += [f"{rel}:{line}: {expr}" for line, expr in _formatted_sql(path)
                          if expr not in allowed]
    assert checked > 40
    assert offenders == []


def test_the_sql_check_catches_a_formatted_value(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        'async def f(uow, number):\n'
        '    await uow.execute(f"SELECT * FROM cases WHERE number = \'{number}\'")\n'
        '    await uow.execute("DELETE FROM cases WHERE id = %s" % number)\n'
        '    await uow.execute(f"SELECT {T.format(col=number)} FROM cases")\n'
        '    await uow.execute(f"SELECT {T.format(col=\'id\')} FROM cases")\n'
    )
    assert [expr for _, expr in _formatted_sql(bad)] == ["number", "%", "T.format(col=number)"]

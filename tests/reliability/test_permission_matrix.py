"""The permission matrix through Telegram and the CLI (issue 7 §4).

bot/domain/permissions.py holds the one table (action × role → allowed);
tests/integration/test_permissions.py checks every cell at the service layer. Here every
cell is acted out as a person would: the command or button a role would use (pressed with
forged callback data where the role never sees the button — a modified client can send
anything), including the prompt a button opens. A cell is refused when the person is told
"not allowed", "not yours", "no such case among yours" or "no longer valid", and nothing
changed; it is let through otherwise (success, or a state error past the gate). Outsiders get
the same answer for a case that exists and one that does not.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.domain.case import Role
from bot.domain.permissions import ALLOWED, Action
from bot.i18n import translator
from sandbox import NoCallbackAnswer, SimUser
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Harness
from tests.reliability._support import (
    ROLES,
    City,
    arrange_cases,
    build_city,
    case_rows,
    config_rows,
    unhandled_errors,
)

harness = e2e.harness

REFUSALS = ("You are not allowed to do this.", "This case is not yours to act on.",
            "No case with that number was found among yours.", "This button is no longer valid.")
ROLE = {"citizen": Role.CITIZEN, "liaison": Role.LIAISON, "dispatcher": Role.DISPATCHER,
        "supervisor": Role.SUPERVISOR, "leader": Role.LEADER, "admin": Role.ADMIN,
        "outsider": None}


@dataclass(frozen=True)
class Form:
    """How a person asks for an action in Telegram: a command, or a button (+ a typed text)."""

    case: str  # which arranged case it acts on
    command: str | None = None  # "/note {number} …"
    button: str | None = None  # "d:w:{id}"
    typed: str | None = None  # the text typed into the prompt the button opens


FORMS: dict[Action, Form] = {
    Action.SET_TRACK: Form("new", command="/track {number} routine"),
    Action.ASSIGN: Form("new", command="/assign {number} ZJJ track=routine"),
    Action.REJECT: Form("new", button="d:rr:{id}:invalid", typed="无法核实，请补充"),
    Action.RULE_RETURN: Form("assigned", button="d:uf:{id}:ZJJ"),
    Action.WAIVE_CO_INPUT: Form("asking", button="d:w:{id}"),
    Action.DECIDE_EXTENSION: Form("asking", command="/extend {number} 2026-12-31 需要协调"),
    Action.REVIEW: Form("answered", button="d:pub:{id}"),
    Action.SIGN: Form("assigned", button="u:s:{id}"),
    Action.RETURN: Form("assigned", button="u:rr:{id}:duty", typed="不属本单位职责"),
    Action.REQUEST_EXTENSION: Form("asking", button="u:e:{id}", typed="2026-12-20 需要协调施工"),
    Action.ANSWER: Form("asking", button="u:i:{id}", typed="正在协调维修"),
    Action.ASK_CITIZEN: Form("asking", button="u:q:{id}", typed="请问是哪一栋？"),
    Action.APPEAL: Form("answered", button="u:ap:{id}", typed="客观原因无法满足"),
    Action.RATE: Form("answered", button="r:{id}:s"),
    Action.ANSWER_QUESTION: Form("asking", button="q:{id}", typed="3号楼东门"),
    Action.VIEW_OWN_CASE: Form("new", command="/case {number}"),
    Action.RULE_APPEAL: Form("answered", button="s:aa:{id}"),
    Action.ESCALATE: Form("asking", command="/escalate {number} supervision"),
    Action.INSTRUCT: Form("asking", command="/instruct {number} 请抓紧办理"),
    Action.NOTE: Form("asking", command="/note {number} 已电话督促"),
    Action.CONTACT_CITIZEN: Form("asking", command="/contact {number} 您好，请问"),
    Action.CLOSE: Form("elsewhere", command="/close {number} 网民撤回"),
    Action.REOPEN: Form("elsewhere", command="/reopen {number} 再次反映"),
    Action.VIEW_CASE: Form("new", command="/case {number}"),
    Action.REPORT: Form("new", command="/report week"),
    Action.MANAGE: Form("new", command="/staff add 4002 leader"),
    Action.ISSUE_JOIN_CODE: Form("new", command="/joincode ZJJ"),
}


SAME_FORM = {Action.VIEW_OWN_CASE: (Action.VIEW_OWN_CASE, Action.VIEW_CASE),
             Action.VIEW_CASE: (Action.VIEW_OWN_CASE, Action.VIEW_CASE)}


def refused(texts: list[str], language: str) -> bool:
    g = translator(language).gettext
    return any(g(r) in text for r in REFUSALS for text in texts)


async def act(city: City, person: SimUser, form: Form, numbers: dict[str, str]) -> list[str]:
    """Do the form as this person in their private chat; return everything they were told."""
    sim = city.h.sim
    number = numbers[form.case]
    row = await city.h.db.fetch_one("SELECT id FROM cases WHERE number = ?", (number,))
    assert row is not None
    told: list[str] = []
    mark = sim.mark()
    if form.command:
        await person.send(form.command.format(number=number, id=row[0]))
        await sim.wait_for(person, timeout=30)  # a report takes a while to draw
        await sim.idle()
        return [m.text for m in sim.sent(person) if m.updated_seq > mark]
    # Buttons live in work groups, where their prompts are answered; a fresh group per
    # press keeps within Telegram's 20 messages a minute per group.
    assert form.button is not None
    group = sim.group("工作群", members=[person])
    menu = await city.h.app.bot.send_message(group.id, "🗂")
    try:
        answer = await person.press_data(menu.message_id, form.button.format(
            number=number, id=row[0]), group)
        told.append(answer.text or "")
    except NoCallbackAnswer:
        told.append("(no answer)")
    await sim.idle()
    prompt = next((m for m in sim.sent(group) if "✍️" in m.text), None)
    if form.typed and prompt is not None:
        await person.reply(prompt, form.typed, group)
        await sim.idle()
    told += [m.text for m in sim.sent(group) if m.updated_seq > mark]
    told += [m.text for m in sim.sent(person) if m.updated_seq > mark]
    return told


@pytest.mark.parametrize("role", ROLES)
async def test_every_cell_of_the_permission_table_through_telegram(
    harness: Harness, role: str, full_run: bool
):
    if not full_run and role in ("supervisor", "leader", "admin"):
        pytest.skip("CI acts out four roles; `--full` all seven")
    city = await build_city(harness, bind_groups=False)
    numbers = await arrange_cases(city)
    person = city.people[role]
    language = "en" if person.language_code == "en" else "zh_Hans"
    assert set(FORMS) == set(Action), "every action of the table has a Telegram form"
    mismatches: list[str] = []
    for action, form in FORMS.items():
        numbers_now = dict(numbers)
        before = (await case_rows(harness), await config_rows(harness))
        told = await act(city, person, form, numbers_now)
        after = (await case_rows(harness), await config_rows(harness))
        # /case is one command for two actions: staff see the staff view, owners theirs.
        allowed = any(ROLE[role] in ALLOWED[a] for a in SAME_FORM.get(action, (action,)))
        if refused(told, language) == allowed:
            mismatches.append(f"{action.value}: {'allowed' if allowed else 'refused'} in the "
                              f"table, but {role} was told {told}")
        if not allowed and before != after:
            mismatches.append(f"{action.value}: refused for {role} yet the state changed")
    assert mismatches == []
    assert unhandled_errors(harness) == []


async def test_outsiders_get_the_same_answer_whether_a_case_exists_or_not(harness: Harness):
    city = await build_city(harness, bind_groups=False)
    numbers = await arrange_cases(city)
    outsider = city.people["outsider"]
    row = await harness.db.fetch_one("SELECT id FROM cases WHERE number = ?", (numbers["new"],))
    assert row is not None
    real_id, real = row[0], numbers["new"]
    for form in FORMS.values():
        answers = []
        for number, case_id in ((real, real_id), ("CZ2026-999999", 999_999)):
            mark = harness.sim.mark()
            if form.command:
                await outsider.send(form.command.format(number=number, id=case_id))
                await harness.sim.wait_for(outsider, timeout=30)
            else:
                assert form.button is not None
                answer = await outsider.press_data(harness.sim.sent(outsider)[-1],
                                                   form.button.format(number=number, id=case_id))
                answers.append(answer.text)
            await harness.sim.idle()
            answers.append(tuple(m.text for m in harness.sim.sent(outsider)
                                 if m.updated_seq > mark))
        existing, missing = answers[: len(answers) // 2], answers[len(answers) // 2:]
        assert existing == missing, (form, existing, missing)


# -- the CLI: the operator on the server acts as the system --------------------------------

CLI_FORMS: dict[Action, Callable[[Path], list[str]]] = {
    Action.REPORT: lambda out: ["report", "weekly", "--week", "2026-W49", "--out", str(out)],
    Action.VIEW_CASE: lambda out: ["export", "cases", "--from", "2026-11-01", "--to",
                                   "2026-12-31", "--out", str(out / "cases.csv")],
    Action.MANAGE: lambda out: ["admin", "add", "4003"],
}


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_the_cli_forms_act_as_the_system_on_the_same_database(harness: Harness,
                                                                    tmp_path: Path):
    """The CLI has no Telegram identity: whoever runs it on the server acts as the system
    (its forms are those of ALLOWED's staff actions an operator needs: reports, exports,
    admins). Each runs against the live database and does what it says."""
    city = await build_city(harness, bind_groups=False)
    await arrange_cases(city)
    env = {**os.environ, "WENZHENG_DATABASE": str(harness.path), "WENZHENG_TOKEN": "1:x"}
    for action, argv in CLI_FORMS.items():
        result = await asyncio.to_thread(run_cli, argv(tmp_path), env)
        assert result.returncode == 0, (action, result.stdout, result.stderr)
    exported = await asyncio.to_thread((tmp_path / "cases.csv").read_text, "utf-8-sig")
    assert exported.count("CZ2026-") == 5
    files = await asyncio.to_thread(lambda: [p.suffix for p in tmp_path.iterdir()])
    assert ".xlsx" in files
    assert await harness.count(
        "SELECT count(*) FROM staff_roles WHERE user_id = 4003 AND role = 'admin'") == 1

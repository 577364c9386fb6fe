"""A city for the abuse, permission, privacy and injection suites, on the e2e Harness.

Every person of every role, every group bound, and helpers to read the database's state
before and after an input (to prove an input changed nothing it must not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot import services
from sandbox import SimChat, SimUser
from tests.conftest import PEOPLE
from tests.e2e.conftest import Harness

ZH = "zh_Hans"
ROLES = ("citizen", "liaison", "dispatcher", "supervisor", "leader", "admin", "outsider")

# Tables whose rows are the system's state; a change to any of them is a state change.
STATE_TABLES = (
    "cases", "events", "assignments", "answers", "questions", "extensions", "ratings",
    "attachments", "staff_roles", "units", "liaisons", "chat_bindings", "join_codes",
)


@dataclass
class City:
    """Everyone and every group, bound and staffed as in production."""

    h: Harness
    people: dict[str, SimUser]  # one person per role
    citizens: list[SimUser]
    desk: SimChat
    supervision: SimChat
    leaders: SimChat
    units: dict[str, SimChat]
    chats: dict[str, SimChat] = field(default_factory=dict)

    @property
    def svc(self) -> services.Services:
        """The running bot's services."""
        return self.h.svc

    def chat_of(self, role: str) -> SimChat:
        """Where a person of this role acts: their group, or their private chat."""
        return {
            "dispatcher": self.desk, "supervisor": self.supervision,
            "leader": self.leaders, "liaison": self.units["ZJJ"],
        }.get(role, self.people[role].private)


async def build_city(h: Harness, citizens: int = 2, *, bind_groups: bool = True) -> City:
    """Staff, liaisons, groups and bindings through the services (as an admin would).

    Without `bind_groups` the groups exist but play no part, so nothing is sent to them:
    for suites that look only at private chats and must not wait on Telegram's limit of
    20 messages a minute per group.
    """
    sim, svc = h.sim, h.svc
    people = {
        "dispatcher": sim.user("分办员", user_id=PEOPLE.dispatcher, started=True,
                               language_code="zh-hans"),
        "supervisor": sim.user("督查员", user_id=PEOPLE.supervisor, started=True,
                               language_code="zh-hans"),
        "leader": sim.user("领导", user_id=PEOPLE.leader, started=True, language_code="zh-hans"),
        "admin": sim.user("管理员", user_id=PEOPLE.admin, started=True, language_code="en"),
        "liaison": sim.user("住建联络员", user_id=PEOPLE.housing, started=True,
                            language_code="zh-hans"),
        "outsider": sim.user("路人甲", user_id=PEOPLE.outsider, started=True,
                             language_code="zh-hans"),
    }
    residents = [
        sim.user("张", last_name=f"市民{i}", username=f"resident_{i}", user_id=PEOPLE.citizen + i,
                 started=True, language_code=("zh-hans", "zh-hant", "en")[i % 3])
        for i in range(citizens)
    ]
    people["citizen"] = residents[0]
    for role in ("dispatcher", "supervisor", "leader"):
        await services.grant_role(svc, None, people[role].id, role, system=True)
    desk = sim.group("分办中心", members=[people["dispatcher"], people["outsider"]])
    supervision = sim.group("督查组", members=[people["supervisor"]])
    leaders = sim.group("领导群", members=[people["leader"]])
    for chat, purpose in [(desk, "dispatch"), (supervision, "supervision"),
                          (leaders, "leaders")]:
        if bind_groups:
            await services.bind_chat(svc, None, chat.id, purpose, system=True)
    units = {}
    for unit, uid in [("ZJJ", PEOPLE.housing), ("CGJ", PEOPLE.city)]:
        person = people["liaison"] if unit == "ZJJ" else sim.user(
            "城管联络员", user_id=uid, started=True, language_code="zh-hans")
        units[unit] = sim.group(f"{unit}办件群", members=[person, people["outsider"]])
        if bind_groups:
            await services.bind_chat(svc, None, units[unit].id, "unit", unit_code=unit,
                                     system=True)
        await services.add_liaison(svc, None, unit, person.id, system=True)
    return City(h, people, residents, desk, supervision, leaders, units)


async def snapshot(h: Harness) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every state table: equal snapshots mean nothing changed."""
    state: dict[str, list[tuple[object, ...]]] = {}
    for table in STATE_TABLES:
        rows = await h.db.fetch_all(f"SELECT * FROM {table}", ())
        state[table] = sorted((tuple(r) for r in rows), key=repr)
    return state


def changed_tables(before: dict[str, list[tuple[object, ...]]],
                   after: dict[str, list[tuple[object, ...]]]) -> list[str]:
    """The tables whose rows differ between two snapshots."""
    return [t for t in before if before[t] != after[t]]


async def file_case(city: City, citizen: SimUser | None = None, *, text: str | None = None,
                    contact: bool = False, category: str = "housing") -> str:
    """File a case for a citizen through the services (the arrangement, not the act)."""
    person = citizen or city.people["citizen"]
    case = await services.file_case(
        city.svc,
        services.Profile(person.id, person.first_name, person.last_name, person.username, ZH),
        category=category, district="langya",
        text=text or f"小区电梯坏了，请尽快维修。编号{city.h.sim.mark()}",
        contact_shared=contact, phone="13912345678" if contact else None,
    )
    return case.number


def unhandled_errors(h: Harness) -> list[str]:
    """Updates that reached the error handler (handlers/common.on_error logs each once)."""
    return [
        f"{r.getMessage()}: {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
        for r in h.log.records
        if r.name == "handlers.common" and r.msg == "update %s failed"
    ]


async def errors_reported(h: Harness) -> int:
    """Failed updates the error handler reported to the desk (outbox rows)."""
    return await h.count("SELECT count(*) FROM outbox WHERE message_key = 'desk.error'")


# Tables that hang off a case, and the column naming the case.
CASE_TABLES = {"cases": "id", "events": "case_id", "assignments": "case_id",
               "answers": "case_id", "questions": "case_id", "extensions": "case_id",
               "ratings": "case_id", "attachments": "case_id"}
CONFIG_TABLES = ("staff_roles", "units", "liaisons", "chat_bindings", "join_codes")


async def case_rows(h: Harness) -> set[tuple[str, tuple[object, ...]]]:
    """Every row of the case tables, tagged with its table; the case id comes first."""
    rows: set[tuple[str, tuple[object, ...]]] = set()
    for table, column in CASE_TABLES.items():
        for row in await h.db.fetch_all(f"SELECT {column}, * FROM {table}", ()):
            rows.add((table, tuple(row)))
    return rows


async def config_rows(h: Harness) -> dict[str, list[tuple[object, ...]]]:
    """The rows that say who may do what and where."""
    return {table: sorted((tuple(r) for r in await h.db.fetch_all(
        f"SELECT * FROM {table}", ())), key=repr) for table in CONFIG_TABLES}


async def arrange_cases(city: City) -> dict[str, str]:
    """Cases in the states people act on: new, assigned, signed with a question, answered,
    and one at another unit. Returns {label: number}."""
    svc, desk, liaison = city.svc, PEOPLE.dispatcher, city.people["liaison"].id
    other = city.citizens[1] if len(city.citizens) > 1 else city.people["citizen"]
    cases = {
        "new": await file_case(city, text="新的留言：路灯坏了一周了，请修理。"),
        "assigned": await file_case(city, text="已分派：小区电梯坏了三天，请维修。"),
        "asking": await file_case(city, text="办理中：楼道漏水严重，请处理。"),
        "answered": await file_case(city, text="已答复：垃圾一周没人清运了。"),
        "elsewhere": await file_case(city, other, text="别的单位：占道经营，噪音很大。",
                                     category="city_management"),
    }
    for label in ("assigned", "asking", "answered"):
        await services.assign_case(svc, desk, cases[label], "ZJJ", track="routine")
    await services.assign_case(svc, desk, cases["elsewhere"], "CGJ", track="routine")
    for label in ("asking", "answered"):
        await services.sign_assignment(svc, liaison, cases[label])
    await services.ask_citizen(svc, liaison, cases["asking"], "请问具体是哪一栋楼？")
    await services.post_answer(svc, liaison, cases["answered"], "final", "已安排清运，谢谢反映。")
    # Private chats are paced at about one message a second (bot/outbox.py).
    await city.h.drained(within=60)
    return cases

"""Shared fixtures: the example policy, a frozen clock, a real SQLite file, staff set up."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import services
from bot.clock import FrozenClock
from bot.config import EXAMPLE_POLICY, load_policy
from bot.domain.policy import Policy
from storage.db import Database
from storage.directory import Profile

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    """A moment in the city's time zone."""
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@dataclass(frozen=True)
class People:
    """Telegram user ids of the people in the fixtures."""

    admin: int = 1000
    dispatcher: int = 1001
    supervisor: int = 1002
    leader: int = 1003
    housing: int = 2001  # liaison of ZJJ (住建局)
    housing_2: int = 2011  # second liaison of ZJJ
    city: int = 2002  # liaison of CGJ (城管局)
    langya: int = 2003  # liaison of LYQ (琅琊区)
    water: int = 2004  # liaison of ZLSGS (自来水公司)
    citizen: int = 3001
    other_citizen: int = 3002
    outsider: int = 4001


PEOPLE = People()
_FILINGS = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--full`: run the reliability suites at full size (CI runs a shorter version)."""
    parser.addoption("--full", action="store_true", default=False,
                     help="run tests/reliability at full size (300 citizens, 10 kills, ...)")


@pytest.fixture(scope="session")
def full_run(request: pytest.FixtureRequest) -> bool:
    """Whether the reliability suites run at full size (`pytest --full`)."""
    return bool(request.config.getoption("--full"))


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The shipped example policy."""
    return load_policy(EXAMPLE_POLICY)


@pytest.fixture
def clock() -> FrozenClock:
    """Monday 2026-11-30 10:00 in the city: a normal working morning."""
    return FrozenClock(local(2026, 11, 30, 10, 0))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file in a temporary folder."""
    database = Database(tmp_path / "wenzheng.db")
    await database.connect()
    yield database
    await database.close()


@pytest.fixture
async def svc(db: Database, policy: Policy, clock: FrozenClock) -> services.Services:
    """Services with the policy's units, staff roles and liaisons in place."""
    s = services.Services(db=db, policy=policy, clock=clock, admins=(PEOPLE.admin,))
    await services.setup_policy_units(s)
    for user, role in [
        (PEOPLE.dispatcher, "dispatcher"),
        (PEOPLE.supervisor, "supervisor"),
        (PEOPLE.leader, "leader"),
    ]:
        await services.grant_role(s, PEOPLE.admin, user, role)
    for unit, user in [
        ("ZJJ", PEOPLE.housing),
        ("ZJJ", PEOPLE.housing_2),
        ("CGJ", PEOPLE.city),
        ("LYQ", PEOPLE.langya),
        ("ZLSGS", PEOPLE.water),
    ]:
        await services.add_liaison(s, PEOPLE.admin, unit, user)
    return s


async def file_one(
    svc: services.Services,
    citizen: int = PEOPLE.citizen,
    *,
    category: str = "housing",
    district: str = "langya",
    text: str | None = None,
    update_id: int | None = None,
) -> str:
    """File a case as a citizen and return its number.

    Without a text, each call writes a slightly different one: the same text twice from one
    citizen would be linked to the first case as a repeat, not filed.
    """
    if text is None:
        text = f"小区电梯坏了三天，老人上下楼很困难，请尽快维修。（{next(_FILINGS)}）"
    case = await services.file_case(
        svc,
        Profile(citizen, first_name="张", last_name="三", username="zhangsan", language="zh_Hans"),
        category=category,
        district=district,
        text=text,
        update_id=update_id,
    )
    return case.number

"""Administration through the real application and the simulator: units, staff, bindings."""

from __future__ import annotations

import re

import pytest

import handlers.admin
from bot import services
from bot.domain import errors
from handlers import common
from sandbox import SimChat, SimUser
from tests.conftest import PEOPLE, file_one
from tests.e2e.conftest import Harness, label

NOT_ALLOWED = label("en", "You are not allowed to do this.")


@pytest.fixture(autouse=True)
def admin_commands(harness: Harness) -> None:
    """Add the admin commands unless `handlers.register` already does.

    They go before the catch-all for unknown commands, where `handlers.register` would
    put them; added after it, private-chat commands would be answered "unknown".
    """
    group = harness.app.handlers.get(0, [])
    if any("bind" in getattr(h, "commands", ()) for h in group):
        return
    before = len(group)
    handlers.admin.register(harness.app)
    added = group[before:]
    del group[before:]
    catch_all = next(
        i for i, h in enumerate(group) if getattr(h, "callback", None) is common.unknown_command
    )
    group[catch_all:catch_all] = added


def admin_of(h: Harness) -> SimUser:
    """The admin named in the settings (user id 1000)."""
    return h.sim.user("管理员", user_id=PEOPLE.admin, started=True, language_code="en")


async def bindings(h: Harness) -> list[tuple[str, int]]:
    """The chat bindings, as (binding, chat id)."""
    rows = await h.db.fetch_all("SELECT binding, chat_id FROM chat_bindings ORDER BY binding")
    return [(row[0], row[1]) for row in rows]


async def bound_group(
    h: Harness, admin: SimUser, title: str, target: str, *members: SimUser
) -> SimChat:
    """A new group the admin binds with /bind TARGET."""
    group = h.sim.group(title, members=[admin, *members])
    await admin.send(f"/bind {target}", chat=group)
    await h.sim.wait_for(group, "This group is now")
    return group


# -- /bind -------------------------------------------------------------------------------------


async def test_admin_binds_the_dispatch_desk_and_a_unit_group(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    desk = sim.group("分办中心", members=[admin])
    await admin.send("/bind dispatch", chat=desk)
    await sim.wait_for(desk, "This group is now the dispatch desk.")
    housing = sim.supergroup("住建局联络群", members=[admin])
    await admin.send("/bind ZJJ", chat=housing)
    await sim.wait_for(housing, "This group is now the group of 市住房和城乡建设局 (ZJJ).")
    assert await bindings(harness) == [("dispatch", desk.id), ("unit:ZJJ", housing.id)]
    row = await harness.db.fetch_one("SELECT title FROM chat_bindings WHERE binding = 'unit:ZJJ'")
    assert row is not None and row[0] == "住建局联络群"


async def test_bind_in_a_private_chat_is_refused(harness: Harness):
    admin = admin_of(harness)
    await admin.send("/bind dispatch")
    await harness.sim.wait_for(admin, "A private chat cannot be bound.")
    assert await bindings(harness) == []


async def test_a_group_already_bound_to_another_part_is_refused(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    housing = await bound_group(harness, admin, "住建局联络群", "ZJJ")
    await admin.send("/bind leaders", chat=housing)
    await sim.wait_for(
        housing, "This group is already the group of 市住房和城乡建设局 (ZJJ). A group plays one"
    )
    await admin.send("/bind CGJ", chat=housing)
    await sim.wait_for(housing, "This group is already the group of 市住房和城乡建设局 (ZJJ).")
    assert await bindings(harness) == [("unit:ZJJ", housing.id)]


async def test_binding_an_unknown_unit_is_refused(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    group = sim.group("某群", members=[admin])
    await admin.send("/bind NOPE", chat=group)
    await sim.wait_for(group, "There is no unit with the code NOPE.")
    await admin.send("/bind", chat=group)
    await sim.wait_for(group, "Usage: /bind dispatch")
    assert await bindings(harness) == []


async def test_someone_who_is_not_admin_cannot_bind_and_nothing_is_written(harness: Harness):
    sim = harness.sim
    await services.grant_role(harness.svc, PEOPLE.admin, PEOPLE.dispatcher, "dispatcher")
    outsider = sim.user("路人", user_id=PEOPLE.outsider, language_code="en")
    dispatcher = sim.user("分办员", user_id=PEOPLE.dispatcher, language_code="en")
    group = sim.group("某群", members=[outsider, dispatcher])
    await outsider.send("/bind dispatch", chat=group)
    await sim.wait_for(group, NOT_ALLOWED)
    await dispatcher.send("/bind ZJJ", chat=group)
    await sim.wait_for(group, NOT_ALLOWED)
    assert await harness.db.fetch_one("SELECT * FROM chat_bindings") is None


# -- /staff ------------------------------------------------------------------------------------


async def roles_of(h: Harness, user_id: int) -> set[str]:
    """The staff roles a user holds."""
    rows = await h.db.fetch_all("SELECT role FROM staff_roles WHERE user_id = ?", (user_id,))
    return {row[0] for row in rows}


async def test_staff_roles_are_given_by_id_and_taken_away(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    await admin.send(f"/staff add {PEOPLE.dispatcher} dispatcher")
    await sim.wait_for(admin, f"{PEOPLE.dispatcher} now has the role dispatcher.")
    await admin.send(f"/staff add {PEOPLE.dispatcher} dispatcher")
    await sim.wait_for(admin, f"{PEOPLE.dispatcher} already has the role dispatcher.")
    assert await roles_of(harness, PEOPLE.dispatcher) == {"dispatcher"}
    await admin.send(f"/staff remove {PEOPLE.dispatcher} dispatcher")
    await sim.wait_for(admin, f"{PEOPLE.dispatcher} no longer has the role dispatcher.")
    assert await roles_of(harness, PEOPLE.dispatcher) == set()


async def test_staff_roles_are_given_by_replying_to_the_person(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    colleague = sim.user("李", last_name="四", user_id=PEOPLE.supervisor, language_code="en")
    office = sim.group("办公室", members=[admin, colleague])
    hello = await colleague.send("大家好", chat=office)
    await admin.send("/staff add supervisor", chat=office, reply_to=hello)
    await sim.wait_for(office, f"李 四 ({PEOPLE.supervisor}) now has the role supervisor.")
    assert await roles_of(harness, PEOPLE.supervisor) == {"supervisor"}


async def test_staff_roles_are_given_by_a_known_username(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    leader = sim.user("王", user_id=PEOPLE.leader, username="wang_leader", language_code="en")
    await admin.send("/staff add @wang_leader leader")
    await sim.wait_for(admin, "I don't know @wang_leader.")
    await leader.send("/start")
    await sim.wait_for(leader)
    await admin.send("/staff add @wang_leader leader")
    await sim.wait_for(admin, "@wang_leader now has the role leader.")
    assert await roles_of(harness, PEOPLE.leader) == {"leader"}


@pytest.mark.parametrize(
    "command",
    [
        f"/staff add {PEOPLE.dispatcher} boss",
        f"/staff promote {PEOPLE.dispatcher} dispatcher",
        "/staff add dispatcher",
        "/staff",
        f"/staff add {PEOPLE.dispatcher} dispatcher extra",
    ],
)
async def test_staff_with_bad_arguments_gets_the_usage_and_changes_nothing(
    harness: Harness, command: str
):
    admin = admin_of(harness)
    await admin.send(command)
    await harness.sim.wait_for(admin, "Usage: /staff add USER ROLE")
    assert await roles_of(harness, PEOPLE.dispatcher) == set()


async def test_someone_who_is_not_admin_cannot_give_roles(harness: Harness):
    outsider = harness.sim.user("路人", user_id=PEOPLE.outsider, language_code="en")
    await outsider.send(f"/staff add {PEOPLE.outsider} admin")
    await harness.sim.wait_for(outsider, NOT_ALLOWED)
    assert await roles_of(harness, PEOPLE.outsider) == set()


# -- /liaison ----------------------------------------------------------------------------------


async def liaisons_of(h: Harness, unit: str) -> set[int]:
    """The liaisons of a unit."""
    rows = await h.db.fetch_all("SELECT user_id FROM liaisons WHERE unit_code = ?", (unit,))
    return {row[0] for row in rows}


async def test_liaisons_are_added_and_removed(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    unit = "市住房和城乡建设局 (ZJJ)"
    await admin.send(f"/liaison add ZJJ {PEOPLE.housing}")
    await sim.wait_for(admin, f"{PEOPLE.housing} is now a liaison of {unit}.")
    assert await liaisons_of(harness, "ZJJ") == {PEOPLE.housing}
    await admin.send(f"/liaison remove ZJJ {PEOPLE.housing}")
    await sim.wait_for(admin, f"{PEOPLE.housing} is no longer a liaison of {unit}.")
    await admin.send(f"/liaison remove ZJJ {PEOPLE.housing}")
    await sim.wait_for(admin, f"{PEOPLE.housing} was not a liaison of {unit}.")
    assert await liaisons_of(harness, "ZJJ") == set()


async def test_a_liaison_is_added_by_replying_to_them_in_the_units_group(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    liaison = sim.user("赵", user_id=PEOPLE.housing, language_code="en")
    group = await bound_group(harness, admin, "住建局联络群", "ZJJ", liaison)
    hello = await liaison.send("我是住建局的联络员", chat=group)
    await admin.send("/liaison add ZJJ", chat=group, reply_to=hello)
    await sim.wait_for(group, f"赵 ({PEOPLE.housing}) is now a liaison of")
    assert await liaisons_of(harness, "ZJJ") == {PEOPLE.housing}


async def test_liaison_commands_with_bad_arguments_change_nothing(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    await admin.send(f"/liaison add NOPE {PEOPLE.housing}")
    await sim.wait_for(admin, "There is no unit with the code NOPE.")
    await admin.send("/liaison add ZJJ")
    await sim.wait_for(admin, "Usage: /liaison add UNIT_CODE USER")
    await admin.send(f"/liaison swap ZJJ {PEOPLE.housing}")
    await sim.wait_for(admin, "Usage: /liaison add UNIT_CODE USER")
    assert await harness.count("SELECT count(*) FROM liaisons") == 0


# -- /unit and /units --------------------------------------------------------------------------


async def test_a_disabled_unit_cannot_be_assigned(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    await admin.send("/unit add XFJ 市信访局")
    await sim.wait_for(admin, "Unit 市信访局 (XFJ) added.")
    await admin.send("/unit add XFJ 市信访局")
    await sim.wait_for(admin, "A unit with the code XFJ already exists.")
    await admin.send("/unit edit XFJ 市信访事项办理中心")
    await sim.wait_for(admin, "Unit 市信访事项办理中心 (XFJ) renamed.")
    await admin.send("/unit disable XFJ")
    await sim.wait_for(admin, "Unit 市信访事项办理中心 (XFJ) is disabled")
    row = await harness.db.fetch_one("SELECT name, is_active FROM units WHERE code = 'XFJ'")
    assert row is not None and tuple(row) == ("市信访事项办理中心", 0)
    number = await file_one(harness.svc)
    with pytest.raises(errors.UnitDisabled):
        await services.assign_case(harness.svc, PEOPLE.admin, number, "XFJ", track="routine")
    await admin.send("/unit enable XFJ")
    await sim.wait_for(admin, "Unit 市信访事项办理中心 (XFJ) is enabled again.")
    assert await harness.count("SELECT is_active FROM units WHERE code = 'XFJ'") == 1


async def test_a_policy_unit_disabled_and_enabled_again_receives_cases(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    number = await file_one(harness.svc)
    await admin.send("/unit disable ZJJ")
    await sim.wait_for(admin, "Unit 市住房和城乡建设局 (ZJJ) is disabled")
    with pytest.raises(errors.UnitDisabled):
        await services.assign_case(harness.svc, PEOPLE.admin, number, "ZJJ", track="routine")
    await admin.send("/unit enable ZJJ")
    await sim.wait_for(admin, "is enabled again.")
    case = await services.assign_case(harness.svc, PEOPLE.admin, number, "ZJJ", track="routine")
    assert case.state == "assigned"


async def test_a_unit_added_by_an_admin_can_receive_cases(harness: Harness):
    admin = admin_of(harness)
    await admin.send("/unit add XFJ 市信访局")
    await harness.sim.wait_for(admin, "Unit 市信访局 (XFJ) added.")
    number = await file_one(harness.svc)
    await services.assign_case(harness.svc, PEOPLE.admin, number, "XFJ", track="routine")


async def test_a_unit_can_sit_under_a_parent(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    await admin.send("/unit add TJZD 特警支队 NOPE")
    await sim.wait_for(admin, "There is no unit with the code NOPE.")
    await admin.send("/unit add TJZD 特警支队 GAJ")
    await sim.wait_for(admin, "Unit 特警支队 (TJZD) added.")
    row = await harness.db.fetch_one("SELECT parent_code FROM units WHERE code = 'TJZD'")
    assert row is not None and row[0] == "GAJ"


@pytest.mark.parametrize(
    "command",
    ["/unit", "/unit add XFJ", "/unit rename XFJ 市信访局", "/unit disable", "/unit add 1X 名称"],
)
async def test_unit_with_bad_arguments_changes_nothing(harness: Harness, command: str):
    admin = admin_of(harness)
    before = await harness.count("SELECT count(*) FROM units")
    await admin.send(command)
    reply = await harness.sim.wait_for(admin)
    assert "Usage: /unit add" in reply.text or "A unit code starts with a letter" in reply.text
    assert await harness.count("SELECT count(*) FROM units") == before


async def test_units_lists_every_unit_with_its_liaisons_and_group(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    await services.add_liaison(harness.svc, PEOPLE.admin, "ZJJ", PEOPLE.housing)
    await bound_group(harness, admin, "住建局联络群", "ZJJ")
    await services.set_unit_active(harness.svc, PEOPLE.admin, "JYJ", False)
    await admin.send("/units")
    listing = await sim.wait_for(admin, "Units (")
    assert "ZJJ 市住房和城乡建设局 — active · 1 liaison · group bound" in listing.text
    assert "JYJ 市教育局 — ⛔ disabled · 0 liaisons · no group bound" in listing.text
    assert "JJZD 市公安局交警支队 (under GAJ)" in listing.text


async def test_units_are_for_staff_only(harness: Harness):
    outsider = harness.sim.user("路人", user_id=PEOPLE.outsider, language_code="en")
    await outsider.send("/units")
    reply = await harness.sim.wait_for(outsider)
    assert reply.text == NOT_ALLOWED
    await outsider.send("/unit add XFJ 市信访局")
    await harness.sim.wait_for(outsider, NOT_ALLOWED)
    assert await harness.count("SELECT count(*) FROM units WHERE code = 'XFJ'") == 0


# -- /joincode and /join -----------------------------------------------------------------------


async def test_a_join_code_makes_a_liaison_once_and_only_in_its_units_group(harness: Harness):
    sim, admin = harness.sim, admin_of(harness)
    newcomer = sim.user("钱", user_id=PEOPLE.housing, language_code="en")
    latecomer = sim.user("孙", user_id=PEOPLE.housing_2, language_code="en")
    housing = await bound_group(harness, admin, "住建局联络群", "ZJJ", newcomer, latecomer)
    city = await bound_group(harness, admin, "城管局联络群", "CGJ", newcomer)
    await admin.send("/joincode ZJJ")
    issued = await sim.wait_for(admin, "One-time join code for 市住房和城乡建设局 (ZJJ)")
    match = re.search(r"/join ([0-9A-F]{8})", issued.text)
    assert match is not None
    code = match.group(1)

    await newcomer.send(f"/join {code}", chat=city)
    await sim.wait_for(city, "This join code works only in the group of the unit")
    await newcomer.send(f"/join {code}")
    await sim.wait_for(newcomer, "Usage: /join CODE")
    assert await liaisons_of(harness, "ZJJ") == set()
    assert await liaisons_of(harness, "CGJ") == set()

    await newcomer.send(f"/join {code}", chat=housing)
    await sim.wait_for(housing, "钱 is now a liaison of 市住房和城乡建设局 (ZJJ).")
    assert await liaisons_of(harness, "ZJJ") == {PEOPLE.housing}

    await latecomer.send(f"/join {code}", chat=housing)
    await sim.wait_for(housing, "This join code is not valid")
    assert await liaisons_of(harness, "ZJJ") == {PEOPLE.housing}


async def test_join_codes_are_issued_by_the_desk_only(harness: Harness):
    outsider = harness.sim.user("路人", user_id=PEOPLE.outsider, language_code="en")
    await outsider.send("/joincode ZJJ")
    await harness.sim.wait_for(outsider, NOT_ALLOWED)
    admin = admin_of(harness)
    await admin.send("/joincode NOPE")
    await harness.sim.wait_for(admin, "There is no unit with the code NOPE.")
    assert await harness.count("SELECT count(*) FROM join_codes") == 0

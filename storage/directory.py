"""Users, staff roles, units, liaisons and chat bindings."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Reader, UnitOfWork


@dataclass(frozen=True)
class Profile:
    """What Telegram tells us of a user; stored so staff can see identities (DESIGN §7)."""

    user_id: int
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language: str | None = None


async def upsert_user(uow: UnitOfWork, profile: Profile, now_db: int) -> None:
    """Create or refresh a user; a language chosen with /language is never overridden."""
    await uow.execute(
        "INSERT INTO users(id, first_name, last_name, username, language, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET"
        "  first_name = coalesce(excluded.first_name, first_name),"
        "  last_name = coalesce(excluded.last_name, last_name),"
        "  username = coalesce(excluded.username, username),"
        "  language = CASE WHEN language_chosen THEN language"
        "                  ELSE coalesce(excluded.language, language) END,"
        "  updated_at = excluded.updated_at",
        (
            profile.user_id,
            profile.first_name,
            profile.last_name,
            profile.username,
            profile.language,
            now_db,
            now_db,
        ),
    )


async def ensure_user(uow: UnitOfWork, user_id: int, now_db: int) -> None:
    """Make sure a row exists for a user known only by id (e.g. an admin from settings)."""
    await uow.execute(
        "INSERT INTO users(id, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING",
        (user_id, now_db, now_db),
    )


async def roles_of(uow: Reader, user_id: int | None) -> frozenset[str]:
    """The staff roles a user holds."""
    if user_id is None:
        return frozenset()
    rows = await uow.fetch_all("SELECT role FROM staff_roles WHERE user_id = ?", (user_id,))
    return frozenset(r[0] for r in rows)


async def units_of(uow: Reader, user_id: int | None) -> frozenset[str]:
    """The active units a user is a liaison of."""
    if user_id is None:
        return frozenset()
    rows = await uow.fetch_all(
        "SELECT l.unit_code FROM liaisons l JOIN units u ON u.code = l.unit_code"
        " WHERE l.user_id = ? AND u.is_active",
        (user_id,),
    )
    return frozenset(r[0] for r in rows)


async def grant_role(
    uow: UnitOfWork, user_id: int, role: str, granted_by: int | None, now_db: int
) -> bool:
    """Give a staff role; False if the user had it already."""
    await ensure_user(uow, user_id, now_db)
    row = await uow.fetch_one(
        "INSERT INTO staff_roles(user_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING user_id",
        (user_id, role, granted_by, now_db),
    )
    return row is not None


async def revoke_role(uow: UnitOfWork, user_id: int, role: str) -> bool:
    """Take a staff role away; False if the user did not have it."""
    row = await uow.fetch_one(
        "DELETE FROM staff_roles WHERE user_id = ? AND role = ? RETURNING user_id", (user_id, role)
    )
    return row is not None


async def sync_policy_units(
    uow: UnitOfWork, units: list[tuple[str, str, str | None]], now_db: int
) -> int:
    """Create the policy's units that the database lacks.

    Units added by admins stay; a unit renamed or disabled by an admin stays so.
    Returns how many units were created.
    """
    before = await uow.fetch_one("SELECT count(*) FROM units")
    # Parents first, so the foreign key holds within the transaction.
    ordered = sorted(units, key=lambda u: u[2] is not None)
    for code, name, parent in ordered:
        await uow.execute(
            "INSERT INTO units(code, name, parent_code, from_policy, created_at)"
            " VALUES (?, ?, ?, 1, ?)"
            # The database is the source of truth once a unit exists: admins' renames stay.
            " ON CONFLICT(code) DO UPDATE SET from_policy = 1",
            (code, name, parent, now_db),
        )
    after = await uow.fetch_one("SELECT count(*) FROM units")
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


async def unit_is_active(uow: UnitOfWork, code: str) -> bool | None:
    """True/False for a known unit, None for an unknown code."""
    row = await uow.fetch_one("SELECT is_active FROM units WHERE code = ?", (code,))
    return None if row is None else bool(row[0])


async def add_liaison(
    uow: UnitOfWork, unit_code: str, user_id: int, added_by: int | None, now_db: int
) -> bool:
    """Make a user a liaison of a unit; False if they were already."""
    await ensure_user(uow, user_id, now_db)
    row = await uow.fetch_one(
        "INSERT INTO liaisons(unit_code, user_id, added_by, added_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING user_id",
        (unit_code, user_id, added_by, now_db),
    )
    return row is not None


async def remove_liaison(uow: UnitOfWork, unit_code: str, user_id: int) -> bool:
    """Remove a liaison; False if they were not one."""
    row = await uow.fetch_one(
        "DELETE FROM liaisons WHERE unit_code = ? AND user_id = ? RETURNING user_id",
        (unit_code, user_id),
    )
    return row is not None


async def unit_names(db: Reader) -> dict[str, str]:
    """Every unit's current name (admins may add and rename units at run time)."""
    rows = await db.fetch_all("SELECT code, name FROM units")
    return {str(r[0]): str(r[1]) for r in rows}


async def active_units(db: Reader) -> list[tuple[str, str]]:
    """Every unit a case can go to now, as (code, stored name), oldest first."""
    rows = await db.fetch_all(
        "SELECT code, name FROM units WHERE is_active ORDER BY created_at, code"
    )
    return [(str(r[0]), str(r[1])) for r in rows]

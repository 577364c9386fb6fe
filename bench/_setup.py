"""Arranging the bot's world for a benchmark through the services, as an admin would."""

from __future__ import annotations

from typing import Any

from bot import services


async def prepare(svc: services.Services, setup: dict[str, Any]) -> None:
    """Add units, bind group chats, name staff and liaisons (all as the system).

    `setup`: {"chats": {"dispatch": id, ...}, "staff": [[user, role], ...],
    "units": [{"code", "name", "chat", "liaison", "new"}, ...]}.
    """
    for purpose, chat_id in setup.get("chats", {}).items():
        await services.bind_chat(svc, None, int(chat_id), purpose, system=True)
    for user, role in setup.get("staff", []):
        await services.grant_role(svc, None, int(user), role, system=True)
    for unit in setup.get("units", []):
        if unit.get("new"):
            await services.save_unit(
                svc, None, unit["code"], unit["name"], create=True, system=True
            )
        await services.bind_chat(
            svc, None, int(unit["chat"]), "unit", unit_code=unit["code"], system=True
        )
        await services.add_liaison(svc, None, unit["code"], int(unit["liaison"]), system=True)

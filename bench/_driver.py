"""What the intake and chain benchmarks share: the watched simulator, the bot's process,
and the rows of the table (the JSON contract of `python -m bench`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sandbox import BotApiSimulator, SentMessage
from sandbox.people import ChatLike

ROOT = Path(__file__).resolve().parent.parent


class WatchedSimulator(BotApiSimulator):
    """The simulator with a log of changes per chat, and a wake-up per chat.

    `sim.wait_for` wakes every waiter on every change anywhere and rescans the chat; with
    2,000 people waiting at once the driver, not the bot, would be what is measured. Here
    every call that sends or edits a message appends that message to its chat's log and
    wakes only that chat's waiters, who look at the entries after their cursor.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._changes: dict[int, list[SentMessage]] = {}
        self.last_change = time.monotonic()  # when the bot last sent or edited a message
        self._chat_events: dict[int, asyncio.Event] = {}

    def handler(self, method: str) -> Any:
        found = super().handler(method)
        if found is None:
            return None

        async def watched(params: Any) -> Any:
            result = await found(params)
            self._changed(params.values, result)
            return result

        watched.__name__ = found.__name__  # the simulator names the method after it
        return watched

    def _changed(self, values: dict[str, Any], result: Any) -> None:
        try:
            chat_id = int(values.get("chat_id", ""))
        except ValueError:
            return
        message_id = result.get("message_id") if isinstance(result, dict) else None
        message_id = message_id or values.get("message_id")
        chat = self._chats.get(chat_id)
        if chat is None or message_id is None:
            return
        message = chat.sent_by_id.get(int(message_id))
        if message is None:
            return
        self._changes.setdefault(chat_id, []).append(message)
        self.last_change = time.monotonic()
        event = self._chat_events.get(chat_id)
        if event is not None:
            event.set()

    def cursor(self, chat: ChatLike) -> int:
        """A point in a chat's log: `next_change(after=...)` looks only at later entries."""
        return len(self._changes.get(self.chat(chat).id, []))

    async def next_change(
        self,
        chat: ChatLike,
        predicate: Callable[[SentMessage], bool],
        *,
        after: int,
        timeout: float = 1800.0,  # noqa: ASYNC109 - a bound, not an API
    ) -> SentMessage:
        """The first message sent or edited in `chat` after the cursor that matches now."""
        chat_id = self.chat(chat).id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = after
        while True:
            event = self._chat_events.setdefault(chat_id, asyncio.Event())
            event.clear()
            changes = self._changes.get(chat_id, [])
            for message in changes[seen:]:
                if predicate(message):
                    return message
            seen = len(changes)
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [m.text[:60] for m in changes[-3:]]
                raise TimeoutError(f"nothing matching in chat {chat_id} in {timeout}s: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)


def has_button(label: str) -> Callable[[SentMessage], bool]:
    """A message showing a button with this label."""
    return lambda message: any(label in row for row in message.buttons)


@dataclass
class BotFigures:
    """What the bot's process measured in the window."""

    cpu_s: float
    wall_s: float
    updates: int
    by_type: dict[str, int]
    latency_p50_s: float | None
    latency_p99_s: float | None
    latency_max_s: float | None

    @property
    def cpu_ms_per_update(self) -> float | None:
        """Bot CPU milliseconds per update handled."""
        return self.cpu_s * 1000 / self.updates if self.updates else None


class BotProcess:
    """`bench._botproc` in a child process: started, measured between go and stop."""

    def __init__(
        self,
        sim: BotApiSimulator,
        kind: str,
        backend: str,
        *,
        db: Path | None = None,
        setup: dict[str, Any] | None = None,
        profile: Path | None = None,
        log: Path | None = None,
        root: Path = ROOT,
    ) -> None:
        self.root = root  # the checkout whose bot runs (another one for a before/after)
        self.args = [
            sys.executable, "-m", "bench._botproc", "--kind", kind, "--backend", backend,
            "--token", sim.token, "--base-url", sim.base_url, "--file-url", sim.file_base_url,
        ]
        if db is not None:
            self.args += ["--db", str(db)]
        if setup:
            self.args += ["--setup", json.dumps(setup)]
        if profile is not None:
            self.args += ["--profile", str(profile)]
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def _line(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.process is not None and self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            code = await self.process.wait()
            where = f"; see {self.log}" if self.log else ""
            raise RuntimeError(f"the bot process ended (exit {code}){where}")
        return json.loads(raw)

    async def start(self) -> None:
        """Start the bot and wait until it polls."""
        env = {**os.environ, "PYTHONPATH": str(self.root), "PTB_TIMEDELTA": "true"}
        if self.log is None:
            stderr: Any = asyncio.subprocess.DEVNULL
            self.process = await asyncio.create_subprocess_exec(
                *self.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, cwd=self.root, env=env,
            )
        else:
            with self.log.open("ab") as stderr:  # the child keeps its own copy
                self.process = await asyncio.create_subprocess_exec(
                    *self.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=stderr, cwd=self.root, env=env,
                )
        await self._line(120)

    def _tell(self, word: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())

    async def go(self) -> None:
        """Start the measured window."""
        self._tell("go")
        assert self.process is not None and self.process.stdin is not None
        await self.process.stdin.drain()
        await self._line(60)

    async def stop(self) -> BotFigures:
        """End the window, collect the figures, wait for the bot to shut down."""
        self._tell("stop")
        figures = BotFigures(**await self._line(60))
        assert self.process is not None
        await asyncio.wait_for(self.process.wait(), 60)
        return figures

    async def kill(self) -> None:
        """Stop a bot left running by a failure."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@dataclass
class Row:
    """One row of `python -m bench`'s table."""

    section: str
    name: str
    left: float | None
    right: float | None
    left_label: str = "Wenzheng"
    right_label: str = "echo bot"
    ratio: float | None = None
    target: str = "-"
    ok: bool | None = None
    digits: int = 1


def ratio(left: float | None, right: float | None) -> float | None:
    """left / right when both are measured."""
    return left / right if left is not None and right else None


def table(rows: list[Row]) -> str:
    """The rows as a readable table."""

    def cell(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    header = ["section", "figure", "left", "right", "ratio", "target", "ok"]
    lines = [
        [
            r.section,
            r.name,
            f"{cell(r.left, r.digits)} ({r.left_label})" if r.left is not None else "-",
            f"{cell(r.right, r.digits)} ({r.right_label})" if r.right is not None else "-",
            cell(r.ratio, 2),
            r.target,
            {True: "yes", False: "NO", None: "-"}[r.ok],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def write_json(path: Path, rows: list[Row], data: dict[str, Any]) -> None:
    """`{"figures": [row, ...], "data": {...}}` for the runner to merge."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"figures": [asdict(r) for r in rows], "data": data}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

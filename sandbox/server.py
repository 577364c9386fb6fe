"""The HTTP face of the simulator: an aiohttp server speaking the Bot API.

Point PTB at it with ``ApplicationBuilder().token(sim.token).base_url(sim.base_url)
.base_file_url(sim.file_base_url)``; the bot then runs unchanged against the simulated
Telegram, including its errors, flood limits and injected network faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox.api import BotApiMethods, Params, Upload
from sandbox.errors import ApiError, NoCallbackAnswer
from sandbox.limits import FaultConfig, FaultInjector, RateLimiter, RateLimits
from sandbox.records import RequestRecord

__all__ = ["BotApiSimulator"]

_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,}$")
_MAX_BODY = 60 * 1024 * 1024
_BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def _json_response(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
    )


class BotApiSimulator(BotApiMethods):
    """A local Telegram Bot API server with simulated people, for tests and the demo.

    Options: ``rate_limits`` (False, True for Telegram-like defaults, or a
    :class:`~sandbox.limits.RateLimits`), ``seed`` (ids, file ids and fault draws),
    ``bot_username``/``bot_name``/``bot_id``, ``privacy_mode`` (groups deliver only
    commands, mentions and replies to the bot, like Telegram's default), ``host``/``port``,
    ``clock`` (epoch seconds for message dates) and ``callback_query_ttl`` (seconds a
    callback query can still be answered).
    """

    def __init__(
        self,
        *,
        rate_limits: bool | RateLimits = False,
        seed: int = 0,
        bot_username: str = "wenzheng_bot",
        bot_name: str = "问政",
        bot_id: int | None = None,
        privacy_mode: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        callback_query_ttl: float = 15.0,
    ) -> None:
        """Configure the simulator; nothing listens until :meth:`start`."""
        super().__init__(
            seed=seed,
            bot_username=bot_username,
            bot_name=bot_name,
            bot_id=bot_id,
            privacy_mode=privacy_mode,
            clock=clock,
            callback_query_ttl=callback_query_ttl,
        )
        self.host = host
        self.port = port
        self.faults = FaultInjector(self.rng)
        if rate_limits:
            self.enable_rate_limits(rate_limits if isinstance(rate_limits, RateLimits) else None)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._delays: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """Value for ``ApplicationBuilder().base_url(...)``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        """Value for ``ApplicationBuilder().base_file_url(...)``."""
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is listening."""
        return self._runner is not None

    async def start(self) -> None:
        """Start listening (on an ephemeral port unless one was given)."""
        if self._runner is not None:
            return
        self._closing = False
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        """Stop listening; waiting long polls return empty and pending presses fail."""
        if self._runner is None:
            return
        self._closing = True
        self._stopping.set()
        self._notify()
        for pending in self._callbacks.values():
            if not pending.future.done():
                pending.future.set_exception(NoCallbackAnswer("the simulator was stopped"))
                # Mark it retrieved: a press() that already gave up must not log it at GC.
                pending.future.exception()
        # Give handlers woken above a moment to answer before the sockets close.
        await asyncio.sleep(0.01)
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotApiSimulator:
        """``async with BotApiSimulator() as sim:`` starts it."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving the block."""
        await self.stop()

    # ------------------------------------------------------------------ knobs

    def enable_rate_limits(self, limits: RateLimits | None = None) -> None:
        """Turn Telegram-like flood limits on (fresh buckets)."""
        self.rate_limiter = RateLimiter(limits)

    def disable_rate_limits(self) -> None:
        """Turn flood limits off."""
        self.rate_limiter = None

    def set_faults(
        self,
        *,
        error_rate: float = 0.0,
        error_status: int | None = None,
        delay_rate: float = 0.0,
        delay_seconds: float = 0.0,
        drop_rate: float = 0.0,
        reset_rate: float = 0.0,
        throttle_rate: float = 0.0,
        throttle_retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Inject faults from now on (replacing earlier settings, keeping forced 429s).

        ``error_rate``: share of calls answered 500/502 (``error_status`` picks one; default
        random). ``delay_rate``/``delay_seconds``: share of calls whose answer is held back
        after the call took effect, as when Telegram is slow and the client times out.
        ``drop_rate``: share of calls whose connection is closed without an answer, also
        after the call took effect. ``reset_rate``: share of calls whose connection is
        closed before the call takes effect (it never reached Telegram). ``throttle_rate``/
        ``throttle_retry_after``: share of calls answered 429 with that retry_after.
        ``methods``: restrict to these methods; by default every method except getUpdates.
        Each injected fault is counted in ``stats.faults`` by kind and in
        ``stats.fault_methods`` by (kind, method).
        """
        cfg = self.faults.config
        self.faults.config = FaultConfig(
            error_rate=error_rate,
            error_status=error_status,
            delay_rate=delay_rate,
            delay_seconds=delay_seconds,
            drop_rate=drop_rate,
            reset_rate=reset_rate,
            throttle_rate=throttle_rate,
            throttle_retry_after=throttle_retry_after,
            methods=FaultConfig.normalise(methods),
            forced_429=cfg.forced_429,
            forced_retry_after=cfg.forced_retry_after,
            forced_methods=cfg.forced_methods,
        )

    def force_429(
        self, count: int = 1, retry_after: int = 1, methods: Iterable[str] | None = None
    ) -> None:
        """Answer the next ``count`` calls (default: any method but getUpdates) with 429."""
        cfg = self.faults.config
        cfg.forced_429 = count
        cfg.forced_retry_after = retry_after
        cfg.forced_methods = FaultConfig.normalise(methods)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self.faults.config = FaultConfig()

    # ------------------------------------------------------------------ HTTP

    async def _read_params(self, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, Upload] = {}
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON object") from None
                if isinstance(body, dict):
                    values.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = Upload(value.filename, value.content_type, value.file.read())
                    else:
                        values[key] = value
        return Params(values, files)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method = request.match_info["method"]
        if not _TOKEN_RE.match(token):
            return _json_response(
                401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        handler = self.handler(method)
        canonical = handler.__name__[2:] if handler is not None else method
        polling = canonical == "getUpdates"
        if not polling:
            self._inflight += 1
            self._touch()
        self.stats.calls[canonical] += 1
        try:
            return await self._dispatch(request, canonical, handler)
        finally:
            if not polling:
                self._inflight -= 1
                self._touch()

    async def _dispatch(
        self, request: web.Request, canonical: str, handler: Any
    ) -> web.StreamResponse:
        params = Params({}, {})
        try:
            params = await self._read_params(request)
            if handler is None:
                raise ApiError(404, "Not Found")
            fault = self.faults.decide(canonical)
            if fault is not None:
                self.stats.fault_methods[(fault.kind, canonical)] += 1
            if fault is not None and fault.kind == "reset":
                self.stats.faults["reset"] += 1
                self._record(canonical, params, 0, "connection reset")
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)  # never reaches the client
            if fault is not None and fault.kind in ("forced_429", "throttle"):
                self.stats.faults[fault.kind] += 1
                raise ApiError(
                    429,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    {"retry_after": fault.retry_after},
                )
            if fault is not None and fault.kind == "error":
                self.stats.faults[f"error_{fault.status}"] += 1
                self.stats.faults["error"] += 1
                if fault.status == 502:
                    self._record(canonical, params, 502, "Bad Gateway")
                    self.stats.errors[502] += 1
                    return web.Response(
                        status=502, body=_BAD_GATEWAY_HTML, content_type="text/html"
                    )
                raise ApiError(fault.status, "Internal Server Error")
            result = await handler(params)
            response = _json_response(200, {"ok": True, "result": result})
            self._record(canonical, params, 200, None)
            if fault is not None and fault.kind == "drop":
                self.stats.faults["drop"] += 1
                if request.transport is not None:
                    request.transport.abort()
                return response
            if fault is not None and fault.kind == "delay":
                self.stats.faults["delay"] += 1
                await self._interruptible_sleep(fault.seconds)
            return response
        except ApiError as err:
            self._record(canonical, params, err.status, err.description)
            self.stats.errors[err.status] += 1
            if err.status == 429:
                self.stats.too_many_requests += 1
            return _json_response(err.status, err.payload())

    async def _interruptible_sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _record(self, method: str, params: Params, status: int, description: str | None) -> None:
        self.requests.append(
            RequestRecord(method, params.public(), status, description, time.time())
        )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not _TOKEN_RE.match(token):
            return _json_response(
                401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        stored = self.files.by_path(request.match_info["path"])
        if stored is None:
            return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    def calls(self, method: str | None = None) -> list[RequestRecord]:
        """The request log, optionally only calls to ``method`` (any case)."""
        if method is None:
            return list(self.requests)
        wanted = method.lower()
        return [r for r in self.requests if r.method.lower() == wanted]

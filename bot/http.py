"""PTB's transport on aiohttp: a `telegram.request.BaseRequest` beside PTB's `HTTPXRequest`.

The stack already runs aiohttp (webhooks, /metrics, the simulator), and on this machine a
bare echo bot answers about twice as many updates per second through it as through httpx
(docs/performance.md has the figures). It keeps `HTTPXRequest`'s contract:

- the four timeouts, each overridable per call (`BaseRequest.DEFAULT_NONE` = the default
  given here): `pool_timeout` to get a connection, `connect_timeout` to open one,
  `read_timeout` between two reads of the answer, `write_timeout` (`media_write_timeout`
  for uploads) to send the request. aiohttp has no write timeout of its own, so the time
  from opening to the answer's headers is bounded by connect + write + read;
- `telegram.error.TimedOut` on any timeout (a pool timeout says the request was not sent),
  `telegram.error.NetworkError` with the aiohttp error as its cause for everything else;
- multipart uploads of `InputFile`s, JSON bodies otherwise, downloads through `do_request`;
- at most `connection_pool_size` connections; a proxy URL (http/https), and the
  `HTTP(S)_PROXY`/`NO_PROXY` variables as httpx reads them (once per origin, not per call:
  aiohttp's `trust_env` looks them and `~/.netrc` up on every request, in a thread — a
  quarter of the bot's CPU in a burst; httpx reads no `.netrc` either);
- usable before `initialize()`; `shutdown()` closes the session and calls fail until the
  next `initialize()`, as with httpx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.ext import ApplicationBuilder
from telegram.request import BaseRequest, RequestData
from yarl import URL

logger = logging.getLogger(__name__)

Backend = Literal["httpx", "aiohttp"]
BACKENDS: tuple[Backend, ...] = ("httpx", "aiohttp")

POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* "
    "sent to Telegram. Consider adjusting the connection pool size or the pool timeout."
)


def _chosen(value: ODVInput[float], default: float | None) -> float | None:
    """A per-call timeout, or this request object's default when the call left it out."""
    return default if isinstance(value, DefaultValue) else value


def _sum(*parts: float | None) -> float | None:
    """Seconds for several phases together; None (no limit) if any phase has none."""
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


class AiohttpRequest(BaseRequest):
    """`BaseRequest` on an `aiohttp.ClientSession`, with `HTTPXRequest`'s parameters."""

    __slots__ = (
        "_connect_timeout",
        "_env_proxies",
        "_media_write_timeout",
        "_pool",
        "_pool_size",
        "_pool_timeout",
        "_proxy",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        proxy: str | None = None,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        if proxy is not None and not proxy.lower().startswith(("http://", "https://")):
            # aiohttp speaks HTTP proxies only; SOCKS would need another package.
            raise ValueError(f"unsupported proxy {proxy!r}: use an http:// or https:// URL")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._proxy = proxy
        self._env_proxies: dict[str, tuple[str | None, aiohttp.BasicAuth | None]] = {}
        self._session: aiohttp.ClientSession | None = None
        # Our own gate for the pool, so that waiting for a connection has its own timeout
        # and its own error, as in httpx (aiohttp folds it into the connect timeout).
        self._pool: asyncio.Semaphore | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds (see `BaseRequest.read_timeout`)."""
        return self._read_timeout

    @property
    def is_initialized(self) -> bool:
        """Whether the session is open."""
        return self._session is not None and not self._session.closed

    async def initialize(self) -> None:
        """Open the session (it must be opened inside the running event loop)."""
        if self.is_initialized:
            return
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,  # the environment's proxies are looked up in `_proxy_for`
            raise_for_status=False,
        )
        self._pool = asyncio.Semaphore(self._pool_size)
        self._env_proxies.clear()  # the environment is read again after a reopen

    async def shutdown(self) -> None:
        """Close the session; a later `initialize()` opens a new one."""
        if self._session is None or self._session.closed:
            logger.debug("this AiohttpRequest is already shut down")
            return
        await self._session.close()

    def _proxy_for(self, url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
        """The proxy (and its credentials) for a URL: the configured one, or the
        environment's for the URL's origin, looked up once."""
        if self._proxy is not None:
            return self._proxy, None
        origin = url[: url.find("/", url.find("//") + 2)]
        found = self._env_proxies.get(origin)
        if found is None:
            try:
                proxy, auth = get_env_proxy_for_url(URL(url))
                found = (str(proxy), auth)
            except LookupError:  # no proxy for it, or NO_PROXY names it
                found = (None, None)
            self._env_proxies[origin] = found
        return found

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; returns the status code and the body."""
        if self._session is None:
            # Usable before `initialize()`, as HTTPXRequest is (it opens its client when
            # built; a session must be opened inside the event loop, so ours opens here).
            await self.initialize()
        session, pool = self._session, self._pool
        if session is None or session.closed or pool is None:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _chosen(read_timeout, self._read_timeout)
        connect = _chosen(connect_timeout, self._connect_timeout)
        waiting = _chosen(pool_timeout, self._pool_timeout)
        write = _chosen(write_timeout, self._media_write_timeout if files else self._write_timeout)
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        params = request_data.parameters if request_data is not None and not files else None
        if params:
            # JSON rather than a urlencoded form: one C-accelerated dump instead of quoting
            # every field in Python (the Bot API takes both). The values as they are, not
            # PTB's `json_payload`, which dumps each value (a keyboard, say) to a string
            # and then the strings again: twice the work, and escaped quotes on the wire.
            body = json.dumps(params, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json"}
        if files:
            # Raw UTF-8 file names, as httpx sends them (aiohttp would percent-encode them).
            form = aiohttp.FormData(quote_fields=False)
            assert request_data is not None
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        if pool.locked():  # every connection busy: wait, but not for ever
            try:
                async with asyncio.timeout(waiting):
                    await pool.acquire()
            except TimeoutError as error:
                raise TimedOut(POOL_TIMEOUT_MESSAGE) from error
        else:
            await pool.acquire()  # returns at once, without a timer to set and cancel
        proxy, proxy_auth = self._proxy_for(url)
        try:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=connect, sock_connect=connect, sock_read=read
            )
            async with asyncio.timeout(_sum(connect, write, read)):
                response = await session.request(
                    method, url, data=body, headers=headers, timeout=timeout, proxy=proxy,
                    proxy_auth=proxy_auth,
                )
            async with response:
                return response.status, await response.read()
        except TimeoutError as error:  # aiohttp's own timeouts derive from it, too
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
        finally:
            pool.release()


def use_backend(
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any], backend: Backend
) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """Give an application builder the transport: PTB's httpx default, or aiohttp.

    The pool sizes are PTB's defaults: 256 connections for calls, one for getUpdates.
    """
    if backend == "httpx":
        return builder
    if backend != "aiohttp":
        raise ValueError(f"unknown HTTP backend {backend!r}; choose one of {BACKENDS}")
    return builder.request(AiohttpRequest()).get_updates_request(
        AiohttpRequest(connection_pool_size=1)
    )

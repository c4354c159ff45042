"""One websocket client: its principal, its subscriptions and its bounded send queue.

Sending never blocks the caller: frames go into a queue that one writer task drains into the
socket. When a client falls ``queue_max`` frames behind (a dead network, a stalled browser
tab), the connection is dropped with 1013 instead of buffering without bound — the client
reconnects and resumes with ``since``. The server never waits on a slow client: the close
frame gets a short timeout, then the transport is aborted.

Close is idempotent and continues past failures: every unsubscribe runs even if one raises,
and sends after close are no-ops logged at debug level (like Home Assistant's
``async_handle_close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, MutableMapping
from enum import StrEnum
from typing import Any, Final

from aiohttp import web

from center.authz import Principal
from center.errors import CenterError
from web.ws.errors import CLOSE_QUEUE_FULL
from web.ws.messages import dumps, error_message, result_message

_LOGGER = logging.getLogger(__name__)
_CLOSE_TIMEOUT: Final = 2.0
_IDS = itertools.count(1)


class ConnectionState(StrEnum):
    AUTH = "auth"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


class _ConnectionLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"[ws {self.extra['conn'] if self.extra else '?'}] {msg}", kwargs


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        queue_max: int,
        on_drop: Callable[[Connection], None] | None = None,
    ) -> None:
        self.id = f"c{next(_IDS)}"
        self.ws = ws
        self.request = request
        self.app = request.app
        self.principal: Principal | None = None
        # the login session that authenticated it (SHA-256 of the token), for logout
        self.session_hash: str | None = None
        self.logger = _ConnectionLogger(_LOGGER, {"conn": self.id})
        self.state = ConnectionState.AUTH
        self.last_id = 0
        self.sent = 0
        self.close_code: int | None = None
        self._queue: deque[str] = deque()
        self._queue_max = queue_max
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = False
        self._inflight: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._subscriptions: dict[int, Callable[[], None]] = {}
        self._sub_keys: dict[int, Hashable] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_drop = on_drop
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"ws-writer-{self.id}"
        )
        self._closer: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        who = self.principal.actor if self.principal else "anonymous"
        return f"<Connection {self.id} {who} {self.state} subs={len(self._subscriptions)}>"

    @property
    def principal_required(self) -> Principal:
        if self.principal is None:
            raise RuntimeError(f"{self!r} is not authenticated")
        return self.principal

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self.state:
            self.logger.debug("%s -> %s", self.state, state)
            self.state = state

    def authenticated(self, principal: Principal) -> None:
        self.principal = principal
        self._set_state(ConnectionState.ACTIVE)

    # -- sending ------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        self.send_raw(dumps(message))

    def send_result(self, msg_id: int | None, result: Any = None) -> None:
        self.send(result_message(msg_id, result))

    def send_error(self, msg_id: int | None, code: str, message: str, details: Any = None) -> None:
        self.send(error_message(msg_id, code, message, details))

    def send_failure(self, msg_id: int | None, err: CenterError) -> None:
        """The error reply for ``err`` (already mapped by :func:`center.errors.error_of`)."""
        self.send(error_message(msg_id, err.code, err.message, err.details))

    def send_raw(self, frame: str) -> None:
        """Queue one encoded frame; drops the client if its queue is full."""
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("not sending to a closed connection: %.80s", frame)
            return
        if not self._busy and not self._queue:
            self._write_now(frame)
            return
        if len(self._queue) >= self._queue_max:
            self._overflow()
            return
        self._queue.append(frame)
        self._idle.clear()
        self._ready.set()

    def _write_now(self, frame: str) -> None:
        """Write without a task switch while the writer is idle.

        aiohttp's ``send_str`` only suspends when the socket is backed up (flow control);
        otherwise it runs to completion on its first step. So it is stepped here by hand:
        done, or else the suspended send becomes the writer's first job and later frames
        queue behind it. This keeps the per-client cost of a broadcast close to a bare
        ``for ws in clients: await ws.send_str(...)`` loop.
        """
        coro = self.ws.send_str(frame)
        try:
            yielded = coro.send(None)
        except StopIteration:
            self.sent += 1
            return
        except (ConnectionError, RuntimeError) as exc:
            self.logger.debug("send failed: %s", exc)
            return
        self._busy = True
        self._inflight = (coro, yielded)
        self._idle.clear()
        self._ready.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while True:
                self._ready.clear()
                self._busy = True
                inflight, self._inflight = self._inflight, None
                if inflight is not None:
                    await _finish(*inflight)
                    self.sent += 1
                while queue:
                    await ws.send_str(queue.popleft())
                    self.sent += 1
                self._busy = False
                self._idle.set()
                await self._ready.wait()
        except (ConnectionError, RuntimeError) as exc:
            self.logger.debug("writer stopped: %s", exc)
        finally:
            self._busy = True  # nothing is written directly once the writer is gone
            if self._inflight is not None:
                self._inflight[0].close()
                self._inflight = None
            self._idle.set()

    def _overflow(self) -> None:
        self.logger.warning(
            "client is %s messages behind; dropping it (it resumes with since)", self._queue_max
        )
        if self._on_drop is not None:
            self._on_drop(self)
        self.drop(CLOSE_QUEUE_FULL, b"send queue full; resume with since")

    def drop(self, code: int, message: bytes) -> None:
        """Close from outside the command loop (a full queue, a revoked credential): nothing
        more is sent, the close frame goes out on a task that :meth:`close` awaits."""
        if self._closer is not None or self.state is ConnectionState.CLOSED:
            return
        self._queue.clear()
        self._set_state(ConnectionState.CLOSING)
        self._closer = asyncio.get_running_loop().create_task(
            self._close_socket(code, message), name=f"ws-drop-{self.id}"
        )

    async def _close_socket(self, code: int, message: bytes) -> None:
        self.close_code = code
        self._writer.cancel()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=message)
        except TimeoutError:
            self.logger.info("peer did not take the close frame; aborting the transport")
            transport = self.request.transport
            if transport is not None:
                transport.abort()
        except (ConnectionError, RuntimeError) as exc:
            self.logger.debug("close failed: %s", exc)

    # -- subscriptions and tasks --------------------------------------------------------

    def add_subscription(self, sub_id: int, unsubscribe: Callable[[], None]) -> None:
        self._subscriptions[sub_id] = unsubscribe

    @property
    def subscription_count(self) -> int:
        return len(self._subscriptions)

    def tag_subscription(self, sub_id: int, key: Hashable) -> None:
        """Remember what ``sub_id`` receives (topic and scope), to refuse a duplicate."""
        if sub_id in self._subscriptions:
            self._sub_keys[sub_id] = key

    def subscribed(self, key: Hashable) -> bool:
        return any(k == key for i, k in self._sub_keys.items() if i in self._subscriptions)

    def remove_subscription(self, sub_id: int) -> bool:
        unsubscribe = self._subscriptions.pop(sub_id, None)
        self._sub_keys.pop(sub_id, None)
        if unsubscribe is None:
            return False
        unsubscribe()
        return True

    @property
    def subscriptions(self) -> list[int]:
        return sorted(self._subscriptions)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """A task that belongs to this connection: cancelled and awaited when it closes."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- closing ------------------------------------------------------------------------

    async def close(self, code: int | None = None, message: bytes = b"") -> None:
        """Unsubscribe everything, stop the tasks, close the socket (idempotent)."""
        if self._closed is not None:
            await asyncio.shield(self._closed)
            return
        self._closed = asyncio.get_running_loop().create_future()
        self._set_state(ConnectionState.CLOSING)
        try:
            for sub_id in list(self._subscriptions):
                try:
                    self.remove_subscription(sub_id)
                except Exception:
                    self.logger.exception("unsubscribe of #%s failed", sub_id)
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._closer is not None:
                await asyncio.gather(self._closer, return_exceptions=True)
            elif not self.ws.closed:
                if code is not None:
                    # Let queued frames (an error reply) go out before the close frame.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._idle.wait(), _CLOSE_TIMEOUT)
                await self._close_socket(code or 1000, message)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        finally:
            self._set_state(ConnectionState.CLOSED)
            self._queue.clear()
            self._closed.set_result(None)


async def _finish(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Run to completion a coroutine that was stepped by hand and suspended on ``yielded``
    (a future, or ``None`` for a bare yield), the way a task would."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                await yielded
        except asyncio.CancelledError:
            coro.close()
            raise
        except BaseException as exc:  # the future failed: let the coroutine handle it
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            yielded = coro.send(None)
        except StopIteration:
            return

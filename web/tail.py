"""``python run.py tail --url … --token …``: live alarm events in a terminal.

A second, independent client of the websocket protocol, built on the ``websockets`` library:
it authenticates with a device token (masked names, like a wall) or a session token (what
that officer may see), subscribes, prints one line per event, and when the connection drops
it reconnects with backoff and resumes with ``since`` — so an operator watching it during a
restart sees every event once. Exit codes: 0 on Ctrl+C, 2 when the token is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

_LOGGER = logging.getLogger(__name__)
_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 15.0
_FATAL = frozenset({"unauthorized", "forbidden", "invalid_credentials"})


class TailRefused(Exception):
    """The server refused the token or the topic; retrying will not help."""


def ws_url(url: str) -> str:
    """``http://host:8080`` → ``ws://host:8080/ws``; a ws(s) URL with a path is kept."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def format_event(topic: str, event: dict[str, Any]) -> str:
    """One line per event: time, type, seq and the alarm's essentials."""
    at = event.get("at")
    when = datetime.fromtimestamp(at).strftime("%H:%M:%S") if isinstance(at, int | float) else ""
    data = event.get("data") or {}
    head = f"{when} #{event.get('seq')} {event.get('type')}"
    if topic != "alarms" or not isinstance(data, dict):
        return f"{head} {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}"
    where = "/".join(
        str(x)
        for x in (
            data.get("district_name") or data.get("district_id"),
            data.get("street_name") or data.get("street_id"),
        )
        if x
    )
    fields = [
        f"alarm {data.get('id')}",
        str(data.get("kind", "")),
        str(data.get("severity", "")),
        str(data.get("state", "")),
        where,
        str(data.get("subject_name", "")),
    ]
    if data.get("overdue"):
        fields.append("OVERDUE")
    return f"{head} " + " ".join(f for f in fields if f)


class Tail:
    def __init__(self, url: str, token: str, topic: str, out: TextIO) -> None:
        self.url = ws_url(url)
        self.token = token
        self.topic = topic
        self.out = out
        self.since: dict[str, Any] | None = None
        self.printed = 0

    def _print(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    async def _request(self, ws: ClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
        await ws.send(json.dumps(msg, ensure_ascii=False))
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("type") == "result" and reply.get("id") in (msg["id"], None):
                if not reply.get("success"):
                    error = reply.get("error") or {}
                    if error.get("code") in _FATAL:
                        raise TailRefused(f"{error.get('code')}: {error.get('message')}")
                    raise ConnectionError(f"{error.get('code')}: {error.get('message')}")
                return reply.get("result") or {}

    async def session(self, max_events: int | None) -> bool:
        """One connection; True when ``max_events`` were printed."""
        async with connect(self.url, max_size=2**24, open_timeout=10) as ws:
            auth = await self._request(ws, {"id": 1, "type": "auth", "token": self.token})
            msg: dict[str, Any] = {"id": 2, "type": "subscribe", "topic": self.topic}
            if self.since is not None:
                msg["since"] = self.since
            result = await self._request(ws, msg)
            self.since = {"epoch": result["epoch"], "seq": result["seq"]}
            if result.get("recovered"):
                replayed = result.get("events") or []
                self._print(
                    f"-- {auth.get('role')} on {auth.get('instance')}: resumed, {len(replayed)} missed"
                )
                for event in replayed:
                    if self._emit(event, max_events):
                        return True
            else:
                snapshot = result.get("snapshot") or {}
                total = snapshot.get("total") if isinstance(snapshot, dict) else None
                self._print(
                    f"-- {auth.get('role')} on {auth.get('instance')}: live"
                    + (f", {total} open alarms" if total is not None else "")
                )
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") != "event" or frame.get("id") != 2:
                    continue
                event = frame["event"]
                if event.get("type") == "resync":
                    return False  # reconnect and resume from self.since
                if self._emit(event, max_events):
                    return True
        return False

    def _emit(self, event: dict[str, Any], max_events: int | None) -> bool:
        self.since = {
            "epoch": event.get("epoch", (self.since or {}).get("epoch")),
            "seq": event["seq"],
        }
        self._print(format_event(self.topic, event))
        self.printed += 1
        return max_events is not None and self.printed >= max_events

    async def run(self, max_events: int | None = None) -> int:
        delay = _BACKOFF_MIN
        while True:
            try:
                if await self.session(max_events):
                    return 0
                delay = _BACKOFF_MIN
            except TailRefused as exc:
                print(f"tail: refused by the server: {exc}", file=sys.stderr)
                return 2
            except InvalidURI as exc:
                print(f"tail: bad URL {self.url}: {exc}", file=sys.stderr)
                return 2
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                print(f"tail: connection lost ({exc}); retrying in {delay:.1f} s", file=sys.stderr)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, _BACKOFF_MAX)


async def tail(
    url: str,
    token: str,
    topic: str = "alarms",
    *,
    out: TextIO | None = None,
    max_events: int | None = None,
) -> int:
    return await Tail(url, token, topic, out or sys.stdout).run(max_events)


def run_tail(url: str, token: str, topic: str = "alarms") -> int:
    """Entry point of ``run.py tail``; blocks until Ctrl+C (exit 0) or a refusal (2)."""
    try:
        return asyncio.run(tail(url, token, topic))
    except KeyboardInterrupt:
        return 0

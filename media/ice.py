"""ICE server lists for the server's peer connections and for browsers.

Only configured servers are used: aiortc falls back to a public STUN server when
``iceServers`` is left unset, and the center must work on a closed intranet, so the
configuration always carries an explicit (possibly empty) list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import NotRequired, TypedDict

from aiortc import RTCConfiguration, RTCIceServer

from media.settings import IceServerConfig, MediaSettings


class IceServerDict(TypedDict):
    """The browser's ``RTCIceServer`` dictionary."""

    urls: list[str]
    username: NotRequired[str]
    credential: NotRequired[str]


def turn_rest_credentials(secret: str, user: str, ttl_s: int, now: datetime) -> tuple[str, str]:
    """Time-limited TURN credentials as coturn's ``use-auth-secret`` checks them.

    username = "<expiry unix time>:<user>", credential = base64(HMAC-SHA1(secret, username)).
    """
    expiry = int(now.timestamp()) + ttl_s
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def _is_turn(server: IceServerConfig) -> bool:
    return any(url.startswith(("turn:", "turns:")) for url in server.urls)


def ice_servers_for(settings: MediaSettings, user: str, now: datetime) -> list[IceServerDict]:
    """ICE servers for ``user`` (a browser or the server itself), TURN credentials filled in."""
    out: list[IceServerDict] = []
    for server in settings.ice_servers:
        entry: IceServerDict = {"urls": list(server.urls)}
        if server.username is not None and server.credential is not None:
            entry["username"] = server.username
            entry["credential"] = server.credential
        elif _is_turn(server):
            if not settings.turn_secret:
                # A TURN server without any credentials cannot be used; leave it out
                # rather than hand out something that fails after a timeout.
                continue
            entry["username"], entry["credential"] = turn_rest_credentials(
                settings.turn_secret, user, settings.turn_ttl_s, now
            )
        out.append(entry)
    return out


def rtc_configuration(servers: list[IceServerDict]) -> RTCConfiguration:
    """An aiortc configuration with exactly these servers (an empty list means host only)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(s["urls"]),
                username=s.get("username"),
                credential=s.get("credential"),
            )
            for s in servers
        ]
    )

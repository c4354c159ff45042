"""The websocket hub at ``/ws`` (DESIGN.md §4; protocol reference in docs/websocket.md).

Public pieces for other packages:

- :func:`command` + :func:`register_command` — add a command (``rtc.join`` ...) with its
  msgspec model (:class:`NoFields` for none);
- :class:`Topic` / :class:`BusTopic` + ``hub_of(app).topics.register(...)`` — add a topic
  (``room:`` for ``room:<id>``);
- :class:`Connection` — what a handler gets: ``principal``, ``send_result``, ``send_raw``,
  ``add_subscription``, ``spawn``, ``logger``.
"""

from __future__ import annotations

from web.ws.bus_topic import BusTopic
from web.ws.connection import Connection
from web.ws.hub import HUB, Hub, hub_of, register_command
from web.ws.registry import NO_REPLY, NoFields, command
from web.ws.setup import setup_ws
from web.ws.topics import SubscribeRequest, Topic, masked_for, subscribe_result

__all__ = [
    "HUB",
    "NO_REPLY",
    "BusTopic",
    "Connection",
    "Hub",
    "NoFields",
    "SubscribeRequest",
    "Topic",
    "command",
    "hub_of",
    "masked_for",
    "register_command",
    "setup_ws",
    "subscribe_result",
]

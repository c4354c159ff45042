"""What a websocket topic is: something a connection can subscribe to with ``since``.

The ``subscribe`` command finds the :class:`Topic`, checks the principal's role against
``topic.action`` and the requested scope against the principal's jurisdiction, then calls
:meth:`Topic.subscribe`. The topic sends the result itself (so that it goes out before the
first event) and registers an unsubscribe callback on the connection.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from center.authz import JurisdictionPath, Principal
from center.models import Role

if TYPE_CHECKING:
    from web.ws.connection import Connection


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """A validated ``subscribe`` message: ``scope`` is already checked against the
    principal's jurisdiction."""

    msg_id: int
    topic: str
    since: tuple[str, int] | None
    scope: JurisdictionPath


def masked_for(principal: Principal) -> bool:
    """Wall screens and other device principals never get personal data in clear."""
    return principal.role == Role.WALL or principal.kind == "device"


class Topic(abc.ABC):
    name: str
    """Exact topic name, or a prefix ending with ``:`` (``room:``) for a family."""
    action: str
    """The :data:`center.authz.POLICY` action a principal needs to subscribe."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def view_key(self, principal: Principal, scope: JurisdictionPath) -> Hashable:
        """The recipient class: subscribers with equal keys get byte-identical events, so an
        event is filtered and serialised once per key, not once per client."""
        return (scope, masked_for(principal))

    @abc.abstractmethod
    async def subscribe(self, conn: Connection, req: SubscribeRequest) -> None:
        """Send the result (``epoch``, ``seq``, ``recovered`` and ``snapshot`` or ``events``)
        with ``conn.send_result`` and then deliver events with a greater ``seq``, in order,
        with nothing missed in between; register the unsubscribe with
        ``conn.add_subscription``. Raise a :class:`~center.errors.CenterError` to refuse."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Called once when the hub starts (after the bus and the database)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Called once when the hub stops."""


def subscribe_result(
    topic: str,
    epoch: str,
    seq: int,
    *,
    snapshot: Any = None,
    events: list[Any] | None = None,
) -> dict[str, Any]:
    """The result of ``subscribe``: ``recovered`` says whether ``events`` replays what the
    client missed (True) or ``snapshot`` replaces its state (False)."""
    result: dict[str, Any] = {"topic": topic, "epoch": epoch, "seq": seq}
    if events is not None:
        result["recovered"] = True
        result["events"] = events
    else:
        result["recovered"] = False
        result["snapshot"] = snapshot
    return result

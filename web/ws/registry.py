"""Registries of websocket commands and topics, so other packages can extend the protocol.

A command is an async function declared with :func:`command` beside its schema and access
rule, then registered on the app's hub::

    from web.ws import command, register_command

    @command("rtc.join", {"room": Field(str)}, action="rooms.join", concurrent=True)
    async def rtc_join(conn: Connection, msg: dict[str, Any]) -> Any:
        ...
        return {"participant": pid}      # sent as the result; raise CenterError to fail

    register_command(app, rtc_join)      # in the package's setup, after setup_ws(app)

The dispatcher has already checked the envelope, the schema and the role (``action`` is a
:data:`center.authz.POLICY` action; resource-level checks stay in the handler). A handler
that answers by itself (a subscription sending its result before its first event) returns
:data:`NO_REPLY`. ``concurrent=True`` runs the handler as a task of the connection (awaited
or cancelled when it closes) so a slow command does not hold up the ones after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from center.authz import Action
from web.ws.schema import Schema

if TYPE_CHECKING:
    from web.ws.connection import Connection
    from web.ws.topics import Topic

NO_REPLY: Final = object()
"""Returned by a handler that sent its own result."""

CommandHandler = Callable[["Connection", dict[str, Any]], Awaitable[Any]]
F = TypeVar("F", bound=CommandHandler)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    type: str
    handler: CommandHandler
    schema: Schema = field(default_factory=dict)
    action: str | None = None
    concurrent: bool = False

    def __repr__(self) -> str:
        return f"<CommandSpec {self.type} action={self.action}>"


def command(
    type: str,
    schema: Schema | None = None,
    *,
    action: str | None = None,
    concurrent: bool = False,
) -> Callable[[F], F]:
    """Declare ``fn`` as the handler of the ``type`` command (see the module docstring)."""

    def deco(fn: F) -> F:
        declared = Action(action) if action is not None else None  # a typo fails at import
        fn.__ws_command__ = CommandSpec(type, fn, dict(schema or {}), declared, concurrent)  # type: ignore[attr-defined]
        return fn

    return deco


def spec_of(handler: CommandHandler) -> CommandSpec:
    spec = getattr(handler, "__ws_command__", None)
    if not isinstance(spec, CommandSpec):
        raise TypeError(f"{handler!r} is not declared with @command(...)")
    return spec


class CommandRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, CommandSpec] = {}

    def register(self, handler: CommandHandler) -> None:
        spec = spec_of(handler)
        if spec.type in self._specs:
            raise ValueError(f"websocket command {spec.type!r} is already registered")
        self._specs[spec.type] = spec

    def get(self, type: str) -> CommandSpec | None:
        return self._specs.get(type)

    def __contains__(self, type: object) -> bool:
        return type in self._specs

    @property
    def types(self) -> list[str]:
        return sorted(self._specs)


class TopicRegistry:
    """Topics by exact name, or by prefix for families such as ``room:<id>`` (a name that
    ends with ``:``)."""

    def __init__(self) -> None:
        self._exact: dict[str, Topic] = {}
        self._prefixes: dict[str, Topic] = {}

    def register(self, topic: Topic) -> None:
        table = self._prefixes if topic.name.endswith(":") else self._exact
        if topic.name in table:
            raise ValueError(f"websocket topic {topic.name!r} is already registered")
        table[topic.name] = topic

    def find(self, name: str) -> Topic | None:
        found = self._exact.get(name)
        if found is not None:
            return found
        for prefix, topic in self._prefixes.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                return topic
        return None

    @property
    def names(self) -> list[str]:
        return sorted([*self._exact, *(p + "<id>" for p in self._prefixes)])

    def all(self) -> list[Topic]:
        return [*self._exact.values(), *self._prefixes.values()]

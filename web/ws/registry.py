"""Registries of websocket commands and topics, so other packages can extend the protocol.

A command is an async function declared with :func:`command` beside its model and access
rule, then registered on the app's hub::

    from web.ws import command, register_command

    class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
        room: str

    @command("rtc.leave", RoomIn, action=Action.ROOMS_JOIN, concurrent=True)
    async def rtc_leave(conn: Connection, msg_id: int, body: RoomIn) -> Any:
        ...
        return {"left": body.room}       # sent as the result; raise CenterError to fail

    register_command(app, rtc_leave)     # in the package's setup, after setup_ws(app)

The model is a ``msgspec.Struct`` with ``forbid_unknown_fields=True`` (the rule for unknown
fields, README "HTTP API": refused on commands, where a typo changes meaning). The
dispatcher has already checked the envelope, decoded the message's fields (all but ``id``
and ``type``) into the model with :func:`web.contract.convert` — so a bad field is
``invalid_format`` with the same ``details`` as an HTTP 422: ``{"field": <first bad field>,
"fields": {field: problem}}`` — and checked the role (``action`` is a
:data:`center.authz.POLICY` action; resource-level checks stay in the handler). A handler
that answers by itself (a subscription sending its result before its first event) returns
:data:`NO_REPLY`. ``concurrent=True`` runs the handler as a task of the connection (awaited
or cancelled when it closes) so a slow command does not hold up the ones after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import msgspec

from center.authz import Action
from center.errors import InvalidFormat, ValidationFailed
from web.contract import convert

if TYPE_CHECKING:
    from web.ws.connection import Connection
    from web.ws.topics import Topic

NO_REPLY: Final = object()
"""Returned by a handler that sent its own result."""

ENVELOPE_KEYS: Final = frozenset({"id", "type"})

M = TypeVar("M", bound=msgspec.Struct)


class NoFields(msgspec.Struct, forbid_unknown_fields=True):
    """The model of a command that takes nothing but its ``id`` and ``type``."""


Model: TypeAlias = type[msgspec.Struct]
CommandHandler = Callable[["Connection", int, Any], Awaitable[Any]]
F = TypeVar("F", bound=CommandHandler)


def fields_of(msg: Mapping[str, Any], model: type[M], type: str) -> M:
    """The message's fields (all but ``id`` and ``type``) as ``model``, or
    :class:`InvalidFormat` with the HTTP validation ``details`` shape."""
    fields = {k: v for k, v in msg.items() if k not in ENVELOPE_KEYS}
    try:
        return convert(fields, model, what=f"{type} message")
    except ValidationFailed as err:
        raise InvalidFormat(err.message, details=err.details) from None


@dataclass(frozen=True, slots=True)
class CommandSpec:
    type: str
    handler: CommandHandler
    model: Model = NoFields
    action: str | None = None
    concurrent: bool = False

    def __repr__(self) -> str:
        return f"<CommandSpec {self.type} {self.model.__name__} action={self.action}>"

    def parse(self, msg: Mapping[str, Any]) -> msgspec.Struct:
        return fields_of(msg, self.model, self.type)


def command(
    type: str,
    model: type[msgspec.Struct] = NoFields,
    *,
    action: str | None = None,
    concurrent: bool = False,
) -> Callable[[F], F]:
    """Declare ``fn`` as the handler of the ``type`` command (see the module docstring)."""
    if not model.__struct_config__.forbid_unknown_fields:
        raise TypeError(f"the model of {type!r} must refuse unknown fields")

    def deco(fn: F) -> F:
        declared = Action(action) if action is not None else None  # a typo fails at import
        fn.__ws_command__ = CommandSpec(type, fn, model, declared, concurrent)  # type: ignore[attr-defined]
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

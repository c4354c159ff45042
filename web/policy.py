"""Per-handler access policy, declared beside each handler (deny by default).

``@policy(Action.ALARMS_READ)`` says which :mod:`center.authz` action a handler performs and
which kinds of credential may call it; ``@public`` opts a handler out. A string is accepted
and coerced with ``Action(value)`` at decoration time, so a misspelt action stops the import
(``ValueError``) instead of silently denying every caller. The auth middleware
refuses any route whose handler declares neither, and a test walks the router to make sure
every route declares one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from center.authz import Action, Principal

F = TypeVar("F", bound=Callable[..., Any])

SESSION: Final = "session"
API_KEY: Final = "api_key"
DEVICE: Final = "device"
GUEST: Final = "guest"


@dataclass(frozen=True, slots=True)
class Policy:
    action: Action | None  # None: public
    auth: frozenset[str]
    page: bool = False  # unauthenticated → redirect to /login instead of a JSON 401


def policy(
    action: Action | str, *, auth: tuple[str, ...] = (SESSION,), page: bool = False
) -> Callable[[F], F]:
    declared = Action(action)

    def deco(fn: F) -> F:
        fn.__center_policy__ = Policy(declared, frozenset(auth), page)  # type: ignore[attr-defined]
        return fn

    return deco


def public(fn: F) -> F:
    fn.__center_policy__ = Policy(None, frozenset())  # type: ignore[attr-defined]
    return fn


def authenticated_page(fn: F) -> F:
    """Any logged-in user (the page itself decides what to show)."""
    fn.__center_policy__ = Policy(Action.ME_READ, frozenset({SESSION}), page=True)  # type: ignore[attr-defined]
    return fn


def get_policy(handler: Any) -> Policy | None:
    return getattr(handler, "__center_policy__", None)


def principal_of(request: Any) -> Principal:
    """The caller, resolved by the auth middleware; raises if the route was public."""
    from web.context import PRINCIPAL

    principal = request.get(PRINCIPAL)
    if principal is None:
        raise RuntimeError("principal_of() on a public route")
    return principal
